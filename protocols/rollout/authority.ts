// Which rollout entries count, judged as of each entry (DESIGN §8): a release or control counts
// when its signer was an admin at that entry (`MembershipView.standingAt`), so revoking an admin
// stops its later entries (those past the revoke's `after`) and never reopens what its earlier
// ones decided. Authority is judged at query time, not in the fold, because membership is itself
// a fold of the same log and may arrive later than a release.
//
// Pause and resume follow one rule that needs no clock and no cross-feed order:
// - within a feed, order is seq: a resume lifts every pause of its own feed with a lower seq;
// - across admins, a resume lifts another admin's pause only by naming it (`resumes`:
//   "feed:seq"), i.e. only a pause its author had seen; any pause not lifted so holds.
// So the release is paused while any counted pause stands, in every delivery order, and two
// admins disagreeing fail safe (paused) until one names the other's pause.
// Abort is final. A halt is not a control: it follows from the outcomes (gates.ts) and only a
// resume that `accept`s the failed hosts lifts it.
export { outranks } from './order.js'
import type { RolloutState } from './state.js'
import type { ControlRecord, Flag, MembershipView, ReleaseCandidate } from './types.js'

function counts (membership: MembershipView, e: { feed: string, seq: number, ts: number }): boolean {
  return membership.standingAt(e.feed, e.seq, e.ts).admin
}

/**
 * The release entry that `id` means: the counted candidate with the lowest (feed, seq) — among
 * those numbered below the seal's floor when there is one, so an id is sealed as a whole. A
 * checkpoint drops the outcomes of an id every covered entry of which numbers below its floor
 * (protocols/checkpoint/retain.ts); were a later entry of the id numbered above the floor to
 * win, it would reopen the id on the hosts that replayed everything and not on those that
 * joined from the checkpoint. Every caller compares the number it gets with the floor.
 */
export function effectiveRelease (state: RolloutState, membership: MembershipView, id: string, floor = sealedBelow(state, membership)): ReleaseCandidate | undefined {
  let best: ReleaseCandidate | undefined
  for (const c of state.releases.get(id) ?? []) {
    if (best !== undefined && !means(c, best, floor)) continue
    if (counts(membership, c)) best = c
  }
  return best
}

/** True when an id means candidate a rather than b: below the floor first, then the lower (feed, seq). */
function means (a: ReleaseCandidate, b: ReleaseCandidate, floor: number): boolean {
  if ((a.body.number < floor) !== (b.body.number < floor)) return a.body.number < floor
  return a.feed !== b.feed ? a.feed < b.feed : a.seq < b.seq
}

/**
 * Releases numbered below this are sealed (final): the highest `sealed` of the checkpoints that
 * count (their signer an admin as of them, as for releases). 0: none.
 */
export function sealedBelow (state: RolloutState, membership: MembershipView): number {
  let floor = 0
  for (const s of state.seals) if (s.sealed > floor && counts(membership, s)) floor = s.sealed
  return floor
}

/** The effective entry of every release id. */
export function validReleases (state: RolloutState, membership: MembershipView): ReleaseCandidate[] {
  const out: ReleaseCandidate[] = []
  const floor = sealedBelow(state, membership)
  for (const id of state.releases.keys()) {
    const c = effectiveRelease(state, membership, id, floor)
    if (c !== undefined) out.push(c)
  }
  return out
}

/**
 * The number a new release takes: one above every counted (admin-signed) release entry, the
 * ignored duplicates of an id included, so a member writing a non-admin release numbered 2^53−1
 * changes nothing.
 */
export function nextReleaseNumber (state: RolloutState, membership: MembershipView): number {
  let n = 0
  for (const list of state.releases.values()) for (const c of list) if (c.body.number > n && counts(membership, c)) n = c.body.number
  return n + 1
}

export interface ControlState {
  paused: boolean
  aborted: boolean
  /** the abort, or a pause still in effect */
  by?: ControlRecord
  /** every pause in effect ("feed:seq"), what a resume that lifts them all names */
  pauses: string[]
}

/** Abort is final; otherwise paused while any counted pause is not lifted by a counted resume (header). */
export function controlState (state: RolloutState, membership: MembershipView, id: string): ControlState {
  const pauses: ControlRecord[] = []
  const resumes: ControlRecord[] = []
  let abort: ControlRecord | undefined
  for (const c of state.controls.get(id) ?? []) {
    if (!counts(membership, c)) continue
    if (c.action === 'abort') {
      if (abort === undefined || c.feed < abort.feed || (c.feed === abort.feed && c.seq < abort.seq)) abort = c
    } else (c.action === 'pause' ? pauses : resumes).push(c)
  }
  if (abort !== undefined) return { paused: false, aborted: true, by: abort, pauses: [] }
  const standing = pauses.filter(p => !resumes.some(r =>
    (r.feed === p.feed && r.seq > p.seq) || (r.body.resumes?.includes(`${p.feed}:${p.seq}`) ?? false)))
    .sort((a, b) => a.feed !== b.feed ? (a.feed < b.feed ? -1 : 1) : a.seq - b.seq)
  if (standing.length === 0) return { paused: false, aborted: false, pauses: [] }
  return { paused: true, aborted: false, by: standing[0], pauses: standing.map(p => `${p.feed}:${p.seq}`) }
}

/**
 * Entries the decisions refuse, sorted by (feed, seq): bodies that broke their schema,
 * releases and controls whose signer was not an admin at that entry, and release ids used by
 * more than one counted entry (the one effectiveRelease means counts; the others are flagged).
 */
export function flagged (state: RolloutState, membership: MembershipView): Flag[] {
  const out: Flag[] = [...state.flagged]
  const floor = sealedBelow(state, membership)
  for (const [id, list] of state.releases) {
    const winner = effectiveRelease(state, membership, id, floor)
    for (const c of list) {
      if (!counts(membership, c)) out.push({ feed: c.feed, seq: c.seq, kind: 'release', reason: `release ${id} not signed by an admin: ignored` })
      else if (c !== winner) out.push({ feed: c.feed, seq: c.seq, kind: 'release', reason: `release id ${id} already used by ${winner?.feed}#${winner?.seq}: ignored` })
    }
  }
  for (const [id, list] of state.controls) {
    for (const c of list) {
      if (!counts(membership, c)) out.push({ feed: c.feed, seq: c.seq, kind: 'release-control', reason: `${c.action} of ${id} not signed by an admin: ignored` })
    }
  }
  return out.sort((a, b) => a.feed !== b.feed ? (a.feed < b.feed ? -1 : 1) : a.seq - b.seq)
}
