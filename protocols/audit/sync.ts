// Replication of the audit log over libp2p. Heads are gossiped (coalesced after new entries, and
// periodically); a host that sees a head it lacks pulls the missing range from the peer that
// told it, over a request/response protocol of length-prefixed frames. On every identified
// connection both sides exchange their whole head vector, so any member relays any feed and a
// host back from downtime catches up at once. Every entry is verified by the store before it is
// kept. Misbehaving peers are penalised twice: gossipsub's behaviour penalty via its PeerScore
// (which lowers their score for this host's mesh; skipped if the pubsub in use has none) and a
// local count; past `banThreshold` offences the peer's
// connections are closed and its sync requests refused for `banMs`.
import { EventEmitter } from 'node:events'
import * as lp from 'it-length-prefixed'
import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import { ScorePenalty } from '@libp2p/gossipsub/metrics'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Libp2p } from 'libp2p'
import { send } from '../send.js'
import { bytesEqual, maxEntryBytes } from './codec.js'
import { AuditError, type AuditErrorCode } from './errors.js'
import type { AuditStore, IngestResult } from './store.js'
import type { Head } from './types.js'
import {
  HEADS_TOPIC, MAX_BATCH_ENTRIES, BATCH_BYTES, MAX_HEADS_PER_MESSAGE, MAX_REQUEST_BYTES, SYNC_PROTOCOL,
  decodeAnnouncement, decodeFrame, decodeRequest, encodeAnnouncement, encodeFrame, encodeRequest, maxFrameBytes, type SyncFrame, type SyncRequest
} from './wire.js'

export interface SyncLogger {
  debug (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface AuditSyncOptions {
  libp2p: Libp2p<{ pubsub: GossipSub }>
  store: AuditStore
  logger?: SyncLogger
  /**
   * Which peers this host replicates with (e.g. "is an admitted member"); others are neither
   * served nor pulled from, and their announcements are ignored. Default: every peer.
   */
  allowPeer?: (peer: string) => boolean
  /** coalescing delay before announcing new heads (default 75 ms) */
  announceDelayMs?: number
  /** full head vector re-announced, and exchanged with one random member, this often (default 10 s) */
  announceIntervalMs?: number
  /** entries served per request; the puller asks again for the rest (default 65536) */
  maxRangeEntries?: number
  /** offences before a peer is disconnected and refused (default 3) */
  banThreshold?: number
  banMs?: number
  /** feeds pulled at the same time (default 8) */
  maxConcurrentPulls?: number
  /** ingest batches in flight per pull: verification of the next overlaps the write of the last */
  pipelineDepth?: number
  requestTimeoutMs?: number
}

export interface PullResult { stored: number, error?: AuditError }

export interface PenaltyEvent { peer: string, error: AuditError, offences: number }

/** Pauses before asking the peers again for a feed nobody could deliver yet: 100 ms … 6.4 s. */
const PULL_RETRY_MS = 100
const MAX_PULL_RETRIES = 7

interface SyncEvents {
  penalty: [PenaltyEvent]
  ban: [string]
  /** once: this host compared heads with a member and came to hold all it held then */
  'caught-up': [string]
}

// Codes that prove the sender broke the protocol or forged data. Others (a fork, a rejected
// author) can reach an honest relay through no fault of its own.
const PENALISED: ReadonlySet<AuditErrorCode> = new Set<AuditErrorCode>([
  'ENTRY_MALFORMED', 'ENTRY_TOO_LARGE', 'BODY_NOT_CANONICAL', 'BODY_INVALID', 'BAD_SIGNATURE', 'BAD_PREV', 'SEQ_GAP',
  'UNKNOWN_FEED_KEY', 'MESSAGE_MALFORMED', 'MESSAGE_TOO_LARGE'
])

function toAuditError (err: unknown): AuditError {
  if (err instanceof AuditError) return err
  const name = (err as Error)?.name
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') return new AuditError('MESSAGE_TOO_LARGE', (err as Error).message)
  if (name === 'InvalidMessageLengthError' || name === 'UnexpectedEOFError') return new AuditError('MESSAGE_MALFORMED', (err as Error).message)
  return new AuditError('SYNC_FAILED', (err as Error)?.message ?? String(err))
}

async function sendFrame (stream: Stream, frame: SyncFrame | Uint8Array): Promise<void> {
  const bytes = frame instanceof Uint8Array ? frame : encodeFrame(frame)
  await send(stream, lp.encode.single(bytes), SYNC_SEND_ERRORS)
}

const SYNC_SEND_ERRORS = { closed: () => new AuditError('SYNC_FAILED', 'stream closed while sending') }

// The stream's bytes without its return(): a decoder that gives up on a bad frame would otherwise
// end the stream through it, and the peer would get a reset instead of a typed error frame.
function readOnly (stream: Stream): AsyncIterable<Uint8Array | Uint8ArrayList> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = stream[Symbol.asyncIterator]()
      return { next: async () => it.next() }
    }
  }
}

