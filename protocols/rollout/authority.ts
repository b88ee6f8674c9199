// Which rollout entries count. Authority is judged here, at query time, not in the fold: a release
// or control entry counts only while its signer is an admin in the membership view, so a revoked
// admin's pending releases stop everywhere at once.
import type { RolloutState } from './state.js'
import type { ControlRecord, Flag, MembershipView, ReleaseCandidate } from './types.js'

/** The release entry that `id` means: the admin-signed candidate with the lowest (feed, seq). */
export function effectiveRelease (state: RolloutState, membership: MembershipView, id: string): ReleaseCandidate | undefined {
  let best: ReleaseCandidate | undefined
  for (const c of state.releases.get(id) ?? []) {
    if (!membership.isAdmin(c.feed)) continue
    if (best === undefined || c.feed < best.feed || (c.feed === best.feed && c.seq < best.seq)) best = c
  }
  return best
}

/** The effective entry of every release id. */
export function validReleases (state: RolloutState, membership: MembershipView): ReleaseCandidate[] {
  const out: ReleaseCandidate[] = []
  for (const id of state.releases.keys()) {
    const c = effectiveRelease(state, membership, id)
    if (c !== undefined) out.push(c)
  }
  return out
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
