// What a host does next, as a pure function of the rollout state, the membership view, `now`
// (read only against the release's own notBefore schedule, and once against its signed ts for a
// freshness verdict, fresh.ts) and the local timers that ran out:
// authority.ts says which entries count, the state's gate evaluator (gates.ts) how far each
// release's waves have come, overdue.ts which timeout this host tends; this module turns them
// into one action with its reasons.
import { controlState, outranks, sealedBelow, validReleases } from './authority.js'
import { HostClass, secs, type GateContext, type PinLookup, type Progress } from './gates.js'
import { pinHolds, pinned, pinsOf, pinTimerKey, quarantineOf, refOf, type HoldRecord, type ReleaseLookup } from './holds.js'
import { choreOf, type Chore } from './overdue.js'
import { isStale, releaseFloor, staleNow, verdictOf } from './fresh.js'
import { releaseEdgeWait, waveEdgeWait } from './edges.js'
import { budgetWait } from './budget.js'
import { entryRef, tagBudgetWait } from './tag-budget.js'
import type { Plan } from './plan.js'
import type { RolloutState } from './state.js'
import type { Entry } from '../audit/types.js'
import type { CauseKind, DecideOptions, Decision, EntryRef, MembershipView, PinBody, ReleaseBody, ReleaseCandidate } from './types.js'

/** The release's plan from the state's cache; undefined while this host does not hold the release's basis. */
export function planOf (state: RolloutState, body: ReleaseBody, membership: MembershipView): Plan | undefined {
  return state.gates.plans.of(body, membership)
}

/** The counted releases, the pins, and a key that changes whenever they or the membership may have. */
export function gateContext (state: RolloutState, membership: MembershipView): GateContext {
  const releases = new Map<string, ReleaseCandidate>()
  for (const c of validReleases(state, membership)) releases.set(c.body.id, c)
  let entries = 0
  for (const list of state.releases.values()) entries += list.length
  const pins: PinLookup = {
    hosts: () => pinned(state.holds, membership).map(p => p.host),
    holds: (host, path) => state.holds.pins.has(host) && pinHolds(pinsOf(state.holds, membership, host), path)
  }
  const fresh = state.holds.fresh
  const stale = fresh.staleRevision > 0 ? (release: string, host: string) => isStale(fresh, membership, release, host) : undefined
  return { membership, releases, pins, stale, key: membership.revision === undefined ? undefined : `${membership.revision}/${entries}/${state.holds.pinRevision}/${fresh.staleRevision}` }
}

/** Releases numbered below this are never applied nor reverted here: sealed (seal.ts) or under an admin's floor (fresh.ts). */
export function refusedBelow (state: RolloutState, membership: MembershipView): number {
  return Math.max(sealedBelow(state, membership), releaseFloor(state.holds.fresh, membership)?.body.number ?? 0)
}

/** What the quarantine judgement reads: the counted releases and their plans. */
export function releaseLookup (state: RolloutState, ctx: GateContext): ReleaseLookup {
  return { releases: ctx.releases, planOf: c => planOf(state, c.body, ctx.membership) }
}

const IN_RELEASE = new Set(['apply-start', 'apply-ok', 'soaked', 'confirming', 'pending-reboot'])

/** Records one step of the reasoning: in the trace, and with what it is and the entries it rests on for `cite` (why.ts). */
type Note = (text: string, what?: CauseKind, entries?: EntryRef[]) => void

const releaseRef = (c: ReleaseCandidate): EntryRef => entryRef(c, 'release')

function withChore (d: Decision & { action: 'wait' | 'none' }, chore: Chore | undefined, trace: string[], note: Note): Decision {
  if (chore === undefined) return d
  if ('attest' in chore) {
    note(`wave ${chore.attest.wave + 1}: ${chore.attest.hosts.length} host(s) ${chore.attest.why === 'silent' ? 'silent' : 'past the apply deadline'} on this host's timer`, 'timer')
    return { action: 'attest', release: chore.attest.release, kind: 'overdue', body: chore.attest, trace }
  }
  return { ...d, timer: chore.timer }
}

/**
 * The next action of `host`: apply its active release when its wave is open, wait, revert a
 * halted release it is on (autoRevert), write an overdue entry a local timer called for, or
 * nothing. Same state + view + expired timers ⇒ same decision on every host.
 */