export class AuditSync extends EventEmitter<SyncEvents> {
  private readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  private readonly store: AuditStore
  private readonly log: SyncLogger | undefined
  private readonly opts: Required<Omit<AuditSyncOptions, 'libp2p' | 'store' | 'logger' | 'allowPeer'>>
  private readonly allowPeer: (peer: string) => boolean
  private readonly maxFrame: number
  private readonly offences = new Map<string, number>()
  private readonly banned = new Map<string, number>()
  /** feed → highest seq some peer announced, and the peers that announced or hold it */
  /** peers map to the announcement count when they last offered the feed (see drive) */
  private readonly wants = new Map<string, { seq: number, peers: Map<string, number>, offers: number, retries: number }>()
  private readonly active = new Set<string>()
  private readonly dirty = new Set<string>()
  private announceTimer: NodeJS.Timeout | undefined
  private intervalTimer: NodeJS.Timeout | undefined
  private running = 0
  private readonly queue: Array<() => void> = []
  private abort = new AbortController()
  private started = false
  private caughtUpWith: string | undefined

  constructor (opts: AuditSyncOptions) {
    super()
    this.libp2p = opts.libp2p
    this.store = opts.store
    this.log = opts.logger
    this.allowPeer = opts.allowPeer ?? (() => true)
    this.opts = {
      announceDelayMs: opts.announceDelayMs ?? 75,
      announceIntervalMs: opts.announceIntervalMs ?? 10_000,
      maxRangeEntries: opts.maxRangeEntries ?? 65_536,
      banThreshold: opts.banThreshold ?? 3,
      banMs: opts.banMs ?? 10 * 60_000,
      maxConcurrentPulls: opts.maxConcurrentPulls ?? 8,
      pipelineDepth: opts.pipelineDepth ?? 4,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000
    }
    this.maxFrame = maxFrameBytes(maxEntryBytes(this.store.limits))
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.caughtUpWith = undefined
    this.abort = new AbortController()
    await this.libp2p.handle(SYNC_PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, { maxInboundStreams: 64, maxOutboundStreams: 64 })
    const pubsub = this.libp2p.services.pubsub
    pubsub.topicValidators.set(HEADS_TOPIC, this.validateAnnouncement)
    pubsub.subscribe(HEADS_TOPIC)
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.store.on('entry', this.onEntry)
    this.intervalTimer = setInterval(() => {
      void this.announce(this.store.heads())
      // Anti-entropy beside the gossip: a head vector exchanged with one random member each
      // period repairs whatever an announcement missed, without trusting gossip to be perfect.
      const peers = this.libp2p.getConnections().map(c => c.remotePeer).filter(p => this.allowPeer(p.toString()) && !this.isBanned(p.toString()))
      const peer = peers[Math.floor(Math.random() * peers.length)]
      if (peer !== undefined) void this.syncWith(peer).catch(() => {})
    }, this.opts.announceIntervalMs)
    this.intervalTimer.unref()
    for (const conn of this.libp2p.getConnections()) void this.syncWith(conn.remotePeer).catch(() => {})
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.abort.abort()
    clearInterval(this.intervalTimer)
    clearTimeout(this.announceTimer)
    this.announceTimer = undefined
    this.store.off('entry', this.onEntry)
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    const pubsub = this.libp2p.services.pubsub
    pubsub.unsubscribe(HEADS_TOPIC)
    pubsub.topicValidators.delete(HEADS_TOPIC)
    await this.libp2p.unhandle(SYNC_PROTOCOL)
  }

  /**
   * The member this host first caught up with since it started, if any: a host back from
   * downtime should not act on a log it has only half pulled (see node/deploy.ts).
   */
  caughtUp (): string | undefined {
    return this.caughtUpWith
  }

  /** Local offence counts per peer id string. */
  penalties (): Map<string, number> {
    return new Map(this.offences)
  }

  isBanned (peer: string): boolean {
    const until = this.banned.get(peer)
    if (until === undefined) return false
    if (Date.now() < until) return true
    this.banned.delete(peer)
    this.offences.delete(peer)
    return false
  }

