// Wave gates, evaluated incrementally. The evaluator belongs to one rollout state: per release it
// keeps per-wave counters and a bounded heap of soak-end times, fed from the fold's pending
// changes, so a decision costs O(new entries + waves), which is what lets a simulator run 10,000
// hosts on this same code. Which release counts (authority) is the caller's judgement: the
// evaluator is handed the candidate.
import type { Plan, PlanCache } from './plan.js'
import type { Entry } from '../audit/types.js'
import type { MembershipView, ReleaseCandidate, ReleaseOutcomes, Wave } from './types.js'

/** What the decisions read of a wave's aggregate. */
export interface WaveTally {
  readonly wave: Wave
  readonly hosts: string[]
  /** hosts whose latest outcome is apply-ok with no later failing health report */
  readonly healthy: number
  /** hosts that ever failed or rolled back */
  readonly failed: number
}

interface WaveAgg extends WaveTally {
  /** hosts with any outcome for the release */
  spoke: number
  failed: number
  healthy: number
  /** max-heap of the `cap` smallest soak-end times (healthyAt + soakMs) of healthy hosts */
  heap: number[]
  cap: number
  /** a healthy host left or changed its time: the heap must be rebuilt before it is read */
  stale: boolean
}

interface ReleaseGates {
  candidate: ReleaseCandidate
  revision: number | undefined
  plan: Plan
  waves: WaveAgg[]
}

export interface GateView {
  /** hosts the gate is judged on (the silent ones leave after waitOfflineMs) */
  counted: number
  need: number
  met: boolean
  /** when the gate was met, or undefined */
  metAt?: number
  /** when it will be met if nothing changes (enough hosts healthy, soak still running) */
  soakUntil?: number
  /** too many of its hosts failed for the gate ever to be met */
  lost: boolean
}

export interface Halt { halted: boolean, reason?: string }

export interface Progress {
  plan: Plan
  waves: readonly WaveTally[]
  /** gates of every wave, evaluated in order with each wave's opening time */
  gates: GateView[]
  /** index of the first wave whose gate is not met (waves.length when all are) */
  firstUnmet: number
  /** hosts of the release that ever failed, across its waves */
  failed: number
  halt: Halt
}

/** The opening time of a wave whose predecessor has not met its gate: it has no clock yet. */
export const NOT_OPEN = Number.MAX_SAFE_INTEGER

export function secs (ms: number): string {
  return `${Math.ceil(ms / 1000)} s`
}

/** When the host's soak ends: its latest outcome is apply-ok with no later failing health report. */
export function soakEnd (latest: Entry | undefined, health: Entry | undefined, soakMs: number): number | undefined {
  if (latest?.kind !== 'apply-ok') return undefined
  if (health !== undefined && health.seq > latest.seq && (health.body as { ok: boolean }).ok !== true) return undefined
  return (latest.body as { healthyAt: number }).healthyAt + soakMs
}

function heapPush (h: number[], cap: number, v: number): void {
  if (cap === 0) return
  let i: number
  if (h.length < cap) {
    // sift the hole up from the new last slot
    i = h.length
    h.push(v)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (h[p] >= v) break
      h[i] = h[p]
      i = p
    }
    h[i] = v
    return
  }
  if (v >= h[0]) return
  // replace the largest: sift the hole down from the root
  const n = h.length
  i = 0
  for (;;) {
    const l = 2 * i + 1
    if (l >= n) break
    const c = l + 1 < n && h[l + 1] > h[l] ? l + 1 : l
    if (h[c] <= v) break
    h[i] = h[c]
    i = c
  }
  h[i] = v
}

/** Hosts of a wave that must be healthy: 0 for a 0 % gate or an empty wave, else at least one. */
function needOf (wave: Wave, counted: number): number {
  if (wave.gate.healthy === 0 || counted === 0) return 0
  return Math.max(1, Math.ceil(wave.gate.healthy * counted / 100))
}

export class GateEvaluator {
  private readonly releases = new Map<string, ReleaseGates>()

  /** `outcomes` is the fold's map, read (and its pending changes drained) by this evaluator alone. */
  constructor (private readonly outcomes: ReadonlyMap<string, ReleaseOutcomes>, readonly plans: PlanCache) {}

