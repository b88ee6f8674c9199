// Rooms as a pure fold over their audit entries (docs/architecture.md, rooms). No I/O and no clock: the same
// entries (and the same standings of their authors, from the membership fold) give the same
// rooms on every host, whatever order the entries arrived in.
//
// Rules (docs/architecture.md, rooms; DESIGN §8: no claimed time decides anything here)
// - A room belongs to the feed that created it: a room-create counts only when its room id is
//   roomIdFor(its author, its nonce) and its author was a mesh member at that seq; the first
//   such entry of that feed (by seq) is the room. Another feed's room-create for the id, dated
//   however it likes, counts for nothing.
// - Changes (room-member, room-rekey) count when, as of the entry (standingAt: its author's
//   standing at that seq of its feed), the author was the creator and a mesh member, or a mesh
//   admin. Revoking or demoting the author later does not undo them: the member set and the
//   epoch never roll back. They are applied in (epoch, feed, seq) order.
// - A change whose epoch is above the current one starts that epoch and ends the previous one:
//   its kid names the key, its `keys` seal it to the recipient hosts. A change at the current
//   epoch with the current kid only adds recipients. A change that lost a race (same epoch,
//   other kid, or an epoch already passed) still changes the member set (so a concurrent
//   removal is never lost) but its keys are ignored.
// - Keys sealed for earlier epochs (an add in a room with shared history) make their host a
//   recipient of those epochs; the opener checks them against the epoch's kid.
// - Messages of epoch E are accepted from a (host, agent) that was a member at some point of E
//   and whose host received E's key; once E has ended, only while the receiving host says the
//   epoch is not closed yet (its grace after it first saw the end in its own log, epoch-ends.ts):
//   which epoch a message may use follows the log, not the sender's claimed time. A sending
//   host enforces the current member set itself.
// - The result flags `leaked` hosts (hold the current key but are no member host any more)
//   and `missing` ones (member hosts without the current key): both are repaired by a rekey.
import type { Entry } from '../audit/index.js'
import type { Standing } from '../membership/index.js'
import { memberId, roomIdFor, roomSchemas, ROOM_CREATE, type HistoryMode, type RoomBodies, type RoomKind, type RoomMember } from './codec.js'
import type { RoomErrorCode } from './errors.js'

interface Base { id: string, feed: string, seq: number, ts: number, sig: Uint8Array }
export type RoomRecord = { [K in RoomKind]: Base & { kind: K, body: RoomBodies[K] } }[RoomKind]

export interface EpochState {
  epoch: number
  kid: Uint8Array
  /** a later epoch has started */
  ended: boolean
  /** recipient host → its sealed key */
  keys: Map<string, Uint8Array>
  /** memberId()s that were members at some point of this epoch */
  members: Set<string>
}

export interface Room {
  id: string
  name: string
  creator: string
  /** the creator's claimed time: for display and listing order only */
  createdAt: number
  history: HistoryMode
  /** the current epoch */
  epoch: number
  /** current members, sorted by host then agent */
  members: RoomMember[]
  epochs: Map<number, EpochState>
  /** author of the last counted change (or the creator): the first to repair a stale room */
  lastChangeBy: string
  /** hosts holding the current key that are no member host any more */
  leaked: string[]
  /** member hosts holding no key for the current epoch */
  missing: string[]
}

export interface RoomsState {
  /** room id → its records, keyed by `${feed}/${seq}` */
  byRoom: Map<string, Map<string, RoomRecord>>
  /** `${feed}/${seq}` holding two different room entries: counts for neither */
  forked: Set<string>
}

export function createRoomsState (): RoomsState {
  return { byRoom: new Map(), forked: new Set() }
}

/**
 * Folds one entry in; returns the room id it touched, or undefined when the entry cannot change
 * any room (another kind, a body failing its schema, a duplicate). Entries must be verified.
 */
export function applyRoomEntry (state: RoomsState, entry: Entry): string | undefined {
  if (!Object.hasOwn(roomSchemas, entry.kind)) return undefined
  let body: RoomBodies[RoomKind]
  try {
    body = (roomSchemas as Record<string, (b: unknown) => RoomBodies[RoomKind]>)[entry.kind]!(entry.body)
  } catch {
    return undefined
  }
  const id = `${entry.feed}/${entry.seq}`
  if (state.forked.has(id)) return undefined
  let records = state.byRoom.get(body.room)
  if (records === undefined) state.byRoom.set(body.room, records = new Map())
  const existing = records.get(id)
  if (existing !== undefined) {
    if (Buffer.compare(existing.sig, entry.sig) === 0) return undefined
    state.forked.add(id)
    records.delete(id)
    return body.room
  }
  records.set(id, { id, feed: entry.feed, seq: entry.seq, ts: entry.ts, sig: entry.sig, kind: entry.kind, body } as RoomRecord)
  return body.room
}