  private penalise (peer: PeerId | string, error: AuditError): void {
    if (!PENALISED.has(error.code)) return
    const id = peer.toString()
    const offences = (this.offences.get(id) ?? 0) + 1
    this.offences.set(id, offences)
    // the GossipSub interface does not expose the score; the v17 implementation does
    const score = (this.libp2p.services.pubsub as Partial<{ score: { addPenalty: (id: string, n: number, label: ScorePenalty) => void } }>).score
    score?.addPenalty(id, 1, ScorePenalty.BrokenPromise)
    this.log?.warn({ peer: id, code: error.code, offences }, `audit sync: ${error.message}`)
    this.emit('penalty', { peer: id, error, offences })
    if (offences >= this.opts.banThreshold && !this.isBanned(id)) {
      this.banned.set(id, Date.now() + this.opts.banMs)
      this.emit('ban', id)
      const conn = this.libp2p.getConnections().find(c => c.remotePeer.toString() === id)
      if (conn !== undefined) void this.libp2p.hangUp(conn.remotePeer).catch(() => {})
    }
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (evt.detail.protocols.includes(SYNC_PROTOCOL)) void this.syncWith(evt.detail.peerId).catch(() => {})
  }

  /**
   * Announces this host's own new entries at once (coalesced). Entries it merely received are
   * not re-announced each time — with every host doing so, a burst of N hosts' entries would
   * cost N² gossip messages; the periodic announcement and pulls from any peer cover them.
   */
  private readonly onEntry = ({ entry }: { entry: { feed: string } }): void => {
    if (entry.feed !== this.store.feed) return
    this.dirty.add(entry.feed)
    this.announceTimer ??= setTimeout(() => {
      this.announceTimer = undefined
      const heads = [...this.dirty].map(f => this.store.head(f)).filter((h): h is Head => h !== undefined)
      this.dirty.clear()
      void this.announce(heads)
    }, this.opts.announceDelayMs)
  }

  private async announce (heads: Head[]): Promise<void> {
    const forked = this.store.forkedFeeds()
    const shareable = heads.filter(h => !forked.has(h.feed))
    for (let i = 0; i < shareable.length; i += MAX_HEADS_PER_MESSAGE) {
      try {
        await this.libp2p.services.pubsub.publish(HEADS_TOPIC, encodeAnnouncement(shareable.slice(i, i + MAX_HEADS_PER_MESSAGE)))
      } catch (err) {
        this.log?.debug({ err: (err as Error).message }, 'audit sync: announcing heads failed')
      }
    }
  }

  private readonly validateAnnouncement = (peer: PeerId, msg: { data: Uint8Array, from?: PeerId }): TopicValidatorResult => {
    if (!this.allowPeer(peer.toString())) return TopicValidatorResult.Ignore
    let heads: Head[]
    try {
      heads = decodeAnnouncement(msg.data)
    } catch (err) {
      // Reject makes gossipsub itself lower the sender's score and drop the message
      this.penalise(peer, toAuditError(err))
      return TopicValidatorResult.Reject
    }
    // The publisher holds what it announced; the peer that relayed it may not yet.
    const publisher = msg.from !== undefined && this.allowPeer(msg.from.toString()) ? msg.from.toString() : undefined
    for (const h of heads) {
      if (publisher !== undefined && publisher !== peer.toString()) this.want(h, publisher)
      this.want(h, peer.toString())
    }
    return TopicValidatorResult.Accept
  }

  /** Exchanges head vectors with a peer and pulls whatever it has that this store lacks. */
  async syncWith (peer: PeerId): Promise<void> {
    if (this.isBanned(peer.toString()) || !this.allowPeer(peer.toString())) return
    const heads: Head[] = []
    const lacking: Head[] = []
    await this.request(peer, { t: 'heads' }, async (frame) => {
      if (frame.t !== 'heads') throw new AuditError('MESSAGE_MALFORMED', `expected heads, got ${frame.t}`)
      heads.push(...frame.heads)
    })
    for (const h of heads) {
      const mine = this.store.head(h.feed)
      if (mine !== undefined && h.seq <= mine.seq) {
        // same seq, different hash: fetch the peer's entry so the store can record the fork
        const held = h.seq === mine.seq ? mine.hash : (await this.store.get(h.feed, h.seq))?.hash
        if (held !== undefined && !bytesEqual(held, h.hash) && this.store.forkedAt(h.feed) === undefined) {
          await this.pull(peer, h.feed, h.seq, h.seq)
        }
        continue
      }
      this.want(h, peer.toString())
      lacking.push(h)
    }
    // Not awaited: the pulls run on their own, and a caller of syncWith need not wait for them.
    if (this.caughtUpWith === undefined) void this.holdAll(lacking).then((held) => { if (held) this.markCaughtUp(peer.toString()) })
  }

