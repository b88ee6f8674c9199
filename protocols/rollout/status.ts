// How a release stands, for operators (CLI `release status`, the browser view): the same
// authority and gates the hosts decide by, counted per wave over the release's frozen plan, so a
// later revoke or admit does not rewrite what the release did.
import { controlState, outranks } from './authority.js'
import { gateContext, planOf } from './decide.js'
import { HostClass } from './gates.js'
import type { RolloutState } from './state.js'
import type { MembershipView } from './types.js'

export interface WaveStatus {
  index: number
  hosts: number
  /** online hosts that have written nothing for the release */
  pending: number
  /** hosts that have written nothing and are offline (per the caller's `online`) */
  offline: number
  applying: number
  /** applied, their `soaked` not written yet */
  soaking: number
  healthy: number
  failed: number
  /** applied, then reported a failing health check */
  unhealthy: number
  /** declared silent by an overdue entry: out of the gate */
  silent: number
  /** moved on to a newer release before finishing this one: out of the gate */
  movedOn: number
  /** failures an admin's resume accepted: out of the gate and the budget */
  accepted: number
  /** hosts that a newer, not aborted release also targets (superseded here, per host) */
  superseded: number
  /** hosts the gate needs healthy (out of those still counted) */
  need: number
  gateMet: boolean
  /** why the wave after this one cannot start yet, when its gate is not met */
  waits?: string
}

export type OverallState = 'rolling' | 'paused' | 'halted' | 'aborted' | 'done' | 'superseded'

export interface ReleaseStatus {
  id: string
  number: number
  signer: string
  state: OverallState
  reason?: string
  waves: WaveStatus[]
  failed: number
  /** the hosts counted as failed (apply-failed, rollback or past the apply deadline): what a resume may `accept` */
  failedHosts: string[]
  maxFailures: number
  /** hosts a target matched but no wave selected */
  unassigned: string[]
}

/**
 * `release status --watch` ends when this is defined, with it as the exit code: 0 only on
 * done; 6 halted, 7 aborted, 8 superseded (every host of it taken over by newer releases).
 * rolling and paused keep watching.
 */
export function watchExitCode (state: OverallState): number | undefined {
  switch (state) {
    case 'done': return 0
    case 'halted': return 6
    case 'aborted': return 7
    case 'superseded': return 8
    default: return undefined
  }
}

/** How a release stands (CLI `release status`, the browser view); undefined for an unknown or non-admin release. */
export function releaseStatus (state: RolloutState, membership: MembershipView, releaseId: string, online: (peer: string) => boolean = () => true): ReleaseStatus | undefined {
  const ctx = gateContext(state, membership)
  const c = ctx.releases.get(releaseId)
  if (c === undefined) return undefined
  const base = { id: releaseId, number: c.body.number, signer: c.feed, failed: 0, failedHosts: [] as string[], maxFailures: c.body.maxFailures, unassigned: [] as string[] }
  const control = controlState(state, membership, releaseId)
  const progress = state.gates.progress(ctx, c)
  if (progress === undefined) {
    return control.aborted
      ? { ...base, waves: [], state: 'aborted', reason: `aborted by ${control.by?.feed}` }
      : { ...base, waves: [], state: 'rolling', reason: 'catching up to the release\'s basis' }
  }

  // a host is superseded here when a newer, not aborted release targets it too
  const newer = [...ctx.releases.values()]
    .filter(r => outranks(r, c) && !controlState(state, membership, r.body.id).aborted)
    .map(r => planOf(state, r.body, membership))
  const superseded = (h: string): boolean => newer.some(p => p?.waveOf.has(h) === true)
  const failedHosts: string[] = []
  const waves: WaveStatus[] = progress.waves.map((agg, i) => {
    const n = agg.n
    const g = progress.gates[i]
    const w: WaveStatus = {
      index: i,
      hosts: agg.hosts.length,
      pending: 0,
      offline: 0,
      applying: n[HostClass.applying],
      soaking: n[HostClass.soaking],
      healthy: n[HostClass.healthy],
      failed: n[HostClass.failed],
      unhealthy: n[HostClass.unhealthy],
      silent: n[HostClass.silent],
      movedOn: n[HostClass.movedOn],
      accepted: n[HostClass.accepted],
      superseded: 0,
      need: g.need,
      gateMet: g.met
    }
    for (const h of agg.hosts) {
      if (superseded(h)) w.superseded++
      const cls = state.gates.classOf(releaseId, h)
      if (cls === HostClass.failed) failedHosts.push(h)
      else if (cls === HostClass.quiet) {
        if (online(h)) w.pending++
        else w.offline++
      }
    }
    if (!g.met) {
      w.waits = `${w.healthy}/${g.counted} healthy, needs ${agg.wave.gate.healthy} % (${g.need})` + (w.soaking > 0 ? `, ${w.soaking} soaking` : '')
    }
    return w
  })
  const full = { ...base, waves, failed: progress.failed, failedHosts: failedHosts.sort(), unassigned: progress.plan.unassigned }
  if (control.aborted) return { ...full, state: 'aborted', reason: `aborted by ${control.by?.feed}` }
  if (progress.halt.halted) return { ...full, state: 'halted', reason: progress.halt.reason }
  const hosts = waves.reduce((s, w) => s + w.hosts, 0)
  if (hosts > 0 && waves.every(w => w.superseded === w.hosts)) return { ...full, state: 'superseded', reason: 'every host of it is targeted by a newer release' }
  if (control.paused) return { ...full, state: 'paused', reason: `paused by ${control.by?.feed}` }
  const busy = waves.some(w => w.pending > 0 || w.applying > 0 || w.soaking > 0)
  if (progress.firstUnmet === waves.length && !busy) return { ...full, state: 'done' }
  // The last wave's gate holds no later wave back, so the decisions do not halt on it; but once
  // it can no longer be met and nothing is in flight, the release has ended short of its gate.
  const last = progress.gates[waves.length - 1]
  if (last?.lost === true && progress.firstUnmet === waves.length - 1 && !busy) {
    return { ...full, state: 'halted', reason: `wave ${waves.length - 1} can no longer meet its gate: ${waves[waves.length - 1].failed} of ${last.counted} failed, ${last.need} must be healthy` }
  }
  const j = progress.firstUnmet
  return j < waves.length ? { ...full, state: 'rolling', reason: `wave ${j}: ${waves[j].waits}` } : { ...full, state: 'rolling' }
}
