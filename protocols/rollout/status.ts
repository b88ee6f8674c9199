// How a release stands, for operators (CLI `release status`, the browser view): the same
// authority and gates the hosts decide by, counted per wave over the release's frozen plan, so a
// later revoke or admit does not rewrite what the release did.
import { controlState, outranks, sealedBelow } from './authority.js'
import { gateContext, planOf, releaseLookup } from './decide.js'
import { releaseFloor } from './fresh.js'
import { releaseEdgeWait, waveEdgeWait } from './edges.js'
import { inFlight, maxInFlight } from './budget.js'
import { tagBudgetsStatus, type TagBudgetStatus } from './tag-budget.js'
import { pinned, quarantined, quarantineOf, refOf } from './holds.js'
import { HostClass } from './gates.js'
import { awaitStateOf, type AwaitState } from './confirm.js'
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
  /** held on another generation by an admin's pin: out of the gate, neither pending nor failed */
  pinned: number
  /** have written nothing and their target path is quarantined: they refuse it, and stay in the gate */
  quarantined: number
  /** attested that they held it only after its freshness window: they refuse it, out of the gate, neither pending nor failed */
  stale: number
  /** hosts the gate needs healthy (out of those still counted) */
  need: number
  gateMet: boolean
  /** why the wave after this one cannot start yet, when its gate is not met */
  waits?: string
  /** each host of the wave and where it stands, sorted by host id */
  hostStates: HostStatus[]
}

/** Where one host stands in a release (`quarantined-refused`: it refuses its quarantined target path). */
export type HostState = 'pending' | 'offline' | 'applying' | 'soaking' | 'healthy' | 'failed' | 'unhealthy' | 'silent' | 'moved-on' | 'accepted' | 'pinned' | 'quarantined-refused' | 'stale' | AwaitState
export interface HostStatus { host: string, state: HostState, superseded?: true }
/** HostStatus['state'] of each HostClass but quiet, which is pending, offline or quarantined-refused */
const CLASS_STATE: readonly HostState[] = ['accepted', 'failed', 'silent', 'healthy', 'moved-on', 'pending', 'applying', 'soaking', 'unhealthy', 'pinned', 'stale']

/** refused: numbered below an admin's release floor, no host applies it */
export type OverallState = 'rolling' | 'paused' | 'halted' | 'aborted' | 'done' | 'superseded' | 'refused'

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
  /** the hosts pinned out of it */
  pinnedHosts: string[]
  /** its target paths that are quarantined */
  quarantinedPaths: string[]
  /** the hosts that held it only after its freshness window and refused it */
  staleHosts: string[]
  /** with a disruption budget: its hosts in flight now (applying or soaking) and the most allowed at once */
  budget?: { inFlight: number, max: number }
  /** the per-tag budgets (across releases) that hold some host of it, with their hosts in flight now */
  budgets?: TagBudgetStatus[]
}

/**
 * `release status --watch` ends when this is defined, with it as the exit code: 0 only on
 * done; 6 halted, 7 aborted or refused (below an admin's release floor), 8 superseded (every
 * host of it taken over by newer releases).
 * rolling and paused keep watching.
 */
export function watchExitCode (state: OverallState): number | undefined {
  switch (state) {
    case 'done': return 0
    case 'halted': return 6
    case 'aborted':
    case 'refused': return 7
    case 'superseded': return 8
    default: return undefined
  }
}