  private markCaughtUp (peer: string): void {
    if (this.caughtUpWith !== undefined || !this.started) return
    this.caughtUpWith = peer
    this.emit('caught-up', peer)
  }

  /** Waits (up to the request timeout) until the store holds every head given, or has forked there. */
  private async holdAll (heads: Head[]): Promise<boolean> {
    const lacking = (): boolean => heads.some(h => (this.store.head(h.feed)?.seq ?? -1) < h.seq && this.store.forkedAt(h.feed) === undefined)
    if (!lacking()) return true
    const signal = this.abort.signal
    return await new Promise<boolean>((resolve) => {
      const finish = (held: boolean): void => {
        clearTimeout(timer)
        this.store.off('entry', check)
        signal.removeEventListener('abort', stop)
        resolve(held)
      }
      const check = (): void => { if (!lacking()) finish(true) }
      const stop = (): void => { finish(false) }
      const timer = setTimeout(stop, this.opts.requestTimeoutMs)
      this.store.on('entry', check)
      signal.addEventListener('abort', stop)
    })
  }

  private want (h: Head, peer: string): void {
    const mine = this.store.head(h.feed)
    if ((mine !== undefined && mine.seq >= h.seq) || this.store.forkedAt(h.feed) !== undefined) return
    const w = this.wants.get(h.feed) ?? { seq: h.seq, peers: new Map<string, number>(), offers: 0, retries: 0 }
    w.seq = Math.max(w.seq, h.seq)
    w.peers.set(peer, ++w.offers)
    this.wants.set(h.feed, w)
    if (!this.active.has(h.feed)) void this.drive(h.feed)
  }

  /**
   * Pulls one feed until it reaches the highest announced seq. The peers that offered it are
   * asked first, then every other connected member (entries travel host to host, and a relay
   * may hold them before their author's announcement reaches this host). When nobody has them
   * yet, the feed is tried again after a growing pause, with its pull slot given back meanwhile.
   */
  private async drive (feed: string): Promise<void> {
    this.active.add(feed)
    await this.slot()
    let progressed = true
    try {
      while (progressed) {
        progressed = false
        const w = this.wants.get(feed)
        if (w === undefined || (this.store.head(feed)?.seq ?? -1) >= w.seq || !this.started || this.store.forkedAt(feed) !== undefined) break
        const usable = (p: string): boolean => !this.isBanned(p) && this.allowPeer(p)
        const connected = new Map(this.libp2p.getConnections().map(c => [c.remotePeer.toString(), c.remotePeer]))
        const offered = [...w.peers.keys()].filter(p => usable(p) && connected.has(p))
        const others = [...connected.keys()].filter(p => usable(p) && !w.peers.has(p))
        for (const peerStr of [...offered, ...others]) {
          const offer = w.peers.get(peerStr)
          const r = await this.pull(connected.get(peerStr) as PeerId, feed, (this.store.head(feed)?.seq ?? -1) + 1, w.seq)
          if (r.stored > 0) {
            progressed = true
            w.retries = 0
            break
          }
          // A relay may forward an announcement before it holds the entries and offer them
          // itself while this pull is in flight: drop only a peer that offered nothing since.
          if (offer !== undefined && w.peers.get(peerStr) === offer) w.peers.delete(peerStr)
        }
      }
    } finally {
      const w = this.wants.get(feed)
      const done = w === undefined || (this.store.head(feed)?.seq ?? -1) >= w.seq
      if (done) this.wants.delete(feed)
      this.active.delete(feed)
      this.release()
      if (!done && this.started && w.retries < MAX_PULL_RETRIES) {
        const delay = PULL_RETRY_MS * 2 ** w.retries++
        setTimeout(() => { if (!this.active.has(feed)) void this.drive(feed) }, delay).unref()
      }
    }
  }

  private async slot (): Promise<void> {
    if (this.running < this.opts.maxConcurrentPulls) {
      this.running++
      return
    }
    await new Promise<void>(resolve => this.queue.push(resolve))
  }

  private release (): void {
    const next = this.queue.shift()
    if (next !== undefined) next()
    else this.running--
  }

