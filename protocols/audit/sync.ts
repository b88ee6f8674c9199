// Replication of the audit log over libp2p. A host gossips its own new heads (coalesced, on
// change only); a host that sees a head it lacks pulls the missing range from the peer that told
// it, over a request/response protocol of length-prefixed frames. On every identified connection,
// and with one random member each period, a host reconciles head vectors by digest (digest.ts):
// the peer's heads where the two differ, in a few hundred bytes when nothing does, so any member
// relays any feed, a missed announcement is repaired, and a host back from downtime catches up
// at once. Hosts of the version before digests speak only the old protocol id: they are served
// there and synced with by whole head vector (wire.ts). Every entry is verified by the store before it is kept; misbehaving peers are
// penalised and, when they persist, banned.
// AuditSync only composes the parts and wires them to libp2p: the Announcer (the heads topic),
// the Puller (wants and pulls), respondSync (serving peers) and Penalties.
import { EventEmitter } from 'node:events'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { Exchange } from '../reqresp.js'
import { PeerBudget, type BudgetExceeded, type BudgetLimits } from '../budget.js'
import { entryHash, maxEntryBytes } from './codec.js'
import { HeldHeads } from './digest.js'
import { AuditError } from './errors.js'
import { Announcer, type PublishedEvent } from './announcer.js'
import { Penalties, peerScore, type PenaltyEvent } from './penalties.js'
import { Puller, type PullResult } from './puller.js'
import { respondSync } from './responder.js'
import type { AuditStore } from './store.js'
import type { Head, SyncLogger } from './types.js'
import { MAX_ANNOUNCE_BYTES, MAX_DIGEST_REQUEST_BYTES, MAX_REQUEST_BYTES, SYNC_PROTOCOLS, syncExchange, type SyncData, type SyncProtocol, type SyncRequest } from './wire.js'

export interface AuditSyncOptions {
  libp2p: Libp2p<{ pubsub: GossipSub }>
  store: AuditStore
  logger?: SyncLogger
  /**
   * Which peers this host replicates with (e.g. "is an admitted member"); others are neither
   * served nor pulled from, and their announcements are ignored. Default: every peer.
   */
  allowPeer?: (peer: string) => boolean
  /**
   * Which feeds are worth pulling: those that are or were members (DESIGN §8). Heads of other
   * feeds, announced or offered by digest, are not wanted. Default: every feed.
   */
  wantFeed?: (feed: string) => boolean
  /** feeds wanted at once (default 16384) */
  maxWants?: number
  /** heads a peer may offer in one digest exchange, or send as a witnessed vector (default 65536) */
  maxHeadVector?: number
  /** per-publisher budget of heads announcements (see DEFAULT_BUDGETS) */
  announcementBudget?: BudgetLimits
  /** per-peer budgets of head-vector (and witnessed-vector), digest and range requests served (see DEFAULT_BUDGETS) */
  headsBudget?: BudgetLimits
  digestBudget?: BudgetLimits
  rangeBudget?: BudgetLimits
  /** the vector this host witnessed in its own witness entry `seq`, served to auditors; undefined: not held */
  witnessed?: (seq: number) => Promise<Head[] | undefined>
  /** heads announcements of one publisher being validated at once (default 4) */
  maxValidationsPerPeer?: number
  /** coalescing delay before announcing new heads (default 75 ms) */
  announceDelayMs?: number
  /** head vectors reconciled by digest with one random member this often (default 10 s) */
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

/**
 * What one peer may make this host do. An honest host announces its own head at most once per
 * coalescing delay (75 ms), in ~100 bytes; it reconciles with a peer on connect, after a join
 * and once per period at most, in one digest query when nothing differs and a few dozen when
 * it lacks nearly everything of 65,536 feeds (each query costs the server a few fingerprints
 * per range asked about); a whole head vector (which costs the server its whole vector) only an
 * older version or an auditor asks for; ranges it asks for as fast as it can ingest them, one
 * per wanted feed at a time, so their budget only stops a peer that asks for far more than it
 * could store.
 */
export const DEFAULT_BUDGETS: { announcements: BudgetLimits, heads: BudgetLimits, digests: BudgetLimits, ranges: BudgetLimits } = {
  announcements: { maxBytes: MAX_ANNOUNCE_BYTES, burst: 64, perSecond: 32 },
  heads: { maxBytes: MAX_REQUEST_BYTES, burst: 32, perSecond: 2 },
  digests: { maxBytes: MAX_DIGEST_REQUEST_BYTES, burst: 256, perSecond: 16 },
  ranges: { maxBytes: MAX_REQUEST_BYTES, burst: 4096, perSecond: 2048 }
}

interface SyncEvents {
  penalty: [PenaltyEvent]
  ban: [string]
  /** once per start or expectCatchUp(): this host reconciled heads with a member and came to hold all it offered then */
  'caught-up': [string]
  /** a heads announcement this host published (gossipsub reports only messages received) */
  published: [PublishedEvent]
  /** a sync request this host answered, or refused */
  served: [ServedEvent]
}

/** One request served: the protocol id it came on, its type (undefined when it could not be decoded) and the error the peer was told, if any. */
export interface ServedEvent { peer: string, protocol: SyncProtocol, t: SyncRequest['t'] | undefined, error?: AuditError }

export class AuditSync extends EventEmitter<SyncEvents> {
  private readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  private readonly store: AuditStore
  private readonly allowPeer: (peer: string) => boolean
  private readonly announceIntervalMs: number
  private readonly maxRangeEntries: number
  /** per protocol id: what a request there may be */
  private readonly exchanges: Record<SyncProtocol, Exchange<SyncRequest, SyncData, AuditError>>
  private readonly offences: Penalties
  private readonly headsBudget: PeerBudget
  private readonly digestBudget: PeerBudget
  private readonly rangeBudget: PeerBudget
  private readonly held: HeldHeads
  private readonly witnessed: AuditSyncOptions['witnessed']
  private readonly announcer: Announcer
  private readonly puller: Puller
  private intervalTimer: NodeJS.Timeout | undefined
  private started = false

