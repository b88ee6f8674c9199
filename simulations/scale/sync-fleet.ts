// The log's own traffic and growth, driven by the real pure state machines: every host's
// WitnessSchedule (protocols/audit/witness-schedule.ts) decides when it writes a witness entry,
// whose body is witnessBody of the heads it holds, signed with its key; its new head is announced
// once (gossip over network.ts's mesh: the copies and IHAVEs gossipsub sends are counted where
// they arrive) and pulled by every host the announcement reached; and every `repairMs` each host
// runs a Reconciliation (protocols/audit/reconcile.ts) against answerDigest on a random
// connected peer's heads, pulling what it offers. Every message is counted by its real encoded
// size (wire-cost.ts). Heads live in fleet-heads.ts: the shared newest heads, and per host the
// feeds where it is behind.
import { Reconciliation, answerDigest, type DigestQuery } from '../../protocols/audit/reconcile.js'
import type { Head, StoredEntry } from '../../protocols/audit/types.js'
import { witnessBody, witnessVector, type WitnessBodyV2 } from '../../protocols/audit/witness-body.js'
import { WitnessSchedule, witnessPolicy } from '../../protocols/audit/witness-schedule.js'
import { encodeVector } from '../../protocols/audit/witness-vectors.js'
import { pad } from '../../protocols/audit/layout.js'
import type { SignedFeed } from '../harness/signed-feeds.js'
import { FleetHeads, HostView, held } from './fleet-heads.js'
import type { Network } from './network.js'
import type { GossipParams } from './params.js'
import { GossipCost, exchangeBytes, pullBytes, storedBytes } from './wire-cost.js'

/** the announcer's coalescing delay (protocols/audit/sync.ts's default) */
export const ANNOUNCE_DELAY_MS = 75
const NO_FORKS: ReadonlyMap<string, number> = new Map()

/** Bytes on the wire by what carried them (each byte counted once: it has one sender and one receiver). */
export class Traffic {
  gossip = 0
  ihave = 0
  pulls = 0
  repairs = 0
  repairExchanges = 0
  repairRounds = 0
  announcements = 0
  copies = 0

  get total (): number {
    return this.gossip + this.ihave + this.pulls + this.repairs
  }
}

export class SyncFleet {
  readonly schedules: WitnessSchedule[]
  readonly traffic = new Traffic()
  /** bytes every host's store grew by (entries and its own witnessed vectors), summed over hosts */
  stored = 0
  witnesses = 0
  /** index of each host's feed in the shared head table */
  private readonly feedIndex: Int32Array
  private readonly gossipCost: GossipCost
  private truth!: FleetHeads
  private views: HostView[] = []
  /** entries written while heads are tracked: feed index → seq → entry */
  private readonly written = new Map<number, Map<number, StoredEntry>>()

  constructor (
    readonly feeds: SignedFeed[],
    private readonly net: Network,
    private readonly gossip: GossipParams,
    /** simulated time → the wall clock entries are stamped with and schedules run on */
    private readonly wall: (t: number) => number,
    private readonly rand: () => number
  ) {
    this.schedules = feeds.map(f => new WitnessSchedule(witnessPolicy(f.feed), wall(0)))
    this.feedIndex = new Int32Array(feeds.length).fill(-1)
    this.gossipCost = new GossipCost(feeds[0].peerIdBytes, feeds[0].publicKeyProtobuf)
  }

  /** From now on every host holds every feed's newest head (a settled fleet): heads are tracked per host. */
  settle (): void {
    const heads = this.feeds.filter(f => f.seq > 0).map(f => ({ feed: f.feed, seq: f.seq - 1, hash: f.prev }))
    this.truth = new FleetHeads(heads)
    this.feeds.forEach((f, h) => { this.feedIndex[h] = f.seq > 0 ? this.truth.lower(f.feed) : -1 })
    this.views = this.feeds.map(() => new HostView(this.truth))
  }

  /** Every schedule but the author's sees an entry (at its publication: arrivals follow within a second). */
  observe (author: number, e: { kind: string }, t: number): void {
    const feed = this.feeds[author].feed
    for (let h = 0; h < this.schedules.length; h++) if (h !== author) this.schedules[h].onEntry({ feed, kind: e.kind }, this.wall(t))
  }

  /** When host h's schedule is next due, in simulated time (undefined: nothing pending). */
  dueAt (h: number): number | undefined {
    const at = this.schedules[h].nextAt()
    return at === undefined ? undefined : at - this.wall(0)
  }

  /**
   * Host h writes its witness entry at t over the heads it holds, and stores the vector beside
   * the log. Before heads are tracked per host (`settle`) it commits to `settled`: a vector of
   * the fleet's size, whose root and record cost what the host's own would.
   */
  witness (h: number, t: number, settled?: { body: WitnessBodyV2, recordBytes: number }): StoredEntry {
    const f = this.feeds[h]
    let body = settled?.body
    let record = settled?.recordBytes ?? 0
    if (body === undefined) {
      const vector = witnessVector(this.views[h].heads('', null), f.feed, NO_FORKS)
      body = witnessBody(vector)
      record = encodeVector(vector).length
    }
    const s = f.append(this.wall(t), 'witness', body)
    this.schedules[h].done(this.wall(t))
    this.witnesses++
    // the vector record: key w!<at>!<root hex>, value the canonical vector
    this.stored += `w!${pad(this.wall(t))}!`.length + 64 + record
    return s
  }

