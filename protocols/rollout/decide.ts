// What a host does next, and how a release stands, as pure functions of the rollout state, the
// membership view and `now`. Authority is judged here, not in the fold: a release or control
// entry counts only while its signer is an admin in the view, so a revoked admin's pending
// releases stop everywhere at once.
//
// Gates are evaluated incrementally: per (state, release) an evaluator keeps per-wave counters
// and a bounded heap of soak-end times, fed from the fold's pending changes, so a decision costs
// O(new entries + waves), which is what lets a simulator run 10,000 hosts on this same code.
import { planRelease } from './plan.js'
import type { Plan } from './plan.js'
import type { ControlRecord, Flag, ReleaseCandidate, RolloutState } from './state.js'
import type { Entry } from '../audit/types.js'
import type { DecideOptions, Decision, MembershipView, ReleaseBody, Wave } from './types.js'

// ---- authority -----------------------------------------------------------------------------

/** The release entry that `id` means: the admin-signed candidate with the lowest (feed, seq). */
export function effectiveRelease (state: RolloutState, membership: MembershipView, id: string): ReleaseCandidate | undefined {
  let best: ReleaseCandidate | undefined
  for (const c of state.releases.get(id) ?? []) {
    if (!membership.isAdmin(c.feed)) continue
    if (best === undefined || c.feed < best.feed || (c.feed === best.feed && c.seq < best.seq)) best = c
  }
  return best
}

export interface ControlState { paused: boolean, aborted: boolean, by?: ControlRecord }

function laterControl (a: ControlRecord, b: ControlRecord): boolean {
  return a.ts !== b.ts ? a.ts > b.ts : a.feed !== b.feed ? a.feed > b.feed : a.seq > b.seq
}

/** Abort is final; otherwise the latest (ts, feed, seq) admin pause/resume decides. */
export function controlState (state: RolloutState, membership: MembershipView, id: string): ControlState {
  let last: ControlRecord | undefined
  let abort: ControlRecord | undefined
  for (const c of state.controls.get(id) ?? []) {
    if (!membership.isAdmin(c.feed)) continue
    if (c.action === 'abort') {
      if (abort === undefined || laterControl(abort, c)) abort = c
    } else if (last === undefined || laterControl(c, last)) last = c
  }
  if (abort !== undefined) return { paused: false, aborted: true, by: abort }
  return { paused: last?.action === 'pause', aborted: false, by: last }
}

/** True when release a outranks b: higher number, then higher signer id, then higher release id. */
export function outranks (a: ReleaseCandidate, b: ReleaseCandidate): boolean {
  if (a.body.number !== b.body.number) return a.body.number > b.body.number
  if (a.feed !== b.feed) return a.feed > b.feed
  return a.body.id > b.body.id
}

/**
 * Entries the decisions refuse, sorted by (feed, seq): bodies that broke their schema,
 * releases and controls not signed by an admin, and release ids used by more than one admin
 * entry (the one with the lowest (feed, seq) counts; the others are flagged).
 */
export function flagged (state: RolloutState, membership: MembershipView): Flag[] {
  const out: Flag[] = [...state.flagged]
  for (const [id, list] of state.releases) {
    const winner = effectiveRelease(state, membership, id)
    for (const c of list) {
      if (!membership.isAdmin(c.feed)) out.push({ feed: c.feed, seq: c.seq, kind: 'release', reason: `release ${id} not signed by an admin: ignored` })
      else if (c !== winner) out.push({ feed: c.feed, seq: c.seq, kind: 'release', reason: `release id ${id} already used by ${winner?.feed}#${winner?.seq}: ignored` })
    }
  }
  for (const [id, list] of state.controls) {
    for (const c of list) {
      if (!membership.isAdmin(c.feed)) out.push({ feed: c.feed, seq: c.seq, kind: 'release-control', reason: `${c.action} of ${id} not signed by an admin: ignored` })
    }
  }
  return out.sort((a, b) => a.feed !== b.feed ? (a.feed < b.feed ? -1 : 1) : a.seq - b.seq)
}

// ---- plans and gates -----------------------------------------------------------------------

const planCache = new WeakMap<ReleaseBody, { revision: number, plan: Plan }>()

