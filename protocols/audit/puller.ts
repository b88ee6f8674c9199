// The requesting side of sync: head vectors reconciled with a peer by digest (or, with a peer of
// an older version, compared whole), wants (feeds some
// peer holds further than this store), and the pulls that fetch them, verified and stored by the
// store as frames arrive. Also the caught-up signal: the first time this host held everything a
// member it reconciled with offered then; and settled(), which the announcer awaits before it lets
// a heads announcement travel on.
import type { PeerId, Stream } from '@libp2p/interface'
import { request, type Exchange } from '../reqresp.js'
import { bytesEqual } from './codec.js'
import { reconcileWith } from './digest.js'
import { AuditError } from './errors.js'
import type { HeadIndex } from './reconcile.js'
import type { AuditStore, IngestResult } from './store.js'
import type { Head, SyncLogger } from './types.js'
import { SYNC_PROTOCOL, SYNC_PROTOCOL_1_0, SYNC_PROTOCOLS, toAuditError, type SyncData, type SyncProtocol, type SyncRequest } from './wire.js'

export interface PullResult { stored: number, error?: AuditError }

export interface PullerComponents {
  store: Pick<AuditStore, 'head' | 'get' | 'forkedAt' | 'ingest' | 'on' | 'off'>
  /** this host's heads but forked feeds, as a digest index */
  index: () => HeadIndex
  /** feeds worth pulling at all: those that are or were members (DESIGN §8); others are never wanted */
  wantFeed: (feed: string) => boolean
  exchange: Exchange<SyncRequest, SyncData, AuditError>
  /** a new stream to `peer` on the first of `protocols` it speaks (Stream.protocol says which) */
  dial: (peer: PeerId, protocols: readonly SyncProtocol[], signal: AbortSignal) => Promise<Stream>
  /** the peers this host has a connection to */
  connected: () => PeerId[]
  /** whether this host replicates with `peer` now (allowed, not banned) */
  usable: (peer: string) => boolean
  penalise: (peer: string, error: AuditError) => void
  onCaughtUp: (peer: string) => void
  logger?: SyncLogger
  /** entries asked for per request */
  maxRangeEntries: number
  /** feeds wanted at once; a want beyond it is dropped (the next digest repair offers it again) */
  maxWants: number
  /** heads a peer may offer in one digest exchange, or send as a whole vector; more end it as MESSAGE_TOO_LARGE */
  maxHeadVector: number
  /** feeds pulled at the same time */
  maxConcurrentPulls: number
  /** ingest batches in flight per pull */
  pipelineDepth: number
  requestTimeoutMs: number
}

/**
 * Pauses before asking the peers again for a feed nobody could deliver yet: 100 ms … 6.4 s.
 * After the last one the want expires (about 13 s after it was first tried): nobody could
 * satisfy it, and keeping it would let announcements of heads nobody holds pile up.
 */
const PULL_RETRY_MS = 100
const MAX_PULL_RETRIES = 7
/** Peers remembered per want: the newest offers; the puller falls back to every connected member. */
const MAX_PEERS_PER_WANT = 16