  /**
   * Pulls feed entries from..to from one peer, verifying and storing as frames arrive; asks again
   * while the peer keeps delivering. A bad frame or entry ends the pull and penalises the peer.
   */
  async pull (peer: PeerId, feed: string, from: number, to: number): Promise<PullResult> {
    let stored = 0
    let next = from
    try {
      while (next <= to) {
        const upto = Math.min(to, next + this.opts.maxRangeEntries - 1)
        let received = 0
        const inflight: Array<Promise<IngestResult>> = []
        const settle = async (p: Promise<IngestResult>): Promise<void> => {
          const r = await p
          stored += r.stored.length
          if (r.error !== undefined) throw r.error
        }
        try {
          await this.request(peer, { t: 'range', feed, from: next, to: upto }, async (frame) => {
            if (frame.t !== 'entries') throw new AuditError('MESSAGE_MALFORMED', `expected entries, got ${frame.t}`)
            received += frame.entries.length
            if (received > upto - next + 1) throw new AuditError('MESSAGE_MALFORMED', 'peer sent more entries than requested')
            inflight.push(this.store.ingest(frame.entries))
            if (inflight.length >= this.opts.pipelineDepth) await settle(inflight.shift() as Promise<IngestResult>)
          })
        } finally {
          // settle what was already handed to the store even if the stream failed
          const results = await Promise.allSettled(inflight.map(settle))
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
          if (failed !== undefined) throw failed.reason
        }
        const have = this.store.head(feed)?.seq ?? -1
        if (have < next) break
        next = have + 1
      }
      return { stored }
    } catch (err) {
      const error = toAuditError(err)
      this.penalise(peer, error)
      this.log?.debug({ peer: peer.toString(), feed, code: error.code }, 'audit sync: pull ended')
      return { stored, error }
    }
  }

  /** One request on a new stream; `onFrame` sees each frame until `end`. */
  private async request (peer: PeerId, req: SyncRequest, onFrame: (f: SyncFrame) => Promise<void>): Promise<void> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.requestTimeoutMs)])
    const stream = await this.libp2p.dialProtocol(peer, SYNC_PROTOCOL, { signal })
    try {
      await sendFrame(stream, encodeRequest(req))
      let ended = false
      for await (const chunk of lp.decode(stream, { maxDataLength: this.maxFrame })) {
        const frame = decodeFrame(chunk.subarray(), this.maxFrame)
        if (frame.t === 'end') {
          ended = true
          break
        }
        if (frame.t === 'error') throw new AuditError('SYNC_FAILED', `peer refused: ${frame.code}: ${frame.message}`)
        await onFrame(frame)
      }
      if (!ended) throw new AuditError('SYNC_FAILED', 'peer closed the stream before the end frame')
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    if (this.isBanned(peer) || !this.allowPeer(peer)) {
      stream.abort(new Error('refused'))
      return
    }
    try {
      const first = await lp.decode(readOnly(stream), { maxDataLength: MAX_REQUEST_BYTES })[Symbol.asyncIterator]().next()
      if (first.done === true) throw new AuditError('MESSAGE_MALFORMED', 'stream ended before a request')
      const req = decodeRequest(first.value.subarray())
      if (req.t === 'heads') {
        const forked = this.store.forkedFeeds()
        const heads = this.store.heads().filter(h => !forked.has(h.feed))
        for (let i = 0; i < heads.length; i += MAX_HEADS_PER_MESSAGE) await sendFrame(stream, { t: 'heads', heads: heads.slice(i, i + MAX_HEADS_PER_MESSAGE) })
      } else {
        await this.serveRange(stream, req)
      }
      await sendFrame(stream, { t: 'end' })
      await stream.close()
    } catch (err) {
      const error = toAuditError(err)
      try {
        await sendFrame(stream, { t: 'error', code: error.code, message: error.message.slice(0, 1024) })
        await stream.close()
      } catch {
        stream.abort(error)
      }
      // after the reply: a penalty past the threshold hangs up the connection
      this.penalise(peer, error)
    }
  }

  private async serveRange (stream: Stream, req: { feed: string, from: number, to: number }): Promise<void> {
    const forkedAt = this.store.forkedAt(req.feed)
    const last = Math.min(req.to, req.from + this.opts.maxRangeEntries - 1, forkedAt === undefined ? Infinity : forkedAt - 1)
    let batch: Uint8Array[] = []
    let bytes = 0
    for await (const entry of this.store.rangeBytes(req.feed, req.from, last)) {
      batch.push(entry)
      bytes += entry.length
      if (batch.length >= MAX_BATCH_ENTRIES || bytes >= BATCH_BYTES) {
        await sendFrame(stream, { t: 'entries', entries: batch })
        batch = []
        bytes = 0
      }
    }
    if (batch.length > 0) await sendFrame(stream, { t: 'entries', entries: batch })
  }
}