/** The release's plan under this membership; cached while the view's revision stays the same. */
export function planOf (body: ReleaseBody, membership: MembershipView): Plan {
  const revision = membership.revision
  const hit = planCache.get(body)
  if (revision !== undefined && hit !== undefined && hit.revision === revision) return hit.plan
  const plan = planRelease(body, membership)
  if (revision !== undefined) planCache.set(body, { revision, plan })
  return plan
}

interface WaveAgg {
  wave: Wave
  hosts: string[]
  /** hosts with any outcome for the release */
  spoke: number
  /** hosts that ever failed or rolled back */
  failed: number
  /** hosts whose latest outcome is apply-ok with no later failing health report */
  healthy: number
  /** max-heap of the `cap` smallest soak-end times (healthyAt + soakMs) of healthy hosts */
  heap: number[]
  cap: number
  /** a healthy host left or changed its time: the heap must be rebuilt before it is read */
  stale: boolean
}

interface Evaluator {
  candidate: ReleaseCandidate
  revision: number | undefined
  plan: Plan
  waves: WaveAgg[]
}

const evaluators = new WeakMap<RolloutState, Map<string, Evaluator>>()

function soakEnd (latest: Entry | undefined, health: Entry | undefined, soakMs: number): number | undefined {
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

function rebuildWave (state: RolloutState, releaseId: string, agg: WaveAgg, cap: number): void {
  const o = state.outcomes.get(releaseId)
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

function evaluatorOf (state: RolloutState, membership: MembershipView, candidate: ReleaseCandidate): Evaluator {
  let perState = evaluators.get(state)
  if (perState === undefined) {
    perState = new Map()
    evaluators.set(state, perState)
  }
  const id = candidate.body.id
  const o = state.outcomes.get(id)
  let ev = perState.get(id)
  if (ev === undefined || ev.candidate !== candidate || membership.revision === undefined || ev.revision !== membership.revision) {
    const plan = planOf(candidate.body, membership)
    ev = {
      candidate,
      revision: membership.revision,
      plan,
      waves: candidate.body.waves.map((wave, i) => ({ wave, hosts: plan.waves[i], spoke: 0, failed: 0, healthy: 0, heap: [], cap: 0, stale: true }))
    }
    perState.set(id, ev)
    if (o !== undefined) o.pending.length = 0
    for (const agg of ev.waves) rebuildWave(state, id, agg, needOf(agg.wave, agg.hosts.length))
    return ev
  }
  if (o === undefined || o.pending.length === 0) return ev
  for (const ch of o.pending) {
    const k = ev.plan.waveOf.get(ch.host)
    if (k === undefined) continue
    const agg = ev.waves[k]
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
  return ev
}

/** Hosts of a wave that must be healthy: 0 for a 0 % gate or an empty wave, else at least one. */
function needOf (wave: Wave, counted: number): number {
  if (wave.gate.healthy === 0 || counted === 0) return 0
  return Math.max(1, Math.ceil(wave.gate.healthy * counted / 100))
}

interface GateView {
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

function gateAt (state: RolloutState, releaseId: string, agg: WaveAgg, openAt: number, now: number): GateView {
  const n = agg.hosts.length
  const w = agg.wave
  const cutoff = w.waitOfflineMs === undefined ? undefined : openAt + w.waitOfflineMs
  const dropSilent = cutoff !== undefined && now >= cutoff
  const counted = dropSilent ? agg.spoke : n
  const need = needOf(w, counted)
  if (agg.stale || need !== agg.cap) rebuildWave(state, releaseId, agg, need)
  const lost = counted - agg.failed < need
  if (need === 0) return { counted, need, met: true, metAt: openAt, lost }
  if (agg.heap.length < need) return { counted, need, met: false, lost }
  const metAt = Math.max(openAt, agg.heap[0], dropSilent && counted < n ? cutoff : 0)
  return metAt <= now ? { counted, need, met: true, metAt, lost } : { counted, need, met: false, soakUntil: metAt, lost }
}

export interface Halt { halted: boolean, reason?: string }

function haltOf (ev: Evaluator, opens: GateView[]): Halt {
  const body = ev.candidate.body
  const failed = ev.waves.reduce((s, a) => s + a.failed, 0)
  if (failed > body.maxFailures) return { halted: true, reason: `${failed} hosts failed, the budget is ${body.maxFailures}` }
  for (let j = 0; j < opens.length - 1; j++) {
    const g = opens[j]
    if (g.lost) return { halted: true, reason: `wave ${j} can no longer meet its gate: ${ev.waves[j].failed} of ${g.counted} failed, ${g.need} must be healthy` }
  }
  return { halted: false }
}

/** The opening time of a wave whose predecessor has not met its gate: it has no clock yet. */
const NOT_OPEN = Number.MAX_SAFE_INTEGER

function secs (ms: number): string {
  return `${Math.ceil(ms / 1000)} s`
}

interface Progress {
  /** gates of every wave, evaluated in order with each wave's opening time */
  gates: GateView[]
  /** index of the first wave whose gate is not met (waves.length when all are) */
  firstUnmet: number
  halt: Halt
}

function progressOf (state: RolloutState, ev: Evaluator, now: number): Progress {
  const body = ev.candidate.body
  let openAt = Math.max(ev.candidate.ts, body.notBefore ?? 0)
  const gates: GateView[] = []
  let firstUnmet = ev.waves.length
  ev.waves.forEach((agg, j) => {
    const g = gateAt(state, body.id, agg, openAt, now)
    gates.push(g)
    if (!g.met && firstUnmet === ev.waves.length) firstUnmet = j
    // a later wave opens when this one's gate is met; before that its own clock has not started
    openAt = g.metAt ?? NOT_OPEN
  })
  return { gates, firstUnmet, halt: haltOf(ev, gates) }
}

// ---- the host's decision -------------------------------------------------------------------

function validReleases (state: RolloutState, membership: MembershipView): ReleaseCandidate[] {
  const out: ReleaseCandidate[] = []
  for (const id of state.releases.keys()) {
    const c = effectiveRelease(state, membership, id)
    if (c !== undefined) out.push(c)
  }
  return out
}

/**
 * The next action of `host`: apply its active release when its wave may start, wait, revert a
 * halted release it is on (autoRevert), or nothing. Same state + view + now ⇒ same decision on
 * every host.
 */
export function decide (state: RolloutState, membership: MembershipView, host: string, now: number, opts: DecideOptions = {}): Decision {
  const trace: string[] = []
  const note = opts.trace === false ? () => {} : (s: string) => { trace.push(s) }
  if (!membership.isMember(host)) return { action: 'none', reason: 'not a member', trace }
  const releases = validReleases(state, membership)
  let applied = 0
  let current: ReleaseCandidate | undefined
  let active: ReleaseCandidate | undefined
  for (const c of releases) {
    const latest = state.outcomes.get(c.body.id)?.latest.get(host)
    if (latest !== undefined) {
      applied = Math.max(applied, c.body.number)
      if ((latest.kind === 'apply-ok' || latest.kind === 'apply-start') && (current === undefined || outranks(c, current))) current = c
    }
    if (controlState(state, membership, c.body.id).aborted) {
      note(`${c.body.id}: aborted`)
      continue
    }
    if (!planOf(c.body, membership).waveOf.has(host)) continue
    if (active === undefined || outranks(c, active)) active = c
  }
  const revert = revertOf(state, membership, host, current, now, trace, note)
  if (active === undefined) {
    return revert ?? { action: 'none', reason: 'not targeted by any active release', trace }
  }
  const id = active.body.id
  note(`active release: ${id} #${active.body.number} signed by ${active.feed}`)
  if (active.body.number < applied) {
    return revert ?? { action: 'none', release: id, reason: `superseded here: this host already applied a release numbered ${applied}`, trace }
  }
  const ev = evaluatorOf(state, membership, active)
  const k = ev.plan.waveOf.get(host) as number
  const latest = state.outcomes.get(id)?.latest.get(host)
  const progress = progressOf(state, ev, now)
  if (progress.halt.halted) {
    note(`halted: ${progress.halt.reason}`)
    return revert ?? { action: 'none', release: id, reason: `halted: ${progress.halt.reason}`, trace }
  }
  if (latest !== undefined) {
    const why = latest.kind === 'apply-ok' ? 'already on it' : latest.kind === 'apply-start' ? 'apply in progress' : `${latest.kind} here: not retried`
    return revert ?? { action: 'none', release: id, reason: why, trace }
  }
  if (revert !== undefined) return revert
  const control = controlState(state, membership, id)
  if (control.paused) return { action: 'wait', release: id, wave: k, reason: `paused by ${control.by?.feed}`, trace }
  const notBefore = active.body.notBefore ?? 0
  if (now < notBefore) return { action: 'wait', release: id, wave: k, reason: `not before ${notBefore}: ${secs(notBefore - now)} left`, until: notBefore, trace }
  if (progress.firstUnmet < k) {
    const j = progress.firstUnmet
    const g = progress.gates[j]
    const agg = ev.waves[j]
    let reason = `wave ${k} waits: wave ${j} has ${agg.healthy}/${g.counted} healthy, needs ${agg.wave.gate.healthy} %`
    if (g.soakUntil !== undefined) reason += `, soak ${secs(g.soakUntil - now)} left`
    note(reason)
    return g.soakUntil !== undefined
      ? { action: 'wait', release: id, wave: k, reason, until: g.soakUntil, trace }
      : { action: 'wait', release: id, wave: k, reason, trace }
  }
  const target = ev.plan.targetOf.get(host)
  if (target === undefined) return { action: 'none', release: id, reason: 'not targeted', trace }
  note(`wave ${k} open: every earlier wave meets its gate`)
  return { action: 'apply', release: id, number: active.body.number, path: target.path, sources: target.sources, wave: k, trace }
}

/** A wave gate's soak that `host` is inside of: it must stay healthy until `until`. */
export interface SoakWatch { release: string, path: string, until: number }

/**
 * The soak this host is serving, if any: its newest outcome for a live release is apply-ok, with
 * no failing health report since, and its wave's gate soak has not ended. The host keeps probing
 * until then and reports a failure as a `health` entry, which takes it out of the gate's count.
 */
export function soakWatchOf (state: RolloutState, membership: MembershipView, host: string, now: number): SoakWatch | undefined {
  let best: { c: ReleaseCandidate, watch: SoakWatch } | undefined
  for (const c of validReleases(state, membership)) {
    const o = state.outcomes.get(c.body.id)
    const latest = o?.latest.get(host)
    if (latest?.kind !== 'apply-ok' || controlState(state, membership, c.body.id).aborted) continue
    const k = planOf(c.body, membership).waveOf.get(host)
    if (k === undefined) continue
    const until = soakEnd(latest, o?.health.get(host), c.body.waves[k].gate.soakMs)
    if (until === undefined || until <= now) continue
    if (best === undefined || outranks(c, best.c)) best = { c, watch: { release: c.body.id, path: (latest.body as { path: string }).path, until } }
  }
  return best?.watch
}

function revertOf (state: RolloutState, membership: MembershipView, host: string, current: ReleaseCandidate | undefined, now: number, trace: string[], note: (s: string) => void): Decision | undefined {
  if (current === undefined || current.body.autoRevert !== true) return undefined
  const id = current.body.id
  let why: string | undefined
  if (controlState(state, membership, id).aborted) why = 'aborted'
  else {
    const halt = progressOf(state, evaluatorOf(state, membership, current), now).halt
    if (halt.halted) why = `halted: ${halt.reason}`
  }
  if (why === undefined) return undefined
  note(`on ${id}, which is ${why}; autoRevert`)
  const latest = state.outcomes.get(id)?.latest.get(host) as Entry
  return { action: 'revert', release: id, path: (latest.body as { path: string }).path, trace }
}

// ---- status for operators ------------------------------------------------------------------

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
  const ev = evaluatorOf(state, membership, c)
  const progress = progressOf(state, ev, now)
  const o = state.outcomes.get(releaseId)
  const waves: WaveStatus[] = ev.waves.map((agg, i) => {
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
  const failed = ev.waves.reduce((s, a) => s + a.failed, 0)
  const base = { id: releaseId, number: c.body.number, signer: c.feed, waves, failed, maxFailures: c.body.maxFailures, unassigned: ev.plan.unassigned }
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
