// `release plan`: what a release would do if it were signed now, from this host's log, without
// signing it. The waves are the plan every host will compute (planRelease over the draft's
// basis, its id derived from what it will carry, node/deploy/releases.ts); what holds each host at
// the start is read with the functions the decisions use: its pins (holds.ts), its path's
// quarantine, the release's own budget slot order (plan.slots), the per-tag budgets
// (tag-budget.ts, with the draft as the newest release), the wave's ordering edge. And the path
// each host runs now, as its own outcome entries say (the newest by its own seq).
import { gateContext, releaseLookup } from './decide.js'
import { maxInFlight } from './budget.js'
import { pinHolds, pinsOf, quarantineOf } from './holds.js'
import { planRelease } from './plan.js'
import { tagBudgetPreview } from './tag-budget.js'
import type { RolloutState } from './state.js'
import type { Gate, MembershipView, ReleaseBody } from './types.js'

/** Where a host would stand at the start of a release not signed yet. */
export interface PreviewHost {
  host: string
  path: string
  /** what holds it at the start: pinned, quarantined, offline, a budget, an edge; empty when it would start with its wave */
  holds: string[]
}

export interface PreviewWave {
  /** 0-based, as in the release body (people count from 1) */
  index: number
  gate: Gate
  after?: string
  hosts: PreviewHost[]
}

export interface Preview {
  id: string
  number: number
  waves: PreviewWave[]
  /** hosts a target matched but no wave selected */
  unassigned: string[]
  /** the release it waits for (`--after RELEASE`) */
  after?: string
}

/** The draft's waves and what would hold each host at its start; `online` is the caller's view of who is reachable. */
export function previewRelease (state: RolloutState, membership: MembershipView, body: ReleaseBody, online: (peer: string) => boolean): Preview {
  const plan = planRelease(body, (body.basis !== undefined ? membership.asOf(body.basis) : undefined) ?? membership)
  const ctx = gateContext(state, membership)
  const look = releaseLookup(state, ctx)
  const draft = { c: { feed: '', seq: 0, ts: 0, body }, plan }
  const max = maxInFlight(body, plan.rank.size)
  const waves = plan.waves.map((hosts, k): PreviewWave => {
    const wave = body.waves[k]
    return {
      index: k,
      gate: wave.gate,
      ...(wave.after !== undefined ? { after: wave.after.tag } : {}),
      hosts: hosts.map(host => {
        const path = plan.targetOf.get(host)?.path as string
        const holds: string[] = []
        const pins = state.holds.pins.has(host) ? pinsOf(state.holds, membership, host) : []
        if (pins.length > 0 && pinHolds(pins, path)) holds.push(`pinned by ${pins[0].feed}: ${pins[0].body.reason} (holds ${pins[0].body.path})`)
        const q = quarantineOf(state.holds, membership, look, path)
        if (q !== undefined) holds.push(q.manual.length > 0 ? `path quarantined by ${q.manual[0].feed}: ${q.manual[0].body.reason}` : `path quarantined: failed after activation on ${q.failures.length} host(s)`)
        if (!online(host)) holds.push('offline')
        const slot = plan.slots.indexOf(host)
        if (max !== undefined && slot >= max) holds.push(`budget: starts once fewer than ${max} of the ${slot} host(s) before it in the plan are in flight (--max-in-flight)`)
        const tagged = tagBudgetPreview(state, ctx, host, draft)
        if (tagged !== undefined) holds.push(tagged.text)
        if (plan.edges[k] !== undefined && !(plan.edges[k] as string[]).includes(host)) holds.push(`edge: waits until every host tagged ${wave.after?.tag as string} of this release is healthy`)
        return { host, path, holds }
      })
    }
  })
  return { id: body.id, number: body.number, waves, unassigned: plan.unassigned, ...(body.after !== undefined ? { after: body.after } : {}) }
}

/**
 * The path each host runs now as its own entries say: of its newest outcome entries (by its own
 * seq), an apply-ok or soaked gives its path, a rollback the path it returned to. Hosts in the
 * middle of an apply, or that never wrote one, are absent.
 */
export function currentPaths (state: RolloutState): Map<string, { path: string, seq: number }> {
  const best = new Map<string, { path: string, seq: number, final: boolean }>()
  for (const o of state.outcomes.values()) {
    for (const [host, e] of o.latest) {
      const prev = best.get(host)
      if (prev !== undefined && prev.seq > e.seq) continue
      const body = e.body as { path?: string, to?: string }
      const path = e.kind === 'rollback' ? body.to : e.kind === 'apply-ok' || e.kind === 'soaked' ? body.path : undefined
      best.set(host, { path: path ?? '', seq: e.seq, final: path !== undefined })
    }
  }
  const out = new Map<string, { path: string, seq: number }>()
  for (const [host, b] of best) if (b.final) out.set(host, { path: b.path, seq: b.seq })
  return out
}
