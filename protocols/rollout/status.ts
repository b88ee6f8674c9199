// How a release stands, for operators (CLI `release status`, the browser view): the same
// authority and gates the hosts decide by, counted per wave.
import { controlState, effectiveRelease, outranks, validReleases } from './authority.js'
import { NOT_OPEN, secs, soakEnd } from './gates.js'
import type { RolloutState } from './state.js'
import type { MembershipView } from './types.js'

export interface WaveStatus {
  index: number
  hosts: number
  /** online hosts that have written nothing for the release */
  pending: number
  applying: number
  healthy: number
  failed: number
  /** hosts that have written nothing and are offline (per the caller's `online`) */
  offline: number
  /** hosts the gate needs healthy (after silent hosts left the count, if waitOfflineMs applies) */
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
  maxFailures: number
  /** hosts a target matched but no wave selected */
  unassigned: string[]
}

/** How a release stands (CLI `release status`, the browser view); undefined for an unknown or non-admin release. */
export function releaseStatus (state: RolloutState, membership: MembershipView, releaseId: string, now: number, online: (peer: string) => boolean = () => true): ReleaseStatus | undefined {
  const c = effectiveRelease(state, membership, releaseId)
  if (c === undefined) return undefined
  const progress = state.gates.progress(membership, c, now)
  const o = state.outcomes.get(releaseId)
  const waves: WaveStatus[] = progress.waves.map((agg, i) => {
    const w: WaveStatus = { index: i, hosts: agg.hosts.length, pending: 0, applying: 0, healthy: 0, failed: 0, offline: 0, need: progress.gates[i].need, gateMet: progress.gates[i].met }
    for (const h of agg.hosts) {
      const latest = o?.latest.get(h)
      if (o?.failed.has(h) === true) w.failed++
      if (latest === undefined) {
        if (online(h)) w.pending++
        else w.offline++
      } else if (latest.kind === 'apply-start') w.applying++
      else if (soakEnd(latest, o?.health.get(h), 0) !== undefined) w.healthy++
    }
    const g = progress.gates[i]
    if (!g.met) {
      w.waits = `${agg.healthy}/${g.counted} healthy, needs ${agg.wave.gate.healthy} % (${g.need})` +
        (g.soakUntil !== undefined && g.soakUntil < NOT_OPEN ? `, soak ${secs(g.soakUntil - now)} left` : '')
    }
    return w
  })
  const base = { id: releaseId, number: c.body.number, signer: c.feed, waves, failed: progress.failed, maxFailures: c.body.maxFailures, unassigned: progress.plan.unassigned }
  const control = controlState(state, membership, releaseId)
  if (control.aborted) return { ...base, state: 'aborted', reason: `aborted by ${control.by?.feed}` }
  const newer = validReleases(state, membership).find(r => outranks(r, c) && !controlState(state, membership, r.body.id).aborted)
  if (newer !== undefined) return { ...base, state: 'superseded', reason: `superseded by ${newer.body.id} #${newer.body.number}` }
  if (progress.halt.halted) return { ...base, state: 'halted', reason: progress.halt.reason }
  if (control.paused) return { ...base, state: 'paused', reason: `paused by ${control.by?.feed}` }
  const busy = waves.some(w => w.pending > 0 || w.applying > 0)
  if (progress.firstUnmet === waves.length && !busy) return { ...base, state: 'done' }
  const j = progress.firstUnmet
  return j < waves.length ? { ...base, state: 'rolling', reason: `wave ${j}: ${waves[j].waits}` } : { ...base, state: 'rolling' }
}
