// When this host first saw each room epoch end, kept in the rooms sublevel:
//   e!<room>!<epoch16>           canonical {at}: this host's clock when its log first ended the epoch
// A message of an ended epoch is still taken for `graceMs` after that moment (it may have been
// sent before its sender saw the change), then the epoch is closed here. The grace runs from
// this host's own observation, not from any claimed time: a removed member that backdates its
// frames gains nothing, and a restart does not reopen the window because the moment is stored.
// Frames fetched from a member host's history are judged by it only when their sender is no
// member host any more (intake.ts): a host that was offline still gets what the remaining
// members sent before the change, and a removed member's backdated frames, taken by a host
// whose log lagged behind the removal, do not spread through history.
import { CanonicalError, decodeCanonical, encodeCanonical } from '../canonical.js'
import { RoomError } from './errors.js'
import type { RoomDb } from './history-store.js'
import type { Room } from './state.js'

const SEP = '!'
const MAX_RECORD_BYTES = 32
const key = (room: string, epoch: number): string => `e${SEP}${room}${SEP}${epoch.toString().padStart(16, '0')}`
const range = { gt: `e${SEP}`, lt: `e${SEP}\xff` }

function readAt (bytes: Uint8Array): number {
  let v: unknown
  try {
    v = decodeCanonical(bytes, MAX_RECORD_BYTES)
  } catch (err) {
    if (err instanceof CanonicalError) throw new RoomError('ROOM_FRAME_MALFORMED', `stored epoch end: ${err.message}`)
    throw err
  }
  const r = v as Record<string, unknown> | null
  if (r === null || typeof r !== 'object' || Object.keys(r).length !== 1 || !Number.isSafeInteger(r.at)) throw new RoomError('ROOM_FRAME_MALFORMED', 'stored epoch end does not follow its schema')
  return r.at as number
}

export class EpochEnds {
  private readonly db: RoomDb
  private readonly graceMs: number
  private readonly now: () => number
  /** `${room}/${epoch}` → when this host first saw it end */
  private readonly seen = new Map<string, number>()
  private writes: Promise<unknown> = Promise.resolve()

  constructor (db: RoomDb, graceMs: number, now: () => number) {
    this.db = db
    this.graceMs = graceMs
    this.now = now
  }

  async load (): Promise<void> {
    for await (const [k, bytes] of this.db.iterator(range)) {
      const [, room, epoch] = k.split(SEP)
      this.seen.set(`${room}/${Number(epoch)}`, readAt(bytes))
    }
  }

  /** Records the epochs of `room` that ended and were not seen ending before. */
  observe (room: Room): void {
    const at = this.now()
    for (const [epoch, e] of room.epochs) {
      const id = `${room.id}/${epoch}`
      if (!e.ended || this.seen.has(id)) continue
      this.seen.set(id, at)
      const put = this.db.put(key(room.id, epoch), encodeCanonical({ at }))
      this.writes = Promise.all([this.writes, put]).catch(() => {})
    }
  }

  /** Whether an ended epoch takes no more gossip here: its grace since this host saw it end is over. */
  closed (room: string, epoch: number): boolean {
    const at = this.seen.get(`${room}/${epoch}`)
    return at !== undefined && this.now() - at > this.graceMs
  }

  /** Waits for the records being written. */
  async settle (): Promise<void> {
    await this.writes
  }
}