export function decide (state: RolloutState, membership: MembershipView, host: string, now: number, opts: DecideOptions = {}): Decision {
  const trace: string[] = []
  const cite = opts.cite
  const note: Note = opts.trace === false && cite === undefined
    ? () => {}
    : (text, what, entries = []) => {
        if (opts.trace !== false) trace.push(text)
        if (what !== undefined) cite?.({ what, text, entries })
      }
  if (!membership.isMember(host)) {
    note('not a member', 'membership')
    return { action: 'none', reason: 'not a member', trace }
  }
  const pins = state.holds.pins.has(host) ? pinsOf(state.holds, membership, host) : []
  // the pin whose expiry this host measures: one at a time, the first in (feed, seq) order
  const expiring = pins.find(p => p.body.expiresMs !== undefined)
  if (expiring !== undefined && opts.expired?.has(pinTimerKey(expiring)) === true) {
    note(`pin ${refOf(expiring)} expired on this host's timer`, 'pin', [entryRef(expiring, 'pin')])
    return { action: 'attest', kind: 'unpin', body: { host, lifts: [refOf(expiring)], expired: true }, trace }
  }
  const d = decideReleases(state, membership, host, now, opts, pins, trace, note)
  if ((d.action !== 'wait' && d.action !== 'none') || d.timer !== undefined) return d
  if (expiring !== undefined) return { ...d, timer: { key: pinTimerKey(expiring), ms: expiring.body.expiresMs as number } }
  return withChore(d, movedOnChore(state, membership, host, d.release, opts.expired), trace, note)
}

/**
 * The overdue chore `host` tends for a release whose plan holds it but that it does not decide on
 * (a newer release took it: it moved on), oldest first. It keeps its place in line (overdue.ts):
 * else a release whose live hosts all moved on would wait for its silent or dead hosts for good,
 * whatever its waitOfflineMs and apply deadline say. One timer at a time: the decided one's first.
 */
function movedOnChore (state: RolloutState, membership: MembershipView, host: string, decided: string | undefined, expired: ReadonlySet<string> | undefined): Chore | undefined {
  const ctx = gateContext(state, membership)
  const floor = refusedBelow(state, membership)
  const others = [...ctx.releases.values()].filter(c => c.body.id !== decided && c.body.number >= floor &&
    planOf(state, c.body, membership)?.waveOf.has(host) === true && !controlState(state, membership, c.body.id).aborted &&
    (c.body.after === undefined || releaseEdgeWait(state, ctx, c.body) === undefined))
  for (const c of others.sort((a, b) => outranks(a, b) ? 1 : -1)) {
    const progress = state.gates.progress(ctx, c)
    const chore = progress === undefined ? undefined : choreOf(state, progress, c.body, host, expired)
    if (chore !== undefined) return chore
  }
  return undefined
}

