// The requesting side of sync: head vectors compared with a peer, wants (feeds some peer holds
// further than this store), and the pulls that fetch them, verified and stored by the store as
// frames arrive. Also the caught-up signal: the first time this host held everything a member it
// compared heads with held then; and settled(), which the announcer awaits before it lets a heads
// announcement travel on.
import type { PeerId, Stream } from '@libp2p/interface'
import { request, type Exchange } from '../reqresp.js'
import { bytesEqual } from './codec.js'
import { AuditError } from './errors.js'
import type { AuditStore, IngestResult } from './store.js'
import type { Head, SyncLogger } from './types.js'
import { toAuditError, type SyncData, type SyncRequest } from './wire.js'

export interface PullResult { stored: number, error?: AuditError }

export interface PullerComponents {
  store: Pick<AuditStore, 'head' | 'get' | 'forkedAt' | 'ingest' | 'on' | 'off'>
  exchange: Exchange<SyncRequest, SyncData, AuditError>
  /** a new sync protocol stream to `peer` */
  dial: (peer: PeerId, signal: AbortSignal) => Promise<Stream>
  /** the peers this host has a connection to */
  connected: () => PeerId[]
  /** whether this host replicates with `peer` now (allowed, not banned) */
  usable: (peer: string) => boolean
  penalise: (peer: string, error: AuditError) => void
  onCaughtUp: (peer: string) => void
  logger?: SyncLogger
  /** entries asked for per request */
  maxRangeEntries: number
  /** feeds pulled at the same time */
  maxConcurrentPulls: number
  /** ingest batches in flight per pull */
  pipelineDepth: number
  requestTimeoutMs: number
}

/** Pauses before asking the peers again for a feed nobody could deliver yet: 100 ms … 6.4 s. */
const PULL_RETRY_MS = 100
const MAX_PULL_RETRIES = 7

export class Puller {
  private readonly c: PullerComponents
  /**
   * feed → highest seq some peer announced, and the peers that announced or hold it, each mapped
   * to the announcement count when it last offered the feed (see drive)
   */
  private readonly wants = new Map<string, { seq: number, peers: Map<string, number>, offers: number, retries: number }>()
  private readonly active = new Set<string>()
  private running = 0
  private readonly queue: Array<() => void> = []
  private abort = new AbortController()
  private started = false
  private caughtUpWith: string | undefined
  /** conditions awaited by until(), checked whenever an entry is stored or a pull of a feed ends */
  private readonly waiters = new Set<() => void>()

  constructor (components: PullerComponents) {
    this.c = components
  }

  start (): void {
    this.started = true
    this.caughtUpWith = undefined
    this.abort = new AbortController()
    this.c.store.on('entry', this.check)
  }

  stop (): void {
    this.started = false
    this.abort.abort()
    this.c.store.off('entry', this.check)
  }

  /** The member this host first caught up with since it started, if any. */
  caughtUp (): string | undefined {
    return this.caughtUpWith
  }