/** A caller of until(): the heads it waits for, by feed, and what counts as done for one. */
interface Waiter { heads: Map<string, Head>, done: (h: Head) => boolean, finish: (held: boolean) => void }

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
  /**
   * Callers of until(), indexed by the feeds they wait for: a stored entry or an ended pull
   * rechecks only the waiters of its own feed, not every waiter's every head.
   */
  private readonly waiters = new Map<string, Set<Waiter>>()

  constructor (components: PullerComponents) {
    this.c = components
  }

  start (): void {
    this.started = true
    this.caughtUpWith = undefined
    this.abort = new AbortController()
    this.c.store.on('entry', this.onEntry)
  }

  stop (): void {
    this.started = false
    this.abort.abort()
    this.c.store.off('entry', this.onEntry)
  }

  /** The member this host first caught up with since it started, if any. */
  caughtUp (): string | undefined {
    return this.caughtUpWith
  }

  /** Forgets the member caught up with: the next one is signalled again. */
  expectCatchUp (): void {
    this.caughtUpWith = undefined
  }

  /** Feeds wanted now, and callers waiting on heads: both bounded (see maxWants, and the announcer's cap). */
  stats (): { wants: number, waiters: number } {
    let waiters = 0
    for (const set of this.waiters.values()) waiters += set.size
    return { wants: this.wants.size, waiters }
  }

  /**
   * Reconciles head vectors with a peer by digest and pulls whatever it has that this store
   * lacks. Heads of feeds not wanted yet are looked at again once the wanted ones are held: a
   * host that is catching up learns members (hence wanted feeds) from the very entries it pulls.
   */
  async syncWith (peer: PeerId): Promise<void> {
    if (!this.c.usable(peer.toString())) return
    let pending = await this.offered(peer).catch((err: unknown) => {
      const error = toAuditError(err)
      this.c.penalise(peer.toString(), error)
      throw error
    })
    const first = await this.compare(peer, pending)
    pending = first.later
    // Not awaited: the pulls run on their own, and a caller of syncWith need not wait for them.
    void (async () => {
      let lacking = first.lacking
      while (true) {
        if (!await this.holdAll(lacking)) return
        const next = await this.compare(peer, pending)
        if (next.later.length === pending.length) break
        lacking = next.lacking
        pending = next.later
      }
      this.markCaughtUp(peer.toString())
    })()
  }

  /**
   * The heads `peer` holds where its vector and this host's differ, by digest; a peer of an
   * older version, which speaks only SYNC_PROTOCOL_1_0, sends its whole vector instead (and
   * is never sent a request it does not know: it would count that against this host).
   */
  private async offered (peer: PeerId): Promise<Head[]> {
    let opened: Stream | undefined = await this.open(peer, SYNC_PROTOCOLS)
    if (opened.protocol === SYNC_PROTOCOL_1_0) return await this.headVector(peer, { t: 'heads' }, opened)
    return await reconcileWith(this.c.index(), async (q, onFrame) => {
      // the first round goes on the stream that found the peer speaks digests
      const stream = opened
      opened = undefined
      await this.request(peer, q, async (frame) => {
        if (frame.t !== 'digest') throw new AuditError('MESSAGE_MALFORMED', `expected digest, got ${frame.t}`)
        onFrame(frame)
      }, stream)
    }, this.c.maxHeadVector)
  }

  /**
   * The head vector `peer` committed to in its own witness entry `seq`. A peer that does not
   * speak SYNC_PROTOCOL (an older version, which keeps no such vectors) is never asked: SYNC_FAILED.
   */
  async witnessed (peer: PeerId, seq: number): Promise<Head[]> {
    try {
      return await this.headVector(peer, { t: 'witnessed', seq }, await this.open(peer, [SYNC_PROTOCOL]))
    } catch (err) {
      const error = toAuditError(err)
      this.c.penalise(peer.toString(), error)
      throw error
    }
  }

  /** A head vector of at most maxHeadVector heads, asked for on `stream`. */
  private async headVector (peer: PeerId, req: SyncRequest & { t: 'heads' | 'witnessed' }, stream: Stream): Promise<Head[]> {
    const heads: Head[] = []
    await this.request(peer, req, async (frame) => {
      if (frame.t !== 'heads') throw new AuditError('MESSAGE_MALFORMED', `expected heads, got ${frame.t}`)
      if (heads.length + frame.heads.length > this.c.maxHeadVector) throw new AuditError('MESSAGE_TOO_LARGE', `${req.t} vector over ${this.c.maxHeadVector} heads`)
      heads.push(...frame.heads)
    }, stream)
    return heads
  }

  /** Wants what `peer` holds beyond this store, of feeds wanted now; the other heads come back as `later`. */
  private async compare (peer: PeerId, heads: Head[]): Promise<{ lacking: Head[], later: Head[] }> {
    const store = this.c.store
    const lacking: Head[] = []
    const later: Head[] = []
    for (const h of heads) {
      if (!this.c.wantFeed(h.feed)) {
        later.push(h)
        continue
      }
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
    return { lacking, later }
  }

  private markCaughtUp (peer: string): void {
    if (this.caughtUpWith !== undefined || !this.started) return
    this.caughtUpWith = peer
    this.c.onCaughtUp(peer)
  }

  /** Waits (up to the request timeout) until the store holds every head given, or has forked there. */
  private async holdAll (heads: Head[]): Promise<boolean> {
    return await this.until(heads, h => this.holds(h))
  }

  /**
   * Resolves once the store holds every head given (or has forked there), or the pull of one it
   * lacks has ended without it: an attempt settled either way. Bounded by the request timeout.
   */
  async settled (heads: Head[]): Promise<void> {
    await this.until(heads, h => this.holds(h) || !this.active.has(h.feed))
  }

  private holds (h: Head): boolean {
    return (this.c.store.head(h.feed)?.seq ?? -1) >= h.seq || this.c.store.forkedAt(h.feed) !== undefined
  }

  /** Whether `done` came true for every head, checked now and as their feeds change; false on timeout or stop(). */
  private async until (heads: Head[], done: (h: Head) => boolean): Promise<boolean> {
    const waiting = new Map<string, Head>()
    for (const h of heads) {
      const other = waiting.get(h.feed)
      // both conditions only get easier as seq falls: the highest head of a feed decides
      if (!done(h) && (other === undefined || other.seq < h.seq)) waiting.set(h.feed, h)
    }
    if (waiting.size === 0) return true
    const signal = this.abort.signal
    return await new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        heads: waiting,
        done,
        finish: (held) => {
          clearTimeout(timer)
          for (const feed of waiter.heads.keys()) this.unwait(feed, waiter)
          signal.removeEventListener('abort', stop)
          resolve(held)
        }
      }
      const stop = (): void => { waiter.finish(false) }
      const timer = setTimeout(stop, this.c.requestTimeoutMs)
      for (const feed of waiting.keys()) {
        const set = this.waiters.get(feed) ?? new Set<Waiter>()
        set.add(waiter)
        this.waiters.set(feed, set)
      }
      signal.addEventListener('abort', stop)
    })
  }

  private unwait (feed: string, waiter: Waiter): void {
    const set = this.waiters.get(feed)
    set?.delete(waiter)
    if (set?.size === 0) this.waiters.delete(feed)
  }

  /** Rechecks the waiters of one feed (an entry of it was stored, or its pull ended). */
  private check (feed: string): void {
    for (const w of [...this.waiters.get(feed) ?? []]) {
      const h = w.heads.get(feed) as Head
      if (!w.done(h)) continue
      w.heads.delete(feed)
      this.unwait(feed, w)
      if (w.heads.size === 0) w.finish(true)
    }
  }

  private readonly onEntry = ({ entry }: { entry: { feed: string } }): void => {
    this.check(entry.feed)
  }

  /** `peer` holds `h`: pull it unless this store already holds it or the feed forked. */
  want (h: Head, peer: string): void {
    if (!this.c.wantFeed(h.feed) || this.holds(h)) return
    let w = this.wants.get(h.feed)
    if (w === undefined) {
      if (this.wants.size >= this.c.maxWants) {
        this.c.logger?.debug({ feed: h.feed, peer }, 'audit sync: too many wants; dropped one')
        return
      }
      w = { seq: h.seq, peers: new Map<string, number>(), offers: 0, retries: 0 }
      this.wants.set(h.feed, w)
    }
    w.seq = Math.max(w.seq, h.seq)
    w.peers.delete(peer)
    w.peers.set(peer, ++w.offers)
    if (w.peers.size > MAX_PEERS_PER_WANT) w.peers.delete(w.peers.keys().next().value as string)
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
      const retry = !done && this.started && w.retries < MAX_PULL_RETRIES
      if (!retry) this.wants.delete(feed)
      this.active.delete(feed)
      this.release()
      this.check(feed)
      if (retry) {
        const delay = PULL_RETRY_MS * 2 ** w.retries++
        setTimeout(() => { if (!this.active.has(feed) && this.wants.get(feed) === w) void this.drive(feed) }, delay).unref()
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

  /** The entry `peer` holds at (feed, seq), as it serves it (bytes, unverified); undefined when it holds none there. */
  async entryAt (peer: PeerId, feed: string, seq: number): Promise<Uint8Array | undefined> {
    let entry: Uint8Array | undefined
    await this.request(peer, { t: 'range', feed, from: seq, to: seq }, async (frame) => {
      if (frame.t !== 'entries' || frame.entries.length !== 1 || entry !== undefined) throw new AuditError('MESSAGE_MALFORMED', 'expected one entry')
      entry = frame.entries[0]
    })
    return entry
  }

  /** A new stream to `peer`, opened within the request timeout unless stop() comes first. */
  private async open (peer: PeerId, protocols: readonly SyncProtocol[]): Promise<Stream> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.c.requestTimeoutMs)])
    return await this.c.dial(peer, protocols, signal)
  }

  /** One request, on `stream` or else on a new one in any sync protocol the peer speaks (ranges are in each). */
  private async request (peer: PeerId, req: SyncRequest, onFrame: (frame: SyncData) => Promise<void>, stream?: Stream): Promise<void> {
    await request(stream ?? await this.open(peer, SYNC_PROTOCOLS), this.c.exchange, req, onFrame)
  }
}
