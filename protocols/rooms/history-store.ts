// The bounded history of every room this host keeps, in its own level sublevel (utf8 keys, byte
// values):
//   m!<room>!<cursor16>          the signed frame as received: ciphertext, never plaintext
//   f!<room>!<sender>            canonical {seq}: highest seq pruned, older ones are replays
//   q!<room>                     canonical {seq}: the next seq this host sends in the room
// Cursors are a per-room local arrival counter: "read since a cursor" never misses a message
// that arrived late with an old timestamp. The (sender, seq) pairs held, for de-duplication, are
// kept in memory: a room's meta is built by reading its frames once, and they are bounded.
import type { AbstractLevel } from 'abstract-level'
import { CanonicalError, decodeCanonical, encodeCanonical } from '../canonical.js'
import { Mutex } from '../mutex.js'
import { decodeFrame, type SignedRoomMessage } from './codec.js'
import { RoomError } from './errors.js'

export type RoomDb = AbstractLevel<any, string, Uint8Array>

/** The sublevel of a host's root level db that holds room history. */
export function roomsSublevel (root: AbstractLevel<any, any, any>): RoomDb {
  return root.sublevel<string, Uint8Array>('rooms', { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as RoomDb
}

export interface HistoryLimits {
  maxMessages: number
  maxAgeMs: number
}

/** A kept frame and its place in the room's arrival order. */
export interface KeptFrame { cursor: number, msg: SignedRoomMessage }

interface Meta {
  cursor: number
  count: number
  latestTs: number
  oldestTs: number
  floors: Map<string, number>
  /** heldId() of every kept frame */
  held: Set<string>
  nextSeq: number
}

const SEP = '!'
const PRUNE_STEP = 64
const MAX_COUNTER_BYTES = 64
const pad = (n: number): string => n.toString().padStart(16, '0')
const msgKey = (room: string, cursor: number): string => `m${SEP}${room}${SEP}${pad(cursor)}`
const msgRange = (room: string): { gt: string, lt: string } => ({ gt: `m${SEP}${room}${SEP}`, lt: `m${SEP}${room}${SEP}\xff` })
const heldId = (m: { sender: string, seq: number }): string => `${m.sender}/${m.seq}`
const floorKey = (room: string, sender: string): string => `f${SEP}${room}${SEP}${sender}`
const seqKey = (room: string): string => `q${SEP}${room}`
const cursorOf = (key: string): number => Number(key.slice(key.lastIndexOf(SEP) + 1))

function readSeq (bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined) return undefined
  let v: Record<string, unknown>
  try {
    v = decodeCanonical(bytes, MAX_COUNTER_BYTES) as Record<string, unknown>
  } catch (err) {
    if (err instanceof CanonicalError) throw new RoomError('ROOM_FRAME_MALFORMED', `stored room counter: ${err.message}`)
    throw err
  }
  if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.seq) || Object.keys(v).length !== 1) throw new RoomError('ROOM_FRAME_MALFORMED', 'stored room counter does not follow its schema')
  return v.seq as number
}

export class HistoryStore {
  private readonly db: RoomDb
  private readonly limits: HistoryLimits
  private readonly now: () => number
  private readonly metas = new Map<string, Promise<Meta>>()
  /** serialises writes, so cursors and seqs are assigned in one order */
  private readonly lock = new Mutex()

  constructor (db: RoomDb, limits: HistoryLimits, now: () => number) {
    this.db = db
    this.limits = limits
    this.now = now
  }

  async open (): Promise<void> {
    if (this.db.status === 'opening') await this.db.open()
  }

  /** Waits for the writes already queued. */
  async settle (): Promise<void> {
    await this.lock.run(async () => {})
  }

  /** ts of the newest frame kept in `room` (0 when none). */
  async latestTs (room: string): Promise<number> {
    return (await this.meta(room)).latestTs
  }

  /** Reserves the next seq this host sends in `room`; it is stored with the frame that uses it. */
  async reserveSeq (room: string): Promise<number> {
    return this.lock.run(async () => (await this.meta(room)).nextSeq++)
  }

