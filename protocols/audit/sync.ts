// Replication of the audit log over libp2p. Heads are gossiped (coalesced after new entries, and
// periodically); a host that sees a head it lacks pulls the missing range from the peer that
// told it, over a request/response protocol of length-prefixed frames. On every identified
// connection both sides exchange their whole head vector, so any member relays any feed and a
// host back from downtime catches up at once. Every entry is verified by the store before it is
// kept; misbehaving peers are penalised and, when they persist, banned.
// AuditSync only composes the parts and wires them to libp2p: the Announcer (the heads topic),
// the Puller (wants and pulls), respondSync (serving peers) and Penalties.
import { EventEmitter } from 'node:events'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { Exchange } from '../reqresp.js'
import { PeerBudget, type BudgetExceeded, type BudgetLimits } from '../budget.js'
import { maxEntryBytes } from './codec.js'
import { AuditError } from './errors.js'
import { Announcer, type PublishedEvent } from './announcer.js'
import { Penalties, peerScore, type PenaltyEvent } from './penalties.js'
import { Puller, type PullResult } from './puller.js'
import { respondSync } from './responder.js'
import type { AuditStore } from './store.js'
import type { SyncLogger } from './types.js'
import { MAX_ANNOUNCE_BYTES, MAX_REQUEST_BYTES, SYNC_PROTOCOL, syncExchange, type SyncData, type SyncRequest } from './wire.js'

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
   * feeds, announced or in head vectors, are not wanted. Default: every feed.
   */
  wantFeed?: (feed: string) => boolean
  /** feeds wanted at once (default 16384) */
  maxWants?: number
  /** heads accepted in one peer's head vector (default 65536) */
  maxHeadVector?: number
  /** per-publisher budget of heads announcements (see DEFAULT_BUDGETS) */
  announcementBudget?: BudgetLimits
  /** per-peer budgets of head-vector and range requests served (see DEFAULT_BUDGETS) */
  headsBudget?: BudgetLimits
  rangeBudget?: BudgetLimits
  /** heads announcements of one publisher being validated at once (default 4) */
  maxValidationsPerPeer?: number
  /** coalescing delay before announcing new heads (default 75 ms) */
  announceDelayMs?: number
  /** this host's own head re-announced, and head vectors exchanged with one random member, this often (default 10 s) */
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
 * coalescing delay (75 ms) plus once per period, in ~100 bytes; it asks a peer for a head
 * vector (which costs the server its whole vector) on connect, after a join and once per
 * period at most; ranges it asks for as fast as it can ingest them, one per wanted feed at a
 * time, so their budget only stops a peer that asks for far more than it could store.
 */
export const DEFAULT_BUDGETS: { announcements: BudgetLimits, heads: BudgetLimits, ranges: BudgetLimits } = {
  announcements: { maxBytes: MAX_ANNOUNCE_BYTES, burst: 64, perSecond: 32 },
  heads: { maxBytes: MAX_REQUEST_BYTES, burst: 32, perSecond: 2 },
  ranges: { maxBytes: MAX_REQUEST_BYTES, burst: 4096, perSecond: 2048 }
}

interface SyncEvents {
  penalty: [PenaltyEvent]
  ban: [string]
  /** once per start or expectCatchUp(): this host compared heads with a member and came to hold all it held then */
  'caught-up': [string]
  /** a heads announcement this host published (gossipsub reports only messages received) */
  published: [PublishedEvent]
}

export class AuditSync extends EventEmitter<SyncEvents> {
  private readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  private readonly store: AuditStore
  private readonly allowPeer: (peer: string) => boolean
  private readonly announceIntervalMs: number
  private readonly maxRangeEntries: number
  private readonly exchange: Exchange<SyncRequest, SyncData, AuditError>
  private readonly offences: Penalties
  private readonly headsBudget: PeerBudget
  private readonly rangeBudget: PeerBudget
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
    this.exchange = syncExchange(maxEntryBytes(store.limits))
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
    this.rangeBudget = new PeerBudget({ limits: opts.rangeBudget ?? DEFAULT_BUDGETS.ranges, label: 'range request' })
    this.puller = new Puller({
      store,
      wantFeed: opts.wantFeed ?? (() => true),
      exchange: this.exchange,
      dial: async (peer, signal) => await libp2p.dialProtocol(peer, SYNC_PROTOCOL, { signal }),
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
    await this.libp2p.handle(SYNC_PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, { maxInboundStreams: 64, maxOutboundStreams: 64 })
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.intervalTimer = setInterval(() => {
      void this.announcer.reannounce()
      // Anti-entropy beside the gossip: a head vector exchanged with one random member each
      // period repairs whatever an announcement missed, without trusting gossip to be perfect.
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
    await this.libp2p.unhandle(SYNC_PROTOCOL)
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

  /** Exchanges head vectors with a peer and pulls whatever it has that this store lacks. */
  async syncWith (peer: PeerId): Promise<void> {
    await this.puller.syncWith(peer)
  }

  /** Pulls feed entries from..to from one peer (see Puller.pull). */
  async pull (peer: PeerId, feed: string, from: number, to: number): Promise<PullResult> {
    return await this.puller.pull(peer, feed, from, to)
  }

  private usable (peer: string): boolean {
    return !this.isBanned(peer) && this.allowPeer(peer)
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (evt.detail.protocols.includes(SYNC_PROTOCOL)) void this.syncWith(evt.detail.peerId).catch(() => {})
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    if (!this.usable(peer)) {
      stream.abort(new Error('refused'))
      return
    }
    // the refusal reaches the peer as an error frame and is penalised below, once
    const spend = (req: SyncRequest): void => {
      if (!(req.t === 'heads' ? this.headsBudget : this.rangeBudget).take(peer)) throw new AuditError('OVER_BUDGET', `too many ${req.t} requests; ask again later`)
    }
    const error = await respondSync(stream, { store: this.store, exchange: this.exchange, maxRangeEntries: this.maxRangeEntries, spend })
    // after the reply: a penalty past the threshold hangs up the connection
    if (error !== undefined) this.offences.penalise(peer, error)
  }
}
