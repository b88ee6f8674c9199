// Frames from the network, one at a time: decoded, admitted by the fold (member, epoch, the
// epoch's grace here), opened with this host's epoch key, verified, decrypted and kept; or
// refused with a typed reason, counted per room. Frames of a room or epoch not known yet wait
// in `pending` until the room changes.
import { peerIdPublicKey } from '../../crypto/identity.js'
import { decryptRoomMessage, signingBytes, type RoomMessage } from '../../crypto/room-cipher.js'
import { verifyEd25519 } from '../../crypto/sign.js'
import { decodeFrame, type SignedRoomMessage } from './codec.js'
import type { EpochEnds } from './epoch-ends.js'
import type { EpochKeys } from './epoch-keys.js'
import { asRoomError, RoomError } from './errors.js'
import type { HistoryStore } from './history-store.js'
import type { PendingFrames } from './pending.js'
import { admitMessage, memberHosts, type Room } from './state.js'
import type { RejectEvent, RoomLogger, RoomMessageOut, RoomStats } from './types.js'

const fromUtf8 = new TextDecoder('utf-8', { fatal: true })

export type Counters = Omit<RoomStats, 'room' | 'subscribed' | 'peers'>

export interface RoomIntakeComponents {
  room: (id: string) => Room | undefined
  keys: Pick<EpochKeys, 'open'>
  history: Pick<HistoryStore, 'keep'>
  ends: Pick<EpochEnds, 'closed'>
  pending: Pick<PendingFrames, 'hold'>
  isMember: (peer: string) => boolean
  onMessage: (m: RoomMessageOut) => void
  onRejected: (r: RejectEvent) => void
  log?: RoomLogger
}

/** The message's text, or a RoomError (ROOM_MSG_AUTH_FAILED, ROOM_FRAME_MALFORMED). */
export function openText (key: Uint8Array, msg: RoomMessage): string {
  let bytes: Uint8Array
  try {
    bytes = decryptRoomMessage(key, msg)
  } catch (err) {
    throw asRoomError(err)
  }
  try {
    return fromUtf8.decode(bytes)
  } catch {
    throw new RoomError('ROOM_FRAME_MALFORMED', 'the plaintext is not UTF-8')
  }
}

export class RoomIntake {
  private readonly c: RoomIntakeComponents
  private readonly counters = new Map<string, Counters>()

  constructor (components: RoomIntakeComponents) {
    this.c = components
  }

  /** What the frames of one room did here since the service started. */
  count (room: string): Counters {
    let c = this.counters.get(room)
    if (c === undefined) this.counters.set(room, c = { gossip: 0, history: 0, accepted: 0, rejected: {} })
    return c
  }

  /**
   * receive() for frames from the network, which came on `room`'s topic (`live`) or from a
   * member's history: a refusal becomes a 'rejected' event (replays only when live: history
   * overlaps what gossip brought). A frame of another room is refused, whatever it holds.
   */
  async take (bytes: Uint8Array, room: string, live: boolean): Promise<RoomMessageOut | undefined> {
    let msg: SignedRoomMessage
    try {
      msg = decodeFrame(bytes)
      if (msg.room !== room) throw new RoomError('ROOM_FRAME_MALFORMED', `a frame of room ${msg.room} came on room ${room}'s topic or history`)
    } catch (err) {
      this.reject(err, room)
      return undefined
    }
    try {
      const out = await this.accept(msg, bytes, live)
      if (out !== undefined) this.count(room).accepted++
      return out
    } catch (err) {
      if (live || !(err instanceof RoomError && err.code === 'ROOM_REPLAY')) this.reject(err, room, msg)
      return undefined
    }
  }

  /** Counts a refusal in the room and reports it. */
  reject (err: unknown, room: string, frame?: RoomMessage): void {
    const e = asRoomError(err)
    const rejected = this.count(room).rejected
    rejected[e.code] = (rejected[e.code] ?? 0) + 1
    this.c.log?.debug({ code: e.code, room, sender: frame?.sender }, `rooms: dropped a message: ${e.message}`)
    this.c.onRejected({ code: e.code, message: e.message, room, sender: frame?.sender, seq: frame?.seq })
  }

  /**
   * Verifies, decrypts and keeps one frame. Throws a RoomError naming why it was refused; a frame
   * of a room or epoch not known yet is held, and gives undefined. A frame of an ended epoch is
   * refused once the epoch is closed here (epoch-ends.ts) if it came `live`, or, from a member's
   * history, if its sender is no member host any more: that server may have taken it while its
   * log lagged behind the removal, and must not launder it into every host's history.
   */
  async accept (msg: SignedRoomMessage, bytes: Uint8Array, live: boolean): Promise<RoomMessageOut | undefined> {
    const room = this.c.room(msg.room)
    const closed = (epoch: number): boolean => this.c.ends.closed(msg.room, epoch) && (live || !memberHosts(room!).includes(msg.sender))
    const why = room === undefined ? 'ROOM_UNKNOWN' : admitMessage(room, msg, closed)
    if (why === 'ROOM_UNKNOWN' || why === 'ROOM_UNKNOWN_EPOCH') {
      this.c.pending.hold(msg.room, bytes)
      return undefined
    }
    if (why !== undefined) throw new RoomError(why, `${msg.sender}/${msg.agent} may not write in epoch ${msg.epoch} of room ${msg.room}`)
    // before the signature: a relay, which can open nothing, spends no verification on a frame
    const key = await this.c.keys.open(room!, msg.epoch)
    if (key === undefined) throw new RoomError('ROOM_NO_KEY', `this host holds no key for epoch ${msg.epoch} of room ${msg.room}`)
    if (!verifyEd25519(peerIdPublicKey(msg.sender), signingBytes(msg), msg.sig)) {
      throw new RoomError('ROOM_BAD_SIGNATURE', `message ${msg.sender}#${msg.seq} is not signed by its sender`)
    }
    if (!this.c.isMember(msg.sender)) throw new RoomError('ROOM_NOT_MEMBER', `${msg.sender} is no longer a mesh member`)
    const text = openText(key, msg)
    const cursor = await this.c.history.keep(msg, bytes, false)
    const out = { room: msg.room, cursor, epoch: msg.epoch, sender: msg.sender, agent: msg.agent, seq: msg.seq, ts: msg.ts, text }
    this.c.onMessage(out)
    return out
  }
}