  /** The frames of `room` kept after cursor `since` (0 for all), oldest first. */
  async * read (room: string, since: number, limit: number): AsyncGenerator<KeptFrame> {
    for await (const [key, bytes] of this.db.iterator({ gt: msgKey(room, since), lt: msgRange(room).lt, limit })) {
      yield { cursor: cursorOf(key), msg: decodeFrame(bytes) }
    }
  }

  /** The frames of `room` as received, oldest first. */
  async * frames (room: string): AsyncGenerator<{ bytes: Uint8Array, msg: SignedRoomMessage }> {
    for await (const bytes of this.db.values(msgRange(room))) yield { bytes, msg: decodeFrame(bytes) }
  }

  /** Stores a verified frame unless it is a replay (ROOM_REPLAY); returns its cursor. */
  async keep (msg: SignedRoomMessage, frame: Uint8Array, own: boolean): Promise<number> {
    return this.lock.run(async () => {
      const m = await this.meta(msg.room)
      if (msg.seq <= (m.floors.get(msg.sender) ?? -1) || m.held.has(heldId(msg))) {
        throw new RoomError('ROOM_REPLAY', `message ${msg.sender}#${msg.seq} in room ${msg.room} was already received`)
      }
      const cursor = m.cursor + 1
      const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = [
        { type: 'put', key: msgKey(msg.room, cursor), value: frame }
      ]
      const dropped: string[] = []
      if (own) ops.push({ type: 'put', key: seqKey(msg.room), value: encodeCanonical({ seq: m.nextSeq }) })
      const floors = new Map(m.floors)
      let count = m.count + 1
      const cutoff = this.now() - this.limits.maxAgeMs
      // drop the oldest past the count bound, and those past the age bound, a few per write;
      // ages go by arrival order, so only the first kept frame's ts needs remembering
      let oldestTs = Math.min(m.oldestTs, msg.ts)
      const prune = count > this.limits.maxMessages || oldestTs < cutoff
      if (prune) oldestTs = msg.ts
      for await (const [key, bytes] of prune ? this.db.iterator({ ...msgRange(msg.room), limit: PRUNE_STEP }) : []) {
        const old = decodeFrame(bytes)
        if (count <= this.limits.maxMessages && old.ts >= cutoff) {
          oldestTs = old.ts
          break
        }
        ops.push({ type: 'del', key })
        dropped.push(heldId(old))
        floors.set(old.sender, Math.max(floors.get(old.sender) ?? -1, old.seq))
        ops.push({ type: 'put', key: floorKey(msg.room, old.sender), value: encodeCanonical({ seq: floors.get(old.sender) }) })
        count--
      }
      await this.db.batch(ops)
      m.cursor = cursor
      m.count = count
      m.floors = floors
      for (const d of dropped) m.held.delete(d)
      m.held.add(heldId(msg))
      m.latestTs = Math.max(m.latestTs, msg.ts)
      m.oldestTs = oldestTs
      return cursor
    })
  }

  private async meta (room: string): Promise<Meta> {
    let p = this.metas.get(room)
    if (p === undefined) {
      p = (async () => {
        const m: Meta = { cursor: 0, count: 0, latestTs: 0, oldestTs: Infinity, floors: new Map(), held: new Set(), nextSeq: 0 }
        for await (const [key, bytes] of this.db.iterator(msgRange(room))) {
          m.cursor = cursorOf(key)
          m.count++
          const frame = decodeFrame(bytes)
          m.held.add(heldId(frame))
          m.latestTs = Math.max(m.latestTs, frame.ts)
          if (m.count === 1) m.oldestTs = frame.ts
        }
        for await (const [key, bytes] of this.db.iterator({ gt: `f${SEP}${room}${SEP}`, lt: `f${SEP}${room}${SEP}\xff` })) {
          m.floors.set(key.slice(key.lastIndexOf(SEP) + 1), readSeq(bytes)!)
        }
        m.nextSeq = readSeq(await this.db.get(seqKey(room))) ?? 0
        return m
      })()
      this.metas.set(room, p)
    }
    return p
  }
}
