// Pins and quarantine: what holds a host or a store path out of every release. The fold files
// the entries (and each host's failures after activation) keyed by (feed, seq), so any delivery
// order gives the same holds; authority is judged at query time, as of each entry (DESIGN §8),
// like releases and their controls.
//
// Lifting follows the rule of pause and resume (authority.ts), which needs no clock and no
// cross-feed order: an admin's unpin (quarantine-clear) lifts the earlier pins (quarantines) of
// its own feed, and another admin's, or a host's failure, only by naming it ("feed:seq") — only
// what its author had seen. So a pin or quarantine holds until lifted in every delivery order.
//
// A pin's expiry is a duration measured by the pinned host on its own monotonic clock from when
// it first saw the pin (a restart starts it again, as a soak does); its consequence is the host's
// own `unpin` naming the pin, which every host then reads. No host compares another's timestamp.
//
// A path is quarantined by an admin's `quarantine`, or when `quarantineAfter` (default 1) hosts of
// one release failed after activating it: wrote apply-failed and rollback for one attempt. Only a
// host the release's plan targets with that path counts, so a member cannot quarantine what it
// was never asked to run.
import type { Entry } from '../audit/types.js'
import type { Plan } from './plan.js'
import { emptyFresh, foldFresh, FRESH_KINDS, type FreshState } from './fresh.js'
import type { HoldRecord, MembershipView, PinBody, QuarantineBody, QuarantineClearBody, ReleaseCandidate, UnpinBody } from './types.js'

export type { HoldRecord } from './types.js'

/** A host's failure after activating `path` in `release`: `ref` is its rollback entry's "feed:seq". */
export interface ActivationFailure { host: string, seq: number, ts: number, release: string, path: string, ref: string }

export interface HoldsState {
  /** pinned host → its pin entries */
  readonly pins: Map<string, Array<HoldRecord<PinBody>>>
  readonly unpins: Map<string, Array<HoldRecord<UnpinBody>>>
  /** path → quarantine entries */
  readonly quarantines: Map<string, Array<HoldRecord<QuarantineBody>>>
  readonly clears: Map<string, Array<HoldRecord<QuarantineClearBody>>>
  /** path → failures after activation */
  readonly failures: Map<string, ActivationFailure[]>
  /** "host release attempt" → the apply-failed / rollback of that attempt seen so far */
  readonly halves: Map<string, { failed?: true, rollback?: Entry }>
  /** moves on every pin or unpin filed: the gates' cache key (a pin moves a host out of a gate) */
  pinRevision: number
  /** freshness verdicts and release floors (fresh.ts) */
  readonly fresh: FreshState
}

/** Kinds this module (and tag-budget.ts: `budget`) files and the release fold does not: every one is kept by a checkpoint. */
export const HOLD_KINDS = new Set(['pin', 'unpin', 'quarantine', 'quarantine-clear', 'budget', ...FRESH_KINDS])

export function emptyHolds (): HoldsState {
  return { pins: new Map(), unpins: new Map(), quarantines: new Map(), clears: new Map(), failures: new Map(), halves: new Map(), pinRevision: 0, fresh: emptyFresh() }
}

export const refOf = (e: { feed: string, seq: number }): string => `${e.feed}:${e.seq}`

function pushOnce<T extends { feed: string, seq: number }> (map: Map<string, T[]>, key: string, item: T): boolean {
  const list = map.get(key)
  if (list === undefined) map.set(key, [item])
  else if (list.some(x => x.feed === item.feed && x.seq === item.seq)) return false
  else list.push(item)
  return true
}

/** Files a hold entry, or the half of an activation failure an outcome is; other kinds pass (body already schema-checked). */
export function foldHold (h: HoldsState, e: Entry): void {
  const body = e.body as Record<string, unknown>
  const rec = { feed: e.feed, seq: e.seq, ts: e.ts }
  switch (e.kind) {
    case 'pin':
      if (pushOnce(h.pins, body.host as string, { ...rec, body: body as PinBody })) h.pinRevision++
      return
    case 'unpin':
      if (pushOnce(h.unpins, body.host as string, { ...rec, body: body as UnpinBody })) h.pinRevision++
      return
    case 'quarantine':
      pushOnce(h.quarantines, body.path as string, { ...rec, body: body as QuarantineBody })
      return
    case 'quarantine-clear':
      pushOnce(h.clears, body.path as string, { ...rec, body: body as QuarantineClearBody })
      return
    case 'release-seen':
    case 'release-floor':
      foldFresh(h.fresh, e)
      return
    case 'apply-failed':
    case 'rollback': {
      // an autoRevert's rollback has an attempt of its own, with no apply-failed: not a failure
      const attempt = (body.attempt as string | undefined) ?? ''
      const path = (e.kind === 'rollback' ? body.from : body.path) as string
      const key = `${e.feed} ${body.release as string} ${attempt} ${path}`
      const half = h.halves.get(key) ?? {}
      if (e.kind === 'apply-failed') half.failed = true
      else if (half.rollback === undefined || half.rollback.seq > e.seq) half.rollback = e
      h.halves.set(key, half)
      if (half.failed === true && half.rollback !== undefined) {
        const r = half.rollback
        pushFailure(h, { host: r.feed, seq: r.seq, ts: r.ts, release: body.release as string, path, ref: refOf(r) })
      }
    }
  }
}

