// Per-tag disruption budgets across every release: "at most N hosts tagged T in flight at once,
// fleet-wide, whatever releases are active". Declared by an admin's `budget` entry
// ({selector: "tag:T", max}); a `budget` without `max` clears. Lifting follows the rule of pins
// (holds.ts): an admin's entry ends the earlier ones of its own feed for that selector and the
// ones it names ("feed:seq"); of the sets that stand, the smallest max holds. So any delivery
// order gives the same budget, and two admins disagreeing fail safe (the tighter one).
//
// Slots are not raced for. Every pair (release, host tagged T in its plan) has a place in one
// order: releases oldest first (the reverse of `outranks`), then the release's slot order
// (plan.ts). A pair is finished for good by its host's own entries: a final outcome for it
// (failed, rolled back, soaked, or applied when its wave has no soak), a final outcome for a newer
// release (its agent ends one apply before another), or its stale verdict. A host's place is its
// first unfinished pair; it may start (any release) only while fewer than N other hosts of T have
// an unfinished pair before that place.
//
// Why it holds: take the hosts of T in flight at some moment and x, the one whose place is last.
// Between its decision and now x wrote no final outcome (it is still in flight), so its place then
// was its place now; every other one's place is before it, and that pair, unfinished now, was
// unfinished in the part of the log x held (finished stays finished). So x counted every one of
// them and started only while they were fewer than N. A host on a newer release keeps the place
// of its older unfinished pair, so a release that supersedes another never deadlocks behind the
// pairs its hosts will never apply. test/rollout/tag-budget.test.ts checks it with fast-check
// over two concurrent releases, every order of decisions and every subset of entries held.
//
// What frees a place at once, without the host's own word (facts every host then reads, DESIGN
// §8): the apply deadline (overdue.ts: a host declared past it counts as failed, so a host that
// started and went silent holds its slot no longer than its release's deadline; if it was only
// slow it may then overlap one more host, the price of not waiting forever), an abort, the
// release floor and a revoke (a host that never started an aborted or refused release never
// will; one that started it before the abort reached it keeps its place until its outcome). A
// host that never writes and is none of these (offline for good, pinned) holds its place: an admin
// aborts the release it sits in, or unpins it.
//
// Assumed: a host deciding holds the releases its place is compared with. A release whose entry
// (or basis) it does not hold yet is counted conservatively: every other host of T with an outcome
// in it that is not final counts as in flight.
import { controlState, sealedBelow } from './authority.js'
import { releaseFloor } from './fresh.js'
import { HostClass, type GateContext, type Progress } from './gates.js'
import { outranks } from './order.js'
import type { Plan } from './plan.js'
import type { RolloutState } from './state.js'
import { tagBudgets, type TagBudget } from './tag-budget-fold.js'
import type { EntryRef, MembershipView, ReleaseCandidate } from './types.js'

/** An entry a decision rests on, as `release why` cites it. */
export const entryRef = (e: { feed: string, seq: number }, kind: string): EntryRef => ({ feed: e.feed, seq: e.seq, kind })
const cite = entryRef

const FINAL = new Set(['apply-failed', 'rollback', 'soaked'])

/** A release as the budget reads it; `progress` absent for one nobody has written for yet (a plan preview). */
interface Release { c: ReleaseCandidate, plan: Plan, progress: Progress | undefined, quietDone: boolean }

/** What the budget reads of one moment of the log: the releases in place order, each host's newest finished release. */
class Places {
  readonly releases: Release[] = []
  /** outcomes of releases this host does not hold or cannot plan: counted as in flight while not final */
  readonly unplanned: string[] = []
  private readonly done = new Map<string, ReleaseCandidate | undefined>()

  /** `draft`: a release not signed yet, newest of all (`release plan`) */
  constructor (readonly state: RolloutState, ctx: GateContext, draft?: { c: ReleaseCandidate, plan: Plan }) {
    const sealed = sealedBelow(state, ctx.membership)
    const floor = releaseFloor(state.holds.fresh, ctx.membership)?.body.number ?? 0
    for (const c of ctx.releases.values()) {
      if (c.body.number < sealed) continue
      const quietDone = c.body.number < floor || controlState(state, ctx.membership, c.body.id).aborted
      const progress = state.gates.progress(ctx, c)
      if (progress !== undefined) this.releases.push({ c, plan: progress.plan, progress, quietDone })
    }
    this.releases.sort((a, b) => outranks(a.c, b.c) ? 1 : outranks(b.c, a.c) ? -1 : 0)
    if (draft !== undefined) this.releases.push({ ...draft, progress: undefined, quietDone: false })
    for (const id of state.outcomes.keys()) {
      const r = ctx.releases.get(id)
      if (r === undefined || (r.body.number >= sealed && state.gates.progress(ctx, r) === undefined)) this.unplanned.push(id)
    }
  }

  /** Whether `host`'s own entries (or an abort, a floor, its deadline) finished its pair of release r. */
  finished (r: Release, host: string): boolean {
    const id = r.c.body.id
    const latest = this.state.outcomes.get(id)?.latest.get(host)
    if (latest === undefined && r.quietDone) return true
    if (this.finalIn(r, host)) return true
    const top = this.newestFinished(host)
    return top !== undefined && outranks(top, r.c)
  }

  private finalIn (r: Release, host: string): boolean {
    const id = r.c.body.id
    const o = this.state.outcomes.get(id)
    const latest = o?.latest.get(host)
    if (o?.failed.has(host) === true || (latest !== undefined && FINAL.has(latest.kind))) return true
    if (r.progress === undefined) return false
    const k = r.plan.waveOf.get(host)
    if (latest?.kind === 'apply-ok' && k !== undefined && r.progress.waves[k].wave.gate.soakMs === 0) return true
    const cls = this.state.gates.classOf(id, host)
    return cls === HostClass.failed || cls === HostClass.stale
  }

