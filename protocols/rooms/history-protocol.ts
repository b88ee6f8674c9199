// HISTORY_PROTOCOL: a member host asks another for the frames of one room it keeps since a
// time, and gets them in batches of ciphertext, never plaintext. Only a member host of the room
// is served, and only the frames of epochs whose key it received. Requests served and batches
// fetched are spent from the peer's budgets (budgets.ts).
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { lengthPrefixFault, request, respond, type Exchange } from '../reqresp.js'
import {
  HISTORY_BATCH, HISTORY_PROTOCOL, MAX_HISTORY_FRAME_BYTES, MAX_HISTORY_REQUEST_BYTES,
  decodeHistoryRequest, decodeHistoryResponse, encodeHistoryRequest, encodeHistoryResponse,
  type HistoryRequest, type SignedRoomMessage
} from './codec.js'
import { asRoomError, RoomError } from './errors.js'
import type { RoomBudgets } from './budgets.js'
import { memberHosts, type Room } from './state.js'

const REQUEST_TIMEOUT_MS = 30_000

interface Msgs { t: 'msgs', msgs: Uint8Array[] }

const exchange: Exchange<HistoryRequest, Msgs, RoomError> = {
  maxRequestBytes: MAX_HISTORY_REQUEST_BYTES,
  maxFrameBytes: MAX_HISTORY_FRAME_BYTES,
  encodeRequest: encodeHistoryRequest,
  decodeRequest: decodeHistoryRequest,
  encodeFrame: encodeHistoryResponse,
  decodeFrame: decodeHistoryResponse,
  toError: (err) => {
    const fault = lengthPrefixFault(err)
    if (fault === 'too-large') return new RoomError('ROOM_FRAME_TOO_LARGE', (err as Error).message)
    if (fault === 'malformed') return new RoomError('ROOM_FRAME_MALFORMED', (err as Error).message)
    return asRoomError(err)
  },
  failed: (message) => new RoomError('ROOM_HISTORY_FAILED', message)
}

export interface HistoryProtocolComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  /** a room as this host folds it: who may ask, and which epochs each may read */
  room: (id: string) => Room | undefined
  /** a room's kept frames, oldest first */
  frames: (room: string) => AsyncIterable<{ bytes: Uint8Array, msg: SignedRoomMessage }>
  budgets: Pick<RoomBudgets, 'batch' | 'request'>
}

export class HistoryProtocol {
  private readonly c: HistoryProtocolComponents

  constructor (components: HistoryProtocolComponents) {
    this.c = components
  }

  async start (): Promise<void> {
    await this.c.libp2p.handle(HISTORY_PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, { maxInboundStreams: 32, maxOutboundStreams: 32 })
  }

  async stop (): Promise<void> {
    await this.c.libp2p.unhandle(HISTORY_PROTOCOL)
  }

  /** Asks `peer` for the frames of `room` with ts >= `since`, handing each batch to `onFrames`. */
  async fetch (room: string, peer: PeerId, since: number, onFrames: (frames: Uint8Array[]) => Promise<void>): Promise<void> {
    const stream = await this.c.libp2p.dialProtocol(peer, HISTORY_PROTOCOL, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    await request(stream, exchange, { room, since }, async (res) => {
      this.c.budgets.batch(peer.toString(), res.msgs.reduce((n, m) => n + m.byteLength, 0))
      await onFrames(res.msgs)
    })
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    await respond(stream, exchange, async (req, reply) => {
      const room = this.c.room(req.room)
      if (room === undefined || !memberHosts(room).includes(peer)) throw new RoomError('ROOM_NOT_MEMBER', `${peer} is not a member host of room ${req.room} here`)
      this.c.budgets.request(peer)
      let batch: Uint8Array[] = []
      for await (const { bytes, msg } of this.c.frames(req.room)) {
        if (msg.ts < req.since || room.epochs.get(msg.epoch)?.keys.has(peer) !== true) continue
        batch.push(bytes)
        if (batch.length >= HISTORY_BATCH) {
          await reply({ t: 'msgs', msgs: batch })
          batch = []
        }
      }
      if (batch.length > 0) await reply({ t: 'msgs', msgs: batch })
    })
  }
}