/** How a release stands (CLI `release status`, the browser view); undefined for an unknown or non-admin release. */
export function releaseStatus (state: RolloutState, membership: MembershipView, releaseId: string, online: (peer: string) => boolean = () => true): ReleaseStatus | undefined {
  const ctx = gateContext(state, membership)
  const c = ctx.releases.get(releaseId)
  if (c === undefined) return undefined
  const base = { id: releaseId, number: c.body.number, signer: c.feed, failed: 0, failedHosts: [] as string[], maxFailures: c.body.maxFailures, unassigned: [] as string[], pinnedHosts: [] as string[], quarantinedPaths: [] as string[], staleHosts: [] as string[] }
  const control = controlState(state, membership, releaseId)
  // sealed (seal.ts): final, and its outcomes are no longer kept by every host
  if (c.body.number < sealedBelow(state, membership)) {
    return { ...base, waves: [], state: control.aborted ? 'aborted' : 'superseded', reason: 'sealed by a checkpoint: final' }
  }
  const floor = releaseFloor(state.holds.fresh, membership)
  if (floor !== undefined && c.body.number < floor.body.number) {
    return { ...base, waves: [], state: 'refused', reason: `below the release floor #${floor.body.number} set by ${floor.feed}: ${floor.body.reason}` }
  }
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
  const pinnedHosts: string[] = []
  const staleHosts: string[] = []
  const look = releaseLookup(state, ctx)
  const quarantinedPaths = [...new Set([...progress.plan.targetOf.values()].map(t => t.path))]
    .filter(p => quarantineOf(state.holds, membership, look, p) !== undefined).sort()
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
      pinned: n[HostClass.pinned],
      quarantined: 0,
      stale: n[HostClass.stale],
      need: g.need,
      gateMet: g.met,
      hostStates: []
    }
    for (const h of [...agg.hosts].sort()) {
      const cls = state.gates.classOf(releaseId, h) ?? HostClass.quiet
      let hs = CLASS_STATE[cls]
      if (cls === HostClass.failed) failedHosts.push(h)
      else if (cls === HostClass.pinned) pinnedHosts.push(h)
      else if (cls === HostClass.stale) staleHosts.push(h)
      else if (cls === HostClass.soaking) hs = awaitStateOf(state.outcomes, releaseId, h) ?? hs
      else if (cls === HostClass.quiet) {
        if (quarantinedPaths.includes(progress.plan.targetOf.get(h)?.path as string)) { w.quarantined++; hs = 'quarantined-refused' }
        else if (online(h)) w.pending++
        else { w.offline++; hs = 'offline' }
      }
      w.hostStates.push({ host: h, state: hs, ...(superseded(h) ? { superseded: true as const } : {}) })
      if (superseded(h)) w.superseded++
    }
    if (!g.met) {
      const edge = waveEdgeWait(state, progress, releaseId, i)
      w.waits = `${w.healthy}/${g.counted} healthy, needs ${agg.wave.gate.healthy} % (${g.need})` + (w.soaking > 0 ? `, ${w.soaking} soaking` : '') +
        (w.quarantined > 0 ? `, ${w.quarantined} refuse a quarantined path` : '') + (edge !== undefined ? `; ${edge}` : '')
    }
    return w
  })
  const max = maxInFlight(c.body, progress.plan.rank.size)
  const full = {
    ...base,
    waves,
    failed: progress.failed,
    failedHosts: failedHosts.sort(),
    unassigned: progress.plan.unassigned,
    pinnedHosts: pinnedHosts.sort(),
    quarantinedPaths,
    staleHosts: staleHosts.sort(),
    ...(max !== undefined ? { budget: { inFlight: inFlight(state, progress, releaseId), max } } : {}),
    ...tagBudgetsStatus(state, ctx, progress.plan.rank.keys())
  }
  if (control.aborted) return { ...full, state: 'aborted', reason: `aborted by ${control.by?.feed}` }
  if (progress.halt.halted) return { ...full, state: 'halted', reason: progress.halt.reason }
  const hosts = waves.reduce((s, w) => s + w.hosts, 0)
  if (hosts > 0 && waves.every(w => w.superseded === w.hosts)) return { ...full, state: 'superseded', reason: 'every host of it is targeted by a newer release' }
  if (control.paused) return { ...full, state: 'paused', reason: `paused by ${control.by?.feed}` }
  const edge = releaseEdgeWait(state, ctx, c.body)
  if (edge !== undefined && waves.every(w => w.applying + w.soaking + w.healthy + w.failed + w.unhealthy === 0)) return { ...full, state: 'rolling', reason: edge }
  const busy = waves.some(w => w.pending > 0 || w.applying > 0 || w.soaking > 0)
  if (progress.firstUnmet === waves.length && !busy) return { ...full, state: 'done' }
  // The last wave's gate holds no later wave back, so the decisions do not halt on it; but once
  // it can no longer be met and nothing is in flight, the release has ended short of its gate.
  const last = progress.gates[waves.length - 1]
  if (last?.lost === true && progress.firstUnmet === waves.length - 1 && !busy) {
    return { ...full, state: 'halted', reason: `wave ${waves.length} can no longer meet its gate: ${waves[waves.length - 1].failed} of ${last.counted} failed, ${last.need} must be healthy` }
  }
  const j = progress.firstUnmet
  // hosts that refuse a quarantined path never become healthy: the release stands still until it is cleared
  if (j < waves.length && waves[j].quarantined > 0 && !busy) {
    return { ...full, state: 'halted', reason: `wave ${j + 1}: ${waves[j].quarantined} host(s) refuse quarantined ${quarantinedPaths.join(', ')} until it is cleared` }
  }
  return j < waves.length ? { ...full, state: 'rolling', reason: `wave ${j + 1}: ${waves[j].waits}` } : { ...full, state: 'rolling' }
}

export interface PinStatus { host: string, path: string, reason: string, by: string, ref: string, expiresMs?: number }
export interface QuarantineStatus { path: string, reasons: string[], by: string[], failedOn: string[], refs: string[] }

/** Pins and quarantines in effect (CLI `pins`, `quarantine list`): `refs` is what a clear names to lift them all. */
export function holdsStatus (state: RolloutState, membership: MembershipView): { pins: PinStatus[], quarantined: QuarantineStatus[] } {
  const pins = pinned(state.holds, membership).flatMap(({ host, pins }) => pins.map(p => ({
    host, path: p.body.path, reason: p.body.reason, by: p.feed, ref: refOf(p), ...(p.body.expiresMs !== undefined ? { expiresMs: p.body.expiresMs } : {})
  })))
  const q = quarantined(state.holds, membership, releaseLookup(state, gateContext(state, membership))).map(q => ({
    path: q.path,
    reasons: [...q.manual.map(m => m.body.reason), ...q.failures.map(f => `failed after activation on ${f.host} in ${f.release}`)],
    by: q.manual.map(m => m.feed),
    failedOn: q.failures.map(f => f.host),
    refs: [...q.manual.map(refOf), ...q.failures.map(f => f.ref)]
  }))
  return { pins, quarantined: q }
}
