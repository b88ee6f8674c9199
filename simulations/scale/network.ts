// The simulated gossipsub overlay: a mesh of degree D (kept between Dlo and Dhi as hosts leave
// and return), eager push along the mesh, lazy IHAVE/IWANT repair at heartbeats, and per-
// transmission log-normal latency and loss.
//
// One message's eager spread is computed when it is published, as a shortest-path search in
// which every edge is one transmission with its own latency and loss draw: a host forwards on
// first receipt to every mesh peer but the sender, exactly as the eager push does, and the
// search visits each host once. The online set is taken at publish time (a spread lasts well
// under a heartbeat). Transmissions draw from a private xorshift32 stream inlined in the search
// loop: three shifts a draw, which made the whole spread 8 % faster than mulberry32 did.
import type { GossipParams } from './params.js'

export interface NetOptions {
  hosts: number
  /** connections per host (gossipsub meshes and gossips among connected topic peers) */
  peers: number
  loss: number
  latencyMedianMs: number
  latencySigma: number
}

export type Rand = () => number

export function mulberry32 (seed: number): Rand {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const LATENCY_TABLE = 1 << 16

export class Network {
  readonly online: Uint8Array
  readonly connected: number[][]
  readonly mesh: number[][]
  /** heartbeat phase of each host, ms in [0, heartbeat) */
  readonly phase: Float64Array
  /** messages carrying entries (eager forwards, IWANT replies, sync responses) and the IWANTs asking for them, per host */
  readonly sent: Float64Array
  /** the same messages counted where they arrive: a total, as a per-host count would cost a write per transmission */
  received = 0
  /** IHAVE control messages sent per host at heartbeats */
  readonly ihave: Float64Array
  /** after `spread`: when the message reached each host (+∞: never) and the hosts it reached */
  readonly arrival: Float64Array
  readonly reached: Int32Array
  reachedCount = 0
  private onlineCount: number
  private readonly lat: Float64Array
  private readonly invWidth: number
  private readonly dist: Float64Array
  private readonly from: Int32Array
  private readonly done: Uint8Array
  // the bucket queue: per bucket the first item, items chained through itemNext
  private bucketHead = new Int32Array(4096).fill(-1)
  private itemNode = new Int32Array(1024)
  private itemNext = new Int32Array(1024)
  private items = 0
  private lastBucket = -1
  /** the spread's own inline PRNG state (xorshift32, never 0), seeded from `rand` */
  private seed: number
  // the mesh flattened (CSR) for the spread's inner loop; rebuilt only after the mesh changed
  private meshChanged = true
  private adjStart = new Int32Array(0)
  private adj = new Int32Array(0)

  constructor (readonly opts: NetOptions, readonly gossip: GossipParams, readonly rand: Rand) {
    const n = opts.hosts
    this.online = new Uint8Array(n).fill(1)
    this.phase = new Float64Array(n).map(() => rand() * gossip.heartbeatMs)
    this.sent = new Float64Array(n)
    this.ihave = new Float64Array(n)
    // a table of log-normal samples: one lookup per transmission instead of a Box-Muller pair
    this.lat = new Float64Array(LATENCY_TABLE).map(() => {
      const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
      return opts.latencyMedianMs * Math.exp(opts.latencySigma * z)
    })
    // a bucket no wider than the fastest transmission keeps the bucket queue exact (see run)
    this.invWidth = 1 / (0.999 * this.lat.reduce((a, b) => Math.min(a, b)))
    this.seed = (Math.floor(rand() * 4294967295) | 0) || 1
    this.onlineCount = n
    this.arrival = new Float64Array(n)
    this.reached = new Int32Array(n)
    this.dist = new Float64Array(n)
    this.from = new Int32Array(n)
    this.done = new Uint8Array(n)
    const sets = Array.from({ length: n }, () => new Set<number>())
    for (let h = 0; h < n; h++) {
      while (sets[h].size < Math.min(opts.peers, n - 1) / 2) {
        const p = Math.floor(rand() * n)
        if (p !== h) { sets[h].add(p); sets[p].add(h) }
      }
    }
    this.connected = sets.map(s => [...s])
    this.mesh = Array.from({ length: n }, () => [])
    for (let h = 0; h < n; h++) this.graft(h)
  }

  latency (): number {
    return this.lat[(this.rand() * LATENCY_TABLE) | 0]
  }

  /** Heartbeat mesh upkeep: below Dlo, graft online connected peers (that have room) up to D. */
  graft (h: number): void {
    const m = this.mesh[h]
    if (m.length >= this.gossip.Dlo && m.length > 0) return
    const candidates = this.connected[h].filter(p => this.online[p] === 1 && !m.includes(p) && this.mesh[p].length < this.gossip.Dhi)
    while (m.length < this.gossip.D && candidates.length > 0) {
      const p = candidates.splice(Math.floor(this.rand() * candidates.length), 1)[0]
      m.push(p)
      this.mesh[p].push(h)
      this.meshChanged = true
    }
  }

  /** A host went offline: its peers notice the closed connection and drop it from their mesh. */
  leave (h: number): void {
    this.online[h] = 0
    this.onlineCount--
    for (const p of this.mesh[h]) this.mesh[p].splice(this.mesh[p].indexOf(h), 1)
    this.mesh[h] = []
    this.meshChanged = true
  }

  join (h: number): void {
    this.online[h] = 1
    this.onlineCount++
    this.graft(h)
  }

  /** Gossip targets per heartbeat: max(Dlazy, gossipFactor × non-mesh peers), capped by what exists. */
  gossipTargets (h: number): number {
    const nonMesh = this.connected[h].length - this.mesh[h].length
    return Math.min(nonMesh, Math.max(this.gossip.Dlazy, Math.ceil(this.gossip.gossipFactor * nonMesh)))
  }

  private flatten (): void {
    const n = this.opts.hosts
    this.adjStart = new Int32Array(n + 1)
    for (let h = 0; h < n; h++) this.adjStart[h + 1] = this.adjStart[h] + this.mesh[h].length
    this.adj = new Int32Array(this.adjStart[n])
    for (let h = 0; h < n; h++) this.adj.set(this.mesh[h], this.adjStart[h])
    this.meshChanged = false
  }

  /**
   * Spreads one message published by `origin` at `t0`. Afterwards `arrival[h]` is the time it
   * reaches host h (+∞ if never; the origin holds it at t0) and `reached[0 .. reachedCount)`
   * lists every host it reached, the origin excluded. Hosts the eager push missed (all their
   * copies lost, or cut off by churn) are repaired by IHAVE from a connected non-mesh peer that
   * holds the message in its last `historyGossip` heartbeats, then IWANT, then the message.
   */
  spread (origin: number, t0: number): void {
    if (this.meshChanged) this.flatten()
    const { dist } = this
    dist.fill(Number.POSITIVE_INFINITY)
    this.done.fill(0)
    this.reachedCount = 0
    dist[origin] = 0
    this.from[origin] = -1
    this.enqueue(0, origin)
    this.run(0)
    if (this.reachedCount + 1 < this.onlineCount) this.repair(t0)
    // times were relative to t0 so that bucket indices need no offset
    const { arrival } = this
    for (let h = 0; h < dist.length; h++) arrival[h] = t0 + dist[h]
  }

  /** Files host v under its relative arrival time; buckets are narrower than any transmission (see run). */
  private enqueue (rel: number, v: number): void {
    const b = Math.floor(rel * this.invWidth)
    if (b >= this.bucketHead.length) {
      const grown = new Int32Array(Math.max(2 * this.bucketHead.length, b + 1)).fill(-1)
      grown.set(this.bucketHead)
      this.bucketHead = grown
    }
    if (this.items === this.itemNode.length) {
      const n2 = new Int32Array(2 * this.items); n2.set(this.itemNode); this.itemNode = n2
      const x2 = new Int32Array(2 * this.items); x2.set(this.itemNext); this.itemNext = x2
    }
    const it = this.items++
    this.itemNode[it] = v
    this.itemNext[it] = this.bucketHead[b]
    this.bucketHead[b] = it
    if (b > this.lastBucket) this.lastBucket = b
  }

  /**
   * Dijkstra with a bucket queue (Dial): every transmission takes at least one bucket width, so
   * a host popped from bucket b can only improve hosts in later buckets, and the hosts of one
   * bucket are final in whatever order they come out. O(1) per push and pop instead of a heap's
   * O(log n): this loop runs for every entry × every mesh edge.
   */
  private run (firstBucket: number): void {
    const { adj, adjStart, online, sent, lat, dist, from, done, reached } = this
    const loss = this.opts.loss
    const scale = LATENCY_TABLE / (1 - loss)
    let a = this.seed
    for (let b = firstBucket; b <= this.lastBucket; b++) {
      let it = this.bucketHead[b]
      this.bucketHead[b] = -1
      while (it !== -1) {
        const u = this.itemNode[it]
        it = this.itemNext[it]
        if (done[u] === 1) continue
        done[u] = 1
        if (from[u] !== -1) reached[this.reachedCount++] = u
        const tu = dist[u]
        const sender = from[u]
        let copies = 0
        for (let i = adjStart[u], end = adjStart[u + 1]; i < end; i++) {
          const v = adj[i]
          if (v === sender || online[v] === 0) continue
          copies++
          // a host already final holds the message earlier than any copy sent now could arrive:
          // the copy is sent and counted, but its loss and latency change nothing
          if (done[v] === 1) continue
          // one uniform draw decides loss and, given delivery, indexes the latency table
          a ^= a << 13; a ^= a >>> 17; a ^= a << 5
          const r = (a >>> 0) * 2.3283064365386963e-10
          if (r < loss) continue
          const tv = tu + lat[((r - loss) * scale) | 0]
          if (tv < dist[v]) {
            dist[v] = tv
            from[v] = u
            this.enqueue(tv, v)
          }
        }
        sent[u] += copies
        this.received += copies
      }
    }
    this.seed = a
    this.items = 0
    this.lastBucket = -1
  }

  private repair (t0: number): void {
    const { dist, online } = this
    const hb = this.gossip.heartbeatMs
    let first = Number.POSITIVE_INFINITY
    for (let p = 0; p < dist.length; p++) {
      if (online[p] === 0 || dist[p] !== Number.POSITIVE_INFINITY) continue
      let best = Number.POSITIVE_INFINITY
      let via = -1
      for (const h of this.connected[p]) {
        if (dist[h] === Number.POSITIVE_INFINITY || this.mesh[h].includes(p)) continue
        const chance = this.gossipTargets(h) / Math.max(1, this.connected[h].length - this.mesh[h].length)
        // relative times: the heartbeat phase is taken relative to the publish time
        const phase = this.phase[h] - t0
        let beat = phase + Math.ceil((dist[h] - phase) / hb) * hb
        for (let k = 0; k < this.gossip.historyGossip; k++, beat += hb) {
          if (this.rand() < chance) {
            const at = beat + 3 * this.latency()
            if (at < best) { best = at; via = h }
            break
          }
        }
      }
      if (via >= 0) {
        this.sent[via] += 2 // the IHAVE and the message
        this.sent[p] += 1 // the IWANT
        this.received += 2
        dist[p] = best
        this.from[p] = via
        this.enqueue(best, p)
        first = Math.min(first, best)
      }
    }
    // repaired hosts forward along their own mesh as any first receipt does
    if (first !== Number.POSITIVE_INFINITY) this.run(Math.floor(first * this.invWidth))
  }
}