  /** The newest release `host` finished (by its own final outcome), or undefined. */
  private newestFinished (host: string): ReleaseCandidate | undefined {
    if (this.done.has(host)) return this.done.get(host)
    let top: ReleaseCandidate | undefined
    for (const r of this.releases) {
      if (this.state.outcomes.get(r.c.body.id)?.latest.has(host) === true && this.finalIn(r, host) && (top === undefined || outranks(r.c, top))) top = r.c
    }
    this.done.set(host, top)
    return top
  }
}

/** Why a tag budget holds `host` back from starting now, with the entries it rests on; undefined when it may start. */
export interface TagBudgetWait { text: string, entries: EntryRef[] }

/** The first budget that holds `host` (the caller decided it would otherwise apply `release` now). */
export function tagBudgetWait (state: RolloutState, ctx: GateContext, host: string, release: ReleaseCandidate): TagBudgetWait | undefined {
  if (state.budgets.entries.size === 0) return undefined
  return firstHold(state, ctx, host, release, undefined, (b, ahead) => `budget ${b.selector}: ${ahead} other host(s) tagged ${b.tag} ahead of this one may be in flight`)
}

/** The budget that would hold `host` at the start of `draft`, a release not signed yet (`release plan`). */
export function tagBudgetPreview (state: RolloutState, ctx: GateContext, host: string, draft: { c: ReleaseCandidate, plan: Plan }): TagBudgetWait | undefined {
  return firstHold(state, ctx, host, draft.c, draft, (b, ahead) => `budget ${b.selector}: waits for ${ahead} host(s) tagged ${b.tag} ahead of it`)
}

function firstHold (state: RolloutState, ctx: GateContext, host: string, release: ReleaseCandidate, draft: { c: ReleaseCandidate, plan: Plan } | undefined, say: (b: TagBudget, ahead: number) => string): TagBudgetWait | undefined {
  const m = ctx.membership
  const budgets = tagBudgets(state.budgets, m).filter(b => m.tagsOf(host).includes(b.tag))
  if (budgets.length === 0) return undefined
  const places = new Places(state, ctx, draft)
  for (const b of budgets) {
    const ahead = hostsAhead(places, m, b.tag, host, release, b.max)
    if (ahead.length < b.max) continue
    const text = `${say(b, ahead.length)} (${ahead.map(a => a.host).join(', ')}), at most ${b.max} at once fleet-wide`
    return { text, entries: [...b.sets.map(s => cite(s, 'budget')), ...ahead.flatMap(a => a.entry !== undefined ? [a.entry] : [])] }
  }
  return undefined
}

/** Other hosts of `tag` with an unfinished pair before `host`'s place (at most `limit`), each with the entry that shows it. */
function hostsAhead (places: Places, m: MembershipView, tag: string, host: string, release: ReleaseCandidate, limit: number): Array<{ host: string, entry?: EntryRef }> {
  const tagged = (h: string): boolean => h !== host && m.isMember(h) && m.tagsOf(h).includes(tag)
  const ahead = new Map<string, EntryRef | undefined>()
  const outcome = (id: string, h: string): EntryRef | undefined => {
    const e = places.state.outcomes.get(id)?.latest.get(h)
    return e === undefined ? undefined : cite(e, e.kind)
  }
  for (const id of places.unplanned) {
    const latest = places.state.outcomes.get(id)?.latest
    for (const [h, e] of latest ?? []) if (tagged(h) && !FINAL.has(e.kind) && ahead.size < limit) ahead.set(h, cite(e, e.kind))
  }
  for (const r of places.releases) {
    // this host's place: the first pair of it not finished (its pair of the release it starts at the latest)
    let mine = false
    for (const h of r.plan.slots) {
      if (h === host) {
        if (r.c === release || !places.finished(r, h)) { mine = true; break }
        continue
      }
      if (ahead.has(h) || !tagged(h) || places.finished(r, h)) continue
      ahead.set(h, outcome(r.c.body.id, h))
      if (ahead.size >= limit) break
    }
    if (mine || ahead.size >= limit) break
  }
  return [...ahead].map(([h, entry]) => entry === undefined ? { host: h } : { host: h, entry })
}

/** Hosts of `tag` in flight now (an outcome, not final, in some release), as this host's log says (status). */
export function tagInFlight (state: RolloutState, ctx: GateContext, tag: string): string[] {
  const places = new Places(state, ctx)
  const out = new Set<string>()
  for (const r of places.releases) {
    for (const h of state.outcomes.get(r.c.body.id)?.latest.keys() ?? []) {
      if (ctx.membership.tagsOf(h).includes(tag) && !places.finished(r, h)) out.add(h)
    }
  }
  return [...out].sort()
}

/** A budget in effect as `release status` shows it: its hosts in flight now. */
export interface TagBudgetStatus { selector: string, max: number, inFlight: string[], refs: string[] }

/** `{ budgets }` of the tag budgets that hold some of `hosts`; {} when none does. */
export function tagBudgetsStatus (state: RolloutState, ctx: GateContext, hosts: Iterable<string>): { budgets?: TagBudgetStatus[] } {
  if (state.budgets.entries.size === 0) return {}
  const list = [...hosts]
  const budgets = tagBudgets(state.budgets, ctx.membership)
    .filter(b => list.some(h => ctx.membership.tagsOf(h).includes(b.tag)))
    .map(b => ({ selector: b.selector, max: b.max, inFlight: tagInFlight(state, ctx, b.tag), refs: b.sets.map(s => `${s.feed}:${s.seq}`) }))
  return budgets.length === 0 ? {} : { budgets }
}