  /** The gates of `candidate`'s waves at `now`, and whether the release has halted. */
  progress (membership: MembershipView, candidate: ReleaseCandidate, now: number): Progress {
    const rg = this.gatesOf(membership, candidate)
    const body = candidate.body
    let openAt = Math.max(candidate.ts, body.notBefore ?? 0)
    const gates: GateView[] = []
    let firstUnmet = rg.waves.length
    rg.waves.forEach((agg, j) => {
      const g = this.gateAt(body.id, agg, openAt, now)
      gates.push(g)
      if (!g.met && firstUnmet === rg.waves.length) firstUnmet = j
      // a later wave opens when this one's gate is met; before that its own clock has not started
      openAt = g.metAt ?? NOT_OPEN
    })
    const failed = rg.waves.reduce((s, a) => s + a.failed, 0)
    return { plan: rg.plan, waves: rg.waves, gates, firstUnmet, failed, halt: haltOf(rg, gates, failed) }
  }

  private gatesOf (membership: MembershipView, candidate: ReleaseCandidate): ReleaseGates {
    const id = candidate.body.id
    const o = this.outcomes.get(id)
    let rg = this.releases.get(id)
    if (rg === undefined || rg.candidate !== candidate || membership.revision === undefined || rg.revision !== membership.revision) {
      const plan = this.plans.of(candidate.body, membership)
      rg = {
        candidate,
        revision: membership.revision,
        plan,
        waves: candidate.body.waves.map((wave, i) => ({ wave, hosts: plan.waves[i], spoke: 0, failed: 0, healthy: 0, heap: [], cap: 0, stale: true }))
      }
      this.releases.set(id, rg)
      if (o !== undefined) o.pending.length = 0
      for (const agg of rg.waves) this.rebuildWave(id, agg, needOf(agg.wave, agg.hosts.length))
      return rg
    }
    if (o === undefined || o.pending.length === 0) return rg
    for (const ch of o.pending) {
      const k = rg.plan.waveOf.get(ch.host)
      if (k === undefined) continue
      const agg = rg.waves[k]
      if (ch.before === undefined && ch.after !== undefined) agg.spoke++
      if (ch.newlyFailed) agg.failed++
      const soak = agg.wave.gate.soakMs
      const was = soakEnd(ch.before, ch.beforeHealth, soak)
      const is = soakEnd(ch.after, ch.afterHealth, soak)
      if (was === undefined && is !== undefined) {
        agg.healthy++
        heapPush(agg.heap, agg.cap, is)
      } else if (was !== undefined && is === undefined) {
        agg.healthy--
        agg.stale = true
      } else if (was !== is) {
        agg.stale = true
      }
    }
    o.pending.length = 0
    return rg
  }

  private rebuildWave (releaseId: string, agg: WaveAgg, cap: number): void {
    const o = this.outcomes.get(releaseId)
    agg.spoke = 0
    agg.failed = 0
    agg.healthy = 0
    agg.heap = []
    agg.cap = cap
    agg.stale = false
    if (o === undefined) return
    for (const h of agg.hosts) {
      if (o.latest.has(h)) agg.spoke++
      if (o.failed.has(h)) agg.failed++
      const end = soakEnd(o.latest.get(h), o.health.get(h), agg.wave.gate.soakMs)
      if (end !== undefined) {
        agg.healthy++
        heapPush(agg.heap, cap, end)
      }
    }
  }

  private gateAt (releaseId: string, agg: WaveAgg, openAt: number, now: number): GateView {
    const n = agg.hosts.length
    const w = agg.wave
    const cutoff = w.waitOfflineMs === undefined ? undefined : openAt + w.waitOfflineMs
    const dropSilent = cutoff !== undefined && now >= cutoff
    const counted = dropSilent ? agg.spoke : n
    const need = needOf(w, counted)
    if (agg.stale || need !== agg.cap) this.rebuildWave(releaseId, agg, need)
    const lost = counted - agg.failed < need
    if (need === 0) return { counted, need, met: true, metAt: openAt, lost }
    if (agg.heap.length < need) return { counted, need, met: false, lost }
    const metAt = Math.max(openAt, agg.heap[0], dropSilent && counted < n ? cutoff : 0)
    return metAt <= now ? { counted, need, met: true, metAt, lost } : { counted, need, met: false, soakUntil: metAt, lost }
  }
}

function haltOf (rg: ReleaseGates, opens: GateView[], failed: number): Halt {
  const body = rg.candidate.body
  if (failed > body.maxFailures) return { halted: true, reason: `${failed} hosts failed, the budget is ${body.maxFailures}` }
  for (let j = 0; j < opens.length - 1; j++) {
    const g = opens[j]
    if (g.lost) return { halted: true, reason: `wave ${j} can no longer meet its gate: ${rg.waves[j].failed} of ${g.counted} failed, ${g.need} must be healthy` }
  }
  return { halted: false }
}