/** An author's standing as of one of its entries (protocols/membership standingAt). */
export type StandingAt = (feed: string, seq: number, ts: number) => Standing

function inLogOrder (a: Base, b: Base): number {
  return (a.feed < b.feed ? -1 : a.feed > b.feed ? 1 : 0) || a.seq - b.seq
}

function sortedMembers (ids: Set<string>): RoomMember[] {
  return [...ids].sort().map((id) => {
    const at = id.indexOf('/')
    return { host: id.slice(0, at), agent: id.slice(at + 1) }
  })
}

function hostsOf (ids: Set<string>): Set<string> {
  return new Set([...ids].map(id => id.slice(0, id.indexOf('/'))))
}

/** The room as its records say, given its authors' standing; undefined before its room-create. */
export function foldRoom (state: RoomsState, roomId: string, standing: StandingAt): Room | undefined {
  const records = [...(state.byRoom.get(roomId)?.values() ?? [])]
  let create: (RoomRecord & { kind: 'room-create' }) | undefined
  for (const r of records) {
    if (r.kind !== ROOM_CREATE || roomIdFor(r.feed, r.body.nonce) !== roomId || !standing(r.feed, r.seq, r.ts).member) continue
    if (create === undefined || r.seq < create.seq) create = r
  }
  if (create === undefined) return undefined
  const creator = create.feed
  const counts = (r: RoomRecord): boolean => {
    const s = standing(r.feed, r.seq, r.ts)
    return s.admin || (r.feed === creator && s.member)
  }
  const members = new Set(create.body.members.map(memberId))
  const epochs = new Map<number, EpochState>()
  const sealedFor = (keys: Array<{ host: string, epoch: number, sealed: Uint8Array }>, epoch: number): Map<string, Uint8Array> =>
    new Map(keys.filter(k => k.epoch === epoch).map(k => [k.host, k.sealed]))
  let current: EpochState = { epoch: 0, kid: create.body.kid, ended: false, keys: sealedFor(create.body.keys, 0), members: new Set(members) }
  epochs.set(0, current)
  let lastChangeBy = creator
  const changes = records.filter((r) => r.kind !== ROOM_CREATE && counts(r))
    .sort((a, b) => a.body.epoch - b.body.epoch || inLogOrder(a, b))
  for (const r of changes) {
    const b = r.body
    if (r.kind === 'room-member') {
      if (r.body.op === 'add') members.add(memberId(r.body.member))
      else members.delete(memberId(r.body.member))
    }
    if (b.epoch > current.epoch) {
      current.ended = true
      current = { epoch: b.epoch, kid: b.kid, ended: false, keys: sealedFor(b.keys, b.epoch), members: new Set(members) }
      epochs.set(b.epoch, current)
    } else {
      if (b.epoch === current.epoch && Buffer.compare(b.kid, current.kid) === 0) {
        for (const [host, sealed] of sealedFor(b.keys, b.epoch)) if (!current.keys.has(host)) current.keys.set(host, sealed)
      }
      for (const m of members) current.members.add(m)
    }
    if (create.body.history === 'shared') {
      for (const k of b.keys) {
        const past = k.epoch < b.epoch ? epochs.get(k.epoch) : undefined
        if (past !== undefined && !past.keys.has(k.host)) past.keys.set(k.host, k.sealed)
      }
    }
    lastChangeBy = r.feed
  }
  const memberHosts = hostsOf(members)
  return {
    id: roomId,
    name: create.body.name,
    creator,
    createdAt: create.ts,
    history: create.body.history,
    epoch: current.epoch,
    members: sortedMembers(members),
    epochs,
    lastChangeBy,
    leaked: [...current.keys.keys()].filter(h => !memberHosts.has(h)).sort(),
    missing: [...memberHosts].filter(h => !current.keys.has(h)).sort()
  }
}

export function canManage (room: Room, peer: string, isAdmin: (peer: string) => boolean): boolean {
  return peer === room.creator || isAdmin(peer)
}

export function memberHosts (room: Room): string[] {
  return [...hostsOf(new Set(room.members.map(memberId)))].sort()
}

/**
 * Whether a message header may be accepted in this room; the reason when it may not. `closed`
 * says whether an ended epoch takes no more messages here (the receiving host's own judgement).
 */
export function admitMessage (room: Room, h: { epoch: number, sender: string, agent: string }, closed: (epoch: number) => boolean): RoomErrorCode | undefined {
  const e = room.epochs.get(h.epoch)
  if (e === undefined) return 'ROOM_UNKNOWN_EPOCH'
  if (!e.keys.has(h.sender) || !e.members.has(memberId({ host: h.sender, agent: h.agent }))) return 'ROOM_NOT_MEMBER'
  if (e.ended && closed(h.epoch)) return 'ROOM_STALE_EPOCH'
  return undefined
}