function decideReleases (state: RolloutState, membership: MembershipView, host: string, now: number, opts: DecideOptions, pins: Array<HoldRecord<PinBody>>, trace: string[], note: Note): Decision {
  const ctx = gateContext(state, membership)
  // a sealed release is final (seal.ts): never applied or reverted again, and it numbers below
  // every open one, so what this host applied of it cannot supersede one either; a release under
  // an admin's floor is refused alike
  const floor = refusedBelow(state, membership)
  let applied = 0
  let current: ReleaseCandidate | undefined
  let active: ReleaseCandidate | undefined
  let catchingUp: ReleaseCandidate | undefined
  // the highest release that targets this host but waits for another (edges.ts): not active yet
  let waiting: { c: ReleaseCandidate, reason: string } | undefined
  for (const c of ctx.releases.values()) {
    if (c.body.number < floor) continue
    const latest = state.outcomes.get(c.body.id)?.latest.get(host)
    if (latest !== undefined) {
      applied = Math.max(applied, c.body.number)
      if (IN_RELEASE.has(latest.kind) && (current === undefined || outranks(c, current))) current = c
    }
    const control = controlState(state, membership, c.body.id)
    if (control.aborted) {
      note(`${c.body.id}: aborted`, 'abort', control.by !== undefined ? [entryRef(control.by, 'release-control')] : [])
      continue
    }
    const plan = planOf(state, c.body, membership)
    if (plan === undefined) {
      if (catchingUp === undefined || outranks(c, catchingUp)) catchingUp = c
      continue
    }
    if (!plan.waveOf.has(host)) continue
    const edge = c.body.after === undefined ? undefined : releaseEdgeWait(state, ctx, c.body)
    if (edge !== undefined) {
      if (waiting === undefined || outranks(c, waiting.c)) waiting = { c, reason: edge }
      continue
    }
    if (active === undefined || outranks(c, active)) active = c
  }
  if (waiting !== undefined) note(`${waiting.c.body.id} ${waiting.reason}`, 'edge', edgeRefs(ctx, waiting.c))
  // the freshness verdict is due the first time this host decides on a release that targets it,
  // whatever then holds it (a pin, an edge, its wave's gate): when it first learned of it
  for (const c of [active, waiting?.c]) {
    if (c === undefined || c.body.freshForMs === undefined || c.body.number < applied) continue
    if (state.outcomes.get(c.body.id)?.latest.has(host) === true || verdictOf(state.holds.fresh, membership, c.body.id, host) !== undefined) continue
    const stale = staleNow(c.body.freshForMs, c.ts, now)
    note(`${c.body.id}: first decided on here ${secs(now - c.ts)} after it was signed; fresh for ${secs(c.body.freshForMs)}: ${stale ? 'stale' : 'fresh'}`, 'fresh', [releaseRef(c)])
    return { action: 'attest', release: c.body.id, kind: 'release-seen', body: { release: c.body.id, stale }, trace }
  }
  if (pins.length > 0 && pinHolds(pins, active === undefined ? undefined : planOf(state, active.body, membership)?.targetOf.get(host)?.path)) {
    const p = pins[0]
    const reason = `pinned by ${p.feed}: ${p.body.reason}`
    note(`pinned to ${p.body.path} by ${p.feed} (${refOf(p)}): holds its generation`)
    note(reason, 'pin', pins.map(x => entryRef(x, 'pin')))
    return { action: 'none', ...(active !== undefined ? { release: active.body.id } : {}), reason, trace }
  }
  const revert = revertOf(state, ctx, host, current, trace, note)
  if (catchingUp !== undefined && catchingUp.body.number >= applied && (active === undefined || outranks(catchingUp, active))) {
    note(`${catchingUp.body.id}: this host does not hold the membership entries of its basis yet`)
    if (revert !== undefined) return revert
    note('catching up to the release\'s basis', 'basis', [releaseRef(catchingUp)])
    return { action: 'none', release: catchingUp.body.id, reason: 'catching up to the release\'s basis', trace }
  }
  if (active === undefined) {
    if (revert !== undefined) return revert
    if (waiting !== undefined) {
      const w = waiting.c
      note(waiting.reason, 'edge', edgeRefs(ctx, w))
      return { action: 'wait', release: w.body.id, wave: planOf(state, w.body, membership)?.waveOf.get(host) as number, reason: waiting.reason, trace }
    }
    note('not targeted by any active release', 'idle')
    return { action: 'none', reason: 'not targeted by any active release', trace }
  }
  const id = active.body.id
  note(`active release: ${id} #${active.body.number} signed by ${active.feed}`)
  const none = (what: CauseKind, reason: string, entries: EntryRef[]): Decision => {
    note(reason, what, entries)
    return { action: 'none', release: id, reason, trace }
  }
  if (active.body.number < applied) {
    return revert ?? none('superseded', `superseded here: this host already applied a release numbered ${applied}`, [releaseRef(active)])
  }
  const progress = state.gates.progress(ctx, active) as Progress
  const k = progress.plan.waveOf.get(host) as number
  const latest = state.outcomes.get(id)?.latest.get(host)
  if (progress.halt.halted) {
    if (revert !== undefined) return revert
    return none('halt', `halted: ${progress.halt.reason}`, [releaseRef(active)])
  }
  const chore = choreOf(state, progress, active.body, host, opts.expired)
  if (latest !== undefined) {
    const cls = state.gates.classOf(id, host)
    const why = cls === HostClass.soaking ? 'applied, soaking' : cls === HostClass.applying ? 'apply in progress' : latest.kind === 'apply-failed' || latest.kind === 'rollback' ? `${latest.kind} here: not retried` : 'already on it'
    if (revert !== undefined) return revert
    note(why, 'outcome', [entryRef(latest, latest.kind)])
    return withChore({ action: 'none', release: id, reason: why, trace }, chore, trace, note)
  }
  if (revert !== undefined) return revert
  const wait = (what: CauseKind, reason: string, entries: EntryRef[], until?: number): Decision => {
    note(reason, what, entries)
    return withChore({ action: 'wait', release: id, wave: k, reason, ...(until !== undefined ? { until } : {}), trace }, chore, trace, note)
  }
  const verdict = active.body.freshForMs !== undefined ? verdictOf(state.holds.fresh, membership, id, host) : undefined
  if (verdict?.body.stale === true) {
    const reason = `stale: this host first held it after its freshness window of ${secs(active.body.freshForMs as number)}`
    note(reason, 'fresh', [entryRef(verdict, 'release-seen'), releaseRef(active)])
    return withChore({ action: 'none', release: id, reason, trace }, chore, trace, note)
  }
  const control = controlState(state, membership, id)
  if (control.paused) return wait('pause', `paused by ${control.by?.feed}`, control.by !== undefined ? [entryRef(control.by, 'release-control')] : [])
  const notBefore = active.body.notBefore ?? 0
  if (now < notBefore) return wait('schedule', `not before ${notBefore}: ${secs(notBefore - now)} left`, [releaseRef(active)], notBefore)
  if (progress.firstUnmet < k) {
    const j = progress.firstUnmet
    const g = progress.gates[j]
    const n = progress.waves[j].n
    let reason = `wave ${k + 1} waits: wave ${j + 1} has ${n[HostClass.healthy]}/${g.counted} healthy, needs ${progress.waves[j].wave.gate.healthy} %`
    if (n[HostClass.soaking] > 0) reason += `, ${n[HostClass.soaking]} soaking`
    return wait('gate', reason, [releaseRef(active), ...overdueRefs(state, id, j)])
  }
  const edge = waveEdgeWait(state, progress, id, k, host)
  if (edge !== undefined) return wait('edge', edge, [releaseRef(active)])
  const target = progress.plan.targetOf.get(host)
  if (target === undefined) return none('idle', 'not targeted', [releaseRef(active)])
  const q = quarantineOf(state.holds, membership, releaseLookup(state, ctx), target.path)
  if (q !== undefined) {
    const why = q.manual.length > 0 ? `quarantined by ${q.manual[0].feed}: ${q.manual[0].body.reason}` : `quarantined: failed after activation on ${q.failures.length} host(s)`
    note(`${target.path} ${why}`)
    return wait('quarantine', `path ${why}`, [...q.manual.map(x => entryRef(x, 'quarantine')), ...q.failures.map(f => ({ feed: f.host, seq: f.seq, kind: 'rollback' }))])
  }
  const budget = budgetWait(state, progress, active.body, host)
  if (budget !== undefined) return wait('budget', budget, [releaseRef(active)])
  const tagged = tagBudgetWait(state, ctx, host, active)
  if (tagged !== undefined) return wait('tag-budget', tagged.text, tagged.entries)
  note(`wave ${k + 1} open: every earlier wave meets its gate`, 'open', [releaseRef(active)])
  return { action: 'apply', release: id, number: active.body.number, path: target.path, sources: target.sources, wave: k, trace }
}