  /** What one entry costs each host that receives it: `sample`'s gossip copies and IHAVEs, and its own pull. */
  perReceiver (s: StoredEntry, sample: { copies: number, ihaves: number }): { gossip: number, ihave: number, pull: number, stored: number } {
    const head = { feed: s.entry.feed, seq: s.entry.seq, hash: s.hash }
    return {
      gossip: sample.copies * this.gossipCost.announcement(head),
      ihave: sample.ihaves * this.gossipCost.ihave(),
      pull: pullBytes(s.entry.feed, s.entry.seq, [s.bytes]),
      stored: storedBytes(s.entry, s.bytes)
    }
  }

  /** Mean gossip copies and IHAVEs a host receives per announcement, over `samples` spreads from random hosts at t. */
  sampleGossip (samples: number, t: number): { copies: number, ihaves: number } {
    const { net } = this
    let copies = 0
    let ihaves = 0
    let receivers = 0
    for (let k = 0; k < samples; k++) {
      const h = Math.floor(this.rand() * this.feeds.length)
      const received = net.received
      net.spread(h, t)
      copies += net.received - received
      ihaves += this.ihaves(h)
      receivers += net.reachedCount
    }
    return { copies: copies / receivers, ihaves: ihaves / receivers }
  }

  /** IHAVEs of the last spread: every host holding it names it to its gossip targets for historyGossip heartbeats. */
  private ihaves (origin: number): number {
    const { net } = this
    let n = net.gossipTargets(origin)
    for (let k = 0; k < net.reachedCount; k++) n += net.gossipTargets(net.reached[k])
    return n * this.gossip.historyGossip
  }

  /**
   * Host h's new entry `s` (its feed's newest) is announced at t: every other host is behind on
   * it until its pull lands; `pulled(time, v)` is called for each host the gossip reached.
   */
  announce (h: number, s: StoredEntry, t: number, pulled: (time: number, v: number) => void): void {
    const i = this.feedIndex[h]
    const before = held(this.truth.heads[i])
    const head = { feed: s.entry.feed, seq: s.entry.seq, hash: s.hash }
    this.truth.set(i, head)
    this.written.set(i, (this.written.get(i) ?? new Map()).set(s.entry.seq, s))
    this.views.forEach((v, k) => { if (k !== h && !v.behind.has(i)) v.behind.set(i, before) })
    this.stored += storedBytes(s.entry, s.bytes)
    const { net } = this
    const received = net.received
    net.spread(h, t + ANNOUNCE_DELAY_MS)
    const copies = net.received - received
    this.traffic.announcements++
    this.traffic.copies += copies
    this.traffic.gossip += copies * this.gossipCost.announcement(head)
    this.traffic.ihave += this.ihaves(h) * this.gossipCost.ihave()
    const pull = pullBytes(head.feed, head.seq, [s.bytes])
    for (let k = 0; k < net.reachedCount; k++) {
      const v = net.reached[k]
      this.traffic.pulls += pull
      // the pull: a request to the relay and the entries back
      pulled(net.arrival[v] + 2 * net.latency(), v)
    }
  }

  /** Host v's pull of entry `s`, which an announcement named, landed. */
  pulled (v: number, s: StoredEntry): void {
    const i = this.truth.lower(s.entry.feed)
    this.catchUp(v, i, { feed: s.entry.feed, seq: s.entry.seq, hash: s.hash })
  }

  /** Host h's periodic digest repair with a random connected online peer. */
  repair (h: number): void {
    const peers = this.net.connected[h]
    const p = peers[Math.floor(this.rand() * peers.length)]
    if (this.net.online[p] === 0) return
    const mine = this.views[h]
    const rec = new Reconciliation(mine)
    let q: DigestQuery | undefined = rec.first()
    while (q !== undefined) {
      const reply = answerDigest(this.views[p], q)
      this.traffic.repairs += exchangeBytes(q, [reply])
      q = rec.next(reply)
    }
    this.traffic.repairExchanges++
    this.traffic.repairRounds += rec.rounds
    for (const o of rec.offered) {
      const i = this.truth.lower(o.feed)
      const have = mine.headAt(i).seq
      if (o.seq <= have) continue
      const log = this.written.get(i)
      const entries: Uint8Array[] = []
      for (let seq = have + 1; seq <= o.seq; seq++) {
        const e = log?.get(seq)
        if (e === undefined) throw new Error(`repair: ${o.feed} seq ${seq} was never written while heads were tracked`)
        entries.push(e.bytes)
      }
      this.traffic.pulls += pullBytes(o.feed, have + 1, entries)
      this.catchUp(h, i, o)
    }
  }

  /** Host v now holds feed i up to `head` (entries it lacked stored). */
  private catchUp (v: number, i: number, head: Head): void {
    const view = this.views[v]
    const behind = view.behind.get(i)
    if (behind === undefined || behind.head.seq >= head.seq) return
    const log = this.written.get(i)
    for (let seq = behind.head.seq + 1; seq <= head.seq; seq++) {
      const e = log?.get(seq)
      if (e !== undefined) this.stored += storedBytes(e.entry, e.bytes)
    }
    if (head.seq >= this.truth.heads[i].seq) view.behind.delete(i)
    else view.behind.set(i, held(head))
  }
}