  constructor (opts: AuditSyncOptions) {
    super()
    const { libp2p, store, logger } = opts
    this.libp2p = libp2p
    this.store = store
    this.allowPeer = opts.allowPeer ?? (() => true)
    this.announceIntervalMs = opts.announceIntervalMs ?? 10_000
    this.maxRangeEntries = opts.maxRangeEntries ?? 65_536
    const maxEntry = maxEntryBytes(store.limits)
    this.exchanges = Object.fromEntries(SYNC_PROTOCOLS.map(p => [p, syncExchange(maxEntry, p)])) as AuditSync['exchanges']
    this.offences = new Penalties({
      score: peerScore(libp2p.services.pubsub),
      disconnect: (peer) => {
        const conn = libp2p.getConnections().find(c => c.remotePeer.toString() === peer)
        if (conn !== undefined) void libp2p.hangUp(conn.remotePeer).catch(() => {})
      },
      onPenalty: (e) => { this.emit('penalty', e) },
      onBan: (peer) => { this.emit('ban', peer) },
      logger,
      banThreshold: opts.banThreshold ?? 3,
      banMs: opts.banMs ?? 10 * 60_000
    })
    const penalise = (peer: string, error: AuditError): void => { this.offences.penalise(peer, error) }
    const overBudget = (e: BudgetExceeded): void => {
      penalise(e.peer, new AuditError(e.reason === 'size' ? 'MESSAGE_TOO_LARGE' : 'OVER_BUDGET', e.message))
    }
    this.headsBudget = new PeerBudget({ limits: opts.headsBudget ?? DEFAULT_BUDGETS.heads, label: 'head vector request' })
    this.digestBudget = new PeerBudget({ limits: opts.digestBudget ?? DEFAULT_BUDGETS.digests, label: 'digest request' })
    this.held = new HeldHeads(store)
    this.witnessed = opts.witnessed
    this.rangeBudget = new PeerBudget({ limits: opts.rangeBudget ?? DEFAULT_BUDGETS.ranges, label: 'range request' })
    this.puller = new Puller({
      store,
      index: () => this.held.current(),
      wantFeed: opts.wantFeed ?? (() => true),
      // every request is encoded alike; the requester picks, per peer, a request its protocol has
      exchange: syncExchange(maxEntry),
      dial: async (peer, protocols, signal) => await libp2p.dialProtocol(peer, [...protocols], { signal }),
      connected: () => libp2p.getConnections().map(c => c.remotePeer),
      usable: (peer) => this.usable(peer),
      penalise,
      onCaughtUp: (peer) => { this.emit('caught-up', peer) },
      logger,
      maxRangeEntries: this.maxRangeEntries,
      maxWants: opts.maxWants ?? 16_384,
      maxHeadVector: opts.maxHeadVector ?? 65_536,
      maxConcurrentPulls: opts.maxConcurrentPulls ?? 8,
      pipelineDepth: opts.pipelineDepth ?? 4,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000
    })
    this.announcer = new Announcer({
      pubsub: libp2p.services.pubsub,
      store,
      allowPeer: (peer) => this.usable(peer),
      budget: new PeerBudget({ limits: opts.announcementBudget ?? DEFAULT_BUDGETS.announcements, label: 'heads announcement', onExceeded: overBudget }),
      maxValidationsPerPeer: opts.maxValidationsPerPeer ?? 4,
      want: (head, peer) => { this.puller.want(head, peer) },
      settled: async (heads) => { await this.puller.settled(heads) },
      penalise,
      onPublished: (e) => { this.emit('published', e) },
      logger,
      announceDelayMs: opts.announceDelayMs ?? 75
    })
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.puller.start()
    // before anything awaits, so no entry of this host's goes unannounced
    this.announcer.start()
    for (const protocol of SYNC_PROTOCOLS) {
      await this.libp2p.handle(protocol, (stream, connection) => { void this.serve(protocol, stream, connection) }, { maxInboundStreams: 64, maxOutboundStreams: 64 })
    }
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.intervalTimer = setInterval(() => {
      // Anti-entropy beside the gossip: a digest reconciled with one random member each period
      // repairs whatever an announcement missed, without trusting gossip to be perfect; idle,
      // it costs one query and one empty reply, whatever the number of feeds.
      const peers = this.libp2p.getConnections().map(c => c.remotePeer).filter(p => this.allowPeer(p.toString()) && !this.isBanned(p.toString()))
      const peer = peers[Math.floor(Math.random() * peers.length)]
      if (peer !== undefined) void this.syncWith(peer).catch(() => {})
    }, this.announceIntervalMs)
    this.intervalTimer.unref()
    for (const conn of this.libp2p.getConnections()) void this.syncWith(conn.remotePeer).catch(() => {})
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.puller.stop()
    clearInterval(this.intervalTimer)
    this.announcer.stop()
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    for (const protocol of SYNC_PROTOCOLS) await this.libp2p.unhandle(protocol)
  }