function pushFailure (h: HoldsState, f: ActivationFailure): void {
  const list = h.failures.get(f.path)
  if (list === undefined) { h.failures.set(f.path, [f]); return }
  // one per host and release: its lowest-seq failure, so the ref a clear names is the same in any order
  const i = list.findIndex(x => x.host === f.host && x.release === f.release)
  if (i < 0) list.push(f)
  else if (list[i].seq > f.seq) list[i] = f
}

const admin = (m: MembershipView, e: { feed: string, seq: number, ts: number }): boolean => m.standingAt(e.feed, e.seq, e.ts).admin

/** The pins holding `host` now, sorted by (feed, seq). */
export function pinsOf (h: HoldsState, m: MembershipView, host: string): Array<HoldRecord<PinBody>> {
  const pins = (h.pins.get(host) ?? []).filter(p => admin(m, p))
  if (pins.length === 0) return []
  const unpins = (h.unpins.get(host) ?? []).filter(u => admin(m, u) || (u.feed === host && u.body.expired === true))
  return pins.filter(p => !unpins.some(u => {
    const named = u.body.lifts?.includes(refOf(p)) ?? false
    // the pinned host itself lifts only a pin that had an expiry
    if (u.body.expired === true && u.feed === host && !admin(m, u)) return named && p.body.expiresMs !== undefined
    return named || (u.feed === p.feed && u.seq > p.seq)
  })).sort(byRef)
}

function byRef (a: { feed: string, seq: number }, b: { feed: string, seq: number }): number {
  return a.feed !== b.feed ? (a.feed < b.feed ? -1 : 1) : a.seq - b.seq
}

/** Whether the pins holding a host keep it off `path`: any pin for another path does. */
export function pinHolds (pins: Array<HoldRecord<PinBody>>, path: string | undefined): boolean {
  return pins.some(p => p.body.path !== path)
}

export interface Quarantine {
  path: string
  /** admin quarantines in effect */
  manual: Array<HoldRecord<QuarantineBody>>
  /** failures after activation in effect, of releases whose quarantineAfter they reach */
  failures: ActivationFailure[]
}

/** What the quarantine judgement reads of the releases: the counted ones, and their plans. */
export interface ReleaseLookup {
  releases: ReadonlyMap<string, ReleaseCandidate>
  planOf: (c: ReleaseCandidate) => Plan | undefined
}

/** Why `path` is quarantined, or undefined when it is not. */
export function quarantineOf (h: HoldsState, m: MembershipView, look: ReleaseLookup, path: string): Quarantine | undefined {
  const quarantines = h.quarantines.get(path) ?? []
  const failures = h.failures.get(path) ?? []
  if (quarantines.length === 0 && failures.length === 0) return undefined
  const clears = (h.clears.get(path) ?? []).filter(c => admin(m, c))
  const lifted = (e: { feed: string, seq: number }, ownFeed: boolean): boolean => clears.some(c =>
    (c.body.clears?.includes(refOf(e)) ?? false) || (ownFeed && c.feed === e.feed && c.seq > e.seq))
  const manual = quarantines.filter(q => admin(m, q) && !lifted(q, true)).sort(byRef)
  const byRelease = new Map<string, ActivationFailure[]>()
  for (const f of failures) {
    if (lifted({ feed: f.host, seq: f.seq }, false)) continue
    const c = look.releases.get(f.release)
    if (c === undefined || look.planOf(c)?.targetOf.get(f.host)?.path !== path) continue
    if (!m.standingAt(f.host, f.seq, f.ts).member) continue
    byRelease.set(f.release, [...byRelease.get(f.release) ?? [], f])
  }
  const counted: ActivationFailure[] = []
  for (const [release, list] of byRelease) {
    const c = look.releases.get(release) as ReleaseCandidate
    if (list.length >= (c.body.quarantineAfter ?? 1)) counted.push(...list)
  }
  if (manual.length === 0 && counted.length === 0) return undefined
  return { path, manual, failures: counted.sort((a, b) => byRef({ feed: a.host, seq: a.seq }, { feed: b.host, seq: b.seq })) }
}

/** Every path quarantined now. */
export function quarantined (h: HoldsState, m: MembershipView, look: ReleaseLookup): Quarantine[] {
  const paths = new Set([...h.quarantines.keys(), ...h.failures.keys()])
  return [...paths].sort().map(p => quarantineOf(h, m, look, p)).filter((q): q is Quarantine => q !== undefined)
}

/** Every host pinned now, by host id. */
export function pinned (h: HoldsState, m: MembershipView): Array<{ host: string, pins: Array<HoldRecord<PinBody>> }> {
  return [...h.pins.keys()].sort().map(host => ({ host, pins: pinsOf(h, m, host) })).filter(p => p.pins.length > 0)
}

/** The timer key of a pin's expiry on the pinned host. */
export function pinTimerKey (p: HoldRecord<PinBody>): string {
  return `pin/${refOf(p)}`
}