  /** Exchanges head vectors with a peer and pulls whatever it has that this store lacks. */
  async syncWith (peer: PeerId): Promise<void> {
    if (!this.c.usable(peer.toString())) return
    const store = this.c.store
    const heads: Head[] = []
    const lacking: Head[] = []
    await this.request(peer, { t: 'heads' }, async (frame) => {
      if (frame.t !== 'heads') throw new AuditError('MESSAGE_MALFORMED', `expected heads, got ${frame.t}`)
      heads.push(...frame.heads)
    })
    for (const h of heads) {
      const mine = store.head(h.feed)
      if (mine !== undefined && h.seq <= mine.seq) {
        // same seq, different hash: fetch the peer's entry so the store can record the fork
        const held = h.seq === mine.seq ? mine.hash : (await store.get(h.feed, h.seq))?.hash
        if (held !== undefined && !bytesEqual(held, h.hash) && store.forkedAt(h.feed) === undefined) {
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
    this.c.onCaughtUp(peer)
  }

  /** Waits (up to the request timeout) until the store holds every head given, or has forked there. */
  private async holdAll (heads: Head[]): Promise<boolean> {
    return await this.until(() => heads.every(h => this.holds(h)))
  }

  /**
   * Resolves once the store holds every head given (or has forked there), or the pull of one it
   * lacks has ended without it: an attempt settled either way. Bounded by the request timeout.
   */
  async settled (heads: Head[]): Promise<void> {
    await this.until(() => heads.every(h => this.holds(h) || !this.active.has(h.feed)))
  }

  private holds (h: Head): boolean {
    return (this.c.store.head(h.feed)?.seq ?? -1) >= h.seq || this.c.store.forkedAt(h.feed) !== undefined
  }

  /** Whether `done` came true, checked now and after every stored entry and ended pull; false on timeout or stop(). */
  private async until (done: () => boolean): Promise<boolean> {
    if (done()) return true
    const signal = this.abort.signal
    return await new Promise<boolean>((resolve) => {
      const finish = (held: boolean): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
        signal.removeEventListener('abort', stop)
        resolve(held)
      }
      const check = (): void => { if (done()) finish(true) }
      const stop = (): void => { finish(false) }
      const timer = setTimeout(stop, this.c.requestTimeoutMs)
      this.waiters.add(check)
      signal.addEventListener('abort', stop)
    })
  }

  private readonly check = (): void => {
    for (const w of [...this.waiters]) w()
  }

  /** `peer` holds `h`: pull it unless this store already holds it or the feed forked. */
  want (h: Head, peer: string): void {
    if (this.holds(h)) return
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
    const store = this.c.store
    this.active.add(feed)
    await this.slot()
    let progressed = true
    try {
      while (progressed) {
        progressed = false
        const w = this.wants.get(feed)
        if (w === undefined || (store.head(feed)?.seq ?? -1) >= w.seq || !this.started || store.forkedAt(feed) !== undefined) break
        const connected = new Map(this.c.connected().map(p => [p.toString(), p]))
        const offered = [...w.peers.keys()].filter(p => this.c.usable(p) && connected.has(p))
        const others = [...connected.keys()].filter(p => this.c.usable(p) && !w.peers.has(p))
        for (const peerStr of [...offered, ...others]) {
          const offer = w.peers.get(peerStr)
          const r = await this.pull(connected.get(peerStr) as PeerId, feed, (store.head(feed)?.seq ?? -1) + 1, w.seq)
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
      const done = w === undefined || (store.head(feed)?.seq ?? -1) >= w.seq
      if (done) this.wants.delete(feed)
      this.active.delete(feed)
      this.release()
      this.check()
      if (!done && this.started && w.retries < MAX_PULL_RETRIES) {
        const delay = PULL_RETRY_MS * 2 ** w.retries++
        setTimeout(() => { if (!this.active.has(feed)) void this.drive(feed) }, delay).unref()
      }
    }
  }

  private async slot (): Promise<void> {
    if (this.running < this.c.maxConcurrentPulls) {
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
   * Ingest is pipelined: the store verifies the next batch while it writes the last.
   */
  async pull (peer: PeerId, feed: string, from: number, to: number): Promise<PullResult> {
    let stored = 0
    let next = from
    try {
      while (next <= to) {
        const upto = Math.min(to, next + this.c.maxRangeEntries - 1)
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
            inflight.push(this.c.store.ingest(frame.entries))
            if (inflight.length >= this.c.pipelineDepth) await settle(inflight.shift() as Promise<IngestResult>)
          })
        } finally {
          // settle what was already handed to the store even if the stream failed
          const results = await Promise.allSettled(inflight.map(settle))
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
          if (failed !== undefined) throw failed.reason
        }
        const have = this.c.store.head(feed)?.seq ?? -1
        if (have < next) break
        next = have + 1
      }
      return { stored }
    } catch (err) {
      const error = toAuditError(err)
      this.c.penalise(peer.toString(), error)
      this.c.logger?.debug({ peer: peer.toString(), feed, code: error.code }, 'audit sync: pull ended')
      return { stored, error }
    }
  }

  /** One request on a new stream, bounded by the request timeout and by stop(). */
  private async request (peer: PeerId, req: SyncRequest, onFrame: (frame: SyncData) => Promise<void>): Promise<void> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.c.requestTimeoutMs)])
    await request(await this.c.dial(peer, signal), this.c.exchange, req, onFrame)
  }
}