  /**
   * The member this host first caught up with since it started, if any: a host back from
   * downtime should not act on a log it has only half pulled (see node/deploy.ts).
   */
  caughtUp (): string | undefined {
    return this.puller.caughtUp()
  }

  /**
   * Forgets the member caught up with, so that 'caught-up' is emitted again for the next one:
   * a host that lost every peer holds a log as stale as one back from downtime.
   */
  expectCatchUp (): void {
    this.puller.expectCatchUp()
  }

  /** Sizes of what peers can make this host hold: wanted feeds, callers waiting on heads, announcements in validation. */
  stats (): { wants: number, waiters: number, validations: number } {
    return { ...this.puller.stats(), validations: this.announcer.validations() }
  }

  /** Local offence counts per peer id string. */
  penalties (): Map<string, number> {
    return this.offences.counts()
  }

  isBanned (peer: string): boolean {
    return this.offences.isBanned(peer)
  }

  /** Reconciles head vectors with a peer by digest and pulls whatever it has that this store lacks. */
  async syncWith (peer: PeerId): Promise<void> {
    await this.puller.syncWith(peer)
  }

  /**
   * The head vector `peer` committed to in its own witness entry `seq` (to check it against the
   * entry's signed root). A peer that no longer holds it refuses: SYNC_FAILED naming NOT_FOUND;
   * a peer of a version before witnessed vectors is not asked: SYNC_FAILED.
   */
  async fetchWitnessed (peer: PeerId, seq: number): Promise<Head[]> {
    return await this.puller.witnessed(peer, seq)
  }

  /**
   * Whether `peer` holds this very entry: it serves its bytes at (feed, seq) over a range request
   * and they hash to `hash`. How a host learns that its own entry reached a member.
   */
  async holds (peer: PeerId, feed: string, seq: number, hash: Uint8Array): Promise<boolean> {
    const bytes = await this.puller.entryAt(peer, feed, seq)
    return bytes !== undefined && Buffer.from(entryHash(bytes)).equals(Buffer.from(hash))
  }

  /** Pulls feed entries from..to from one peer (see Puller.pull). */
  async pull (peer: PeerId, feed: string, from: number, to: number): Promise<PullResult> {
    return await this.puller.pull(peer, feed, from, to)
  }

  private usable (peer: string): boolean {
    return !this.isBanned(peer) && this.allowPeer(peer)
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (SYNC_PROTOCOLS.some(p => evt.detail.protocols.includes(p))) void this.syncWith(evt.detail.peerId).catch(() => {})
  }

  private async serve (protocol: SyncProtocol, stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    if (!this.usable(peer)) {
      stream.abort(new Error('refused'))
      return
    }
    // the refusal reaches the peer as an error frame and is penalised below, once
    let t: SyncRequest['t'] | undefined
    const spend = (req: SyncRequest): void => {
      t = req.t
      const budget = req.t === 'digest' ? this.digestBudget : req.t === 'range' ? this.rangeBudget : this.headsBudget
      if (!budget.take(peer)) throw new AuditError('OVER_BUDGET', `too many ${req.t} requests; ask again later`)
    }
    const error = await respondSync(stream, {
      store: this.store,
      index: () => this.held.current(),
      witnessed: this.witnessed,
      exchange: this.exchanges[protocol],
      maxRangeEntries: this.maxRangeEntries,
      spend
    })
    // after the reply: a penalty past the threshold hangs up the connection
    if (error !== undefined) this.offences.penalise(peer, error)
    this.emit('served', { peer, protocol, t, error })
  }
}