/**
 * The soak this host owes: its newest outcome for a live release is an apply-ok (with an
 * attempt) and its wave's gate has a soak. The agent probes health for `soakMs` on its own
 * monotonic clock from now (a restart starts the soak again), then writes `soaked`; a failing
 * probe inside the window fails the apply (rollback, apply-failed for that attempt).
 */
export interface SoakWatch { release: string, path: string, attempt: string, soakMs: number }

export function soakWatchOf (state: RolloutState, membership: MembershipView, host: string): SoakWatch | undefined {
  let best: { c: ReleaseCandidate, watch: SoakWatch } | undefined
  const floor = refusedBelow(state, membership)
  for (const c of validReleases(state, membership)) {
    if (c.body.number < floor) continue
    const latest = state.outcomes.get(c.body.id)?.latest.get(host)
    if (latest?.kind !== 'apply-ok' || controlState(state, membership, c.body.id).aborted) continue
    const body = latest.body as { path: string, attempt?: string }
    const k = planOf(state, c.body, membership)?.waveOf.get(host)
    if (k === undefined || body.attempt === undefined) continue
    const soakMs = c.body.waves[k].gate.soakMs
    if (soakMs === 0) continue
    if (best === undefined || outranks(c, best.c)) best = { c, watch: { release: c.body.id, path: body.path, attempt: body.attempt, soakMs } }
  }
  return best?.watch
}

/** The entries an edge of `c` rests on: its release entry and the release it waits for. */
function edgeRefs (ctx: GateContext, c: ReleaseCandidate): EntryRef[] {
  const x = c.body.after === undefined ? undefined : ctx.releases.get(c.body.after)
  return x === undefined ? [releaseRef(c)] : [releaseRef(c), releaseRef(x)]
}

/** The overdue entries about wave `j` (silent or past the deadline hosts leave or fail its gate). */
function overdueRefs (state: RolloutState, release: string, j: number): EntryRef[] {
  return (state.outcomes.get(release)?.overdue ?? []).filter(r => r.body.wave === j).map(r => entryRef(r, 'overdue'))
}

function revertOf (state: RolloutState, ctx: GateContext, host: string, current: ReleaseCandidate | undefined, trace: string[], note: Note): Decision | undefined {
  if (current === undefined || current.body.autoRevert !== true) return undefined
  const id = current.body.id
  let why: string | undefined
  if (controlState(state, ctx.membership, id).aborted) why = 'aborted'
  else {
    const halt = state.gates.progress(ctx, current)?.halt
    if (halt?.halted === true) why = `halted: ${halt.reason}`
  }
  if (why === undefined) return undefined
  note(`on ${id}, which is ${why}; autoRevert`, 'revert', [releaseRef(current)])
  const latest = state.outcomes.get(id)?.latest.get(host) as Entry
  return { action: 'revert', release: id, path: (latest.body as { path: string }).path, trace }
}
