// Range-based set reconciliation of head vectors (after Aljoscha Meyer's range-based set
// reconciliation, as negentropy does it): heads sorted by feed id, a range [lo, hi) summarised
// by a 16-byte fingerprint of its heads. The requester sends the fingerprint of everything;
// the peer answers nothing where its own fingerprint matches, its heads where a differing range
// is small, and otherwise the fingerprints of `fanout` sub-ranges, which the requester compares
// and asks about again. Two up-to-date hosts thus spend one query and one empty reply whatever
// the number of feeds, and a few differing feeds cost about log_fanout(N) rounds.
// One-sided: the requester learns the peer's heads where they differ; the peer repairs itself in
// its own exchanges. Pure (no clock, no libp2p): the scale simulation drives the same code.
import { createHash } from 'node:crypto'
import { AuditError } from './errors.js'
import type { Head } from './types.js'

export const FINGERPRINT_BYTES = 16
/** sub-ranges a differing range is split into, and heads sent for a range at most (defaults) */
export const DEFAULT_FANOUT = 16
export const DEFAULT_LEAF = 32
/** the largest fanout and leaf a peer may use: what one reply may carry per range asked about */
export const MAX_FANOUT = 16
export const MAX_LEAF = 32
/** ranges asked about in one query; more wait for the next one */
export const MAX_QUERY_RANGES = 128

/** One range the requester asks about, with its own fingerprint of it. hi null: to the end. */
export interface DigestRange { lo: string, hi: string | null, fp: Uint8Array }
export interface DigestQuery { t: 'digest', ranges: DigestRange[] }
/** The peer's answer for a range whose fingerprint differs: sub-range fingerprints, or its heads there. */
export type DigestItem =
  | { lo: string, hi: string | null, fp: Uint8Array }
  | { lo: string, hi: string | null, heads: Head[] }
/** Ranges of the query not answered are the same on both sides. */
export interface DigestReply { t: 'digest', items: DigestItem[] }

export interface HeadIndex {
  /** feeds in [lo, hi) (hi null = to the end) */
  count: (lo: string, hi: string | null) => number
  /** 16 bytes, independent of insertion order */
  fingerprint: (lo: string, hi: string | null) => Uint8Array
  /** sorted by feed */
  heads: (lo: string, hi: string | null) => Head[]
  /** up to parts-1 increasing split points inside (lo, hi), each sub-range non-empty, by count */
  bounds: (lo: string, hi: string | null, parts: number) => string[]
}

export interface ReconcileOptions {
  /** answering: the sub-ranges and heads per range sent; asking: the most accepted (≤ MAX_FANOUT, MAX_LEAF) */
  fanout?: number
  leaf?: number
  /** queries before the peer is given up on (an honest peer needs log_fanout(N) plus chunking) */
  maxRounds?: number
  /** heads the peer may offer in all */
  maxOffered?: number
}

const LIMBS = 8

/** A head's contribution to fingerprints: SHA-256(feed, seq, hash) as eight 32-bit limbs. */
export function headHash (h: Head): Uint32Array {
  const tail = new Uint8Array(1 + 8 + h.hash.length)
  const view = new DataView(tail.buffer)
  // seq as 8 big-endian bytes: safe integers need 53 bits
  view.setUint32(1, Math.floor(h.seq / 2 ** 32))
  view.setUint32(5, h.seq >>> 0)
  tail.set(h.hash, 9)
  const d = createHash('sha256').update(h.feed).update(tail).digest()
  return new Uint32Array(d.buffer, d.byteOffset, LIMBS).slice()
}

const fpScratch = new Uint8Array(LIMBS * 4 + 4)

/**
 * The fingerprint of a range from the limb-wise sum (mod 2^32 per limb) of its heads' hashes
 * and its count: sums commute, so any order gives the same, and an index can keep them updated.
 */
export function fingerprintOf (sum: Uint32Array, count: number): Uint8Array {
  const view = new DataView(fpScratch.buffer)
  for (let l = 0; l < LIMBS; l++) view.setUint32(l * 4, sum[l], true)
  view.setUint32(LIMBS * 4, count >>> 0, true)
  return new Uint8Array(createHash('sha256').update(fpScratch).digest().subarray(0, FINGERPRINT_BYTES))
}

/** `a` before `b` as ranges end: null is past every feed. */
function below (a: string, b: string | null): boolean {
  return b === null || a < b
}

function fpEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Up to parts-1 split points of the n sorted feeds from index `from` (`feedAt(i)` the i-th), by
 * count, each the shortest prefix of its feed above the feed before it, so a bound costs a few
 * characters on the wire. Every HeadIndex splits by this rule, so two hosts' ranges line up.
 */
export function splitBounds (feedAt: (i: number) => string, from: number, n: number, parts: number): string[] {
  const k = Math.min(parts, n)
  const out: string[] = []
  for (let j = 1; j < k; j++) {
    const i = from + Math.floor(j * n / k)
    const prev = feedAt(i - 1)
    const feed = feedAt(i)
    let common = 0
    while (common < prev.length && prev[common] === feed[common]) common++
    out.push(feed.slice(0, common + 1))
  }
  return out
}

/**
 * A head vector sorted by feed, with per-head hashes cached and a Fenwick tree of their sums,
 * so a fingerprint costs O(log N), a new head of a known feed O(log N), and setting a head
 * already held nothing; a new or removed feed rebuilds the tree, in O(N), on the next fingerprint.
 */
export class SortedHeads implements HeadIndex {
  private readonly items: Array<{ head: Head, limbs: Uint32Array }> = []
  private readonly byFeed = new Map<string, { head: Head, limbs: Uint32Array }>()
  private tree = new Uint32Array(LIMBS)
  private dirty = true
  private readonly a = new Uint32Array(LIMBS)
  private readonly b = new Uint32Array(LIMBS)

  constructor (heads: Iterable<Head> = []) {
    for (const h of heads) this.set(h)
  }

  get size (): number {
    return this.items.length
  }

  set (h: Head): void {
    const old = this.byFeed.get(h.feed)
    if (old !== undefined && old.head.seq === h.seq && fpEqual(old.head.hash, h.hash)) return
    const item = { head: h, limbs: headHash(h) }
    this.byFeed.set(h.feed, item)
    const i = this.lower(h.feed)
    if (old === undefined) {
      this.items.splice(i, 0, item)
      this.dirty = true
      return
    }
    if (!this.dirty) {
      for (let l = 0; l < LIMBS; l++) this.b[l] = item.limbs[l] - old.limbs[l]
      for (let k = i + 1; k <= this.items.length; k += k & -k) {
        for (let l = 0; l < LIMBS; l++) this.tree[k * LIMBS + l] += this.b[l]
      }
    }
    this.items[i] = item
  }

  delete (feed: string): void {
    if (!this.byFeed.delete(feed)) return
    this.items.splice(this.lower(feed), 1)
    this.dirty = true
  }

  count (lo: string, hi: string | null): number {
    return Math.max(0, this.end(hi) - this.lower(lo))
  }

  fingerprint (lo: string, hi: string | null): Uint8Array {
    const from = this.lower(lo)
    const to = Math.max(from, this.end(hi))
    this.prefix(to, this.a)
    this.prefix(from, this.b)
    for (let l = 0; l < LIMBS; l++) this.a[l] -= this.b[l]
    return fingerprintOf(this.a, to - from)
  }

  heads (lo: string, hi: string | null): Head[] {
    const from = this.lower(lo)
    return this.items.slice(from, Math.max(from, this.end(hi))).map(x => x.head)
  }

  bounds (lo: string, hi: string | null, parts: number): string[] {
    const from = this.lower(lo)
    return splitBounds(i => this.items[i].head.feed, from, this.end(hi) - from, parts)
  }

  /** first index whose feed is ≥ s */
  private lower (s: string): number {
    let lo = 0
    let hi = this.items.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.items[mid].head.feed < s) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  private end (hi: string | null): number {
    return hi === null ? this.items.length : this.lower(hi)
  }

  /** out = sum of the first k heads' hashes */
  private prefix (k: number, out: Uint32Array): void {
    if (this.dirty) this.rebuild()
    out.fill(0)
    for (let i = k; i > 0; i -= i & -i) {
      for (let l = 0; l < LIMBS; l++) out[l] += this.tree[i * LIMBS + l]
    }
  }

  private rebuild (): void {
    const n = this.items.length
    const t = new Uint32Array((n + 1) * LIMBS)
    for (let i = 1; i <= n; i++) {
      const limbs = this.items[i - 1].limbs
      for (let l = 0; l < LIMBS; l++) t[i * LIMBS + l] += limbs[l]
      const j = i + (i & -i)
      if (j <= n) for (let l = 0; l < LIMBS; l++) t[j * LIMBS + l] += t[i * LIMBS + l]
    }
    this.tree = t
    this.dirty = false
  }
}

/** The peer's side: one reply to one query, from its own index. */
export function answerDigest (index: HeadIndex, q: DigestQuery, opts: ReconcileOptions = {}): DigestReply {
  const fanout = Math.min(MAX_FANOUT, Math.max(2, opts.fanout ?? DEFAULT_FANOUT))
  const leaf = Math.min(MAX_LEAF, Math.max(1, opts.leaf ?? DEFAULT_LEAF))
  const items: DigestItem[] = []
  for (const r of q.ranges) {
    if (fpEqual(index.fingerprint(r.lo, r.hi), r.fp)) continue
    if (index.count(r.lo, r.hi) <= leaf) {
      items.push({ lo: r.lo, hi: r.hi, heads: index.heads(r.lo, r.hi) })
      continue
    }
    const edges: Array<string | null> = [r.lo, ...index.bounds(r.lo, r.hi, fanout), r.hi]
    for (let i = 0; i + 1 < edges.length; i++) {
      const lo = edges[i] as string
      items.push({ lo, hi: edges[i + 1], fp: index.fingerprint(lo, edges[i + 1]) })
    }
  }
  return { t: 'digest', items }
}

interface Range { lo: string, hi: string | null }

const malformed = (why: string): AuditError => new AuditError('MESSAGE_MALFORMED', `digest reply: ${why}`)

/**
 * The requester's side of one repair exchange: first() starts it, next() takes each reply and
 * gives the next query, or undefined when every differing range has been answered with heads.
 * A reply that does not answer the ranges asked about, or does not narrow them, throws
 * MESSAGE_MALFORMED; one past maxRounds or maxOffered throws MESSAGE_TOO_LARGE.
 */
export class Reconciliation {
  readonly offered: Head[] = []
  private queries = 0
  private readonly index: HeadIndex
  private readonly fanout: number
  private readonly leaf: number
  private readonly maxRounds: number
  private readonly maxOffered: number
  /** ranges known to differ, not asked about yet */
  private pending: Range[] = []
  /** the ranges of the last query, sorted */
  private asked: Range[] = []

  constructor (index: HeadIndex, opts: ReconcileOptions = {}) {
    this.index = index
    this.fanout = Math.min(MAX_FANOUT, Math.max(2, opts.fanout ?? MAX_FANOUT))
    this.leaf = Math.min(MAX_LEAF, Math.max(1, opts.leaf ?? MAX_LEAF))
    this.maxRounds = opts.maxRounds ?? 256
    this.maxOffered = opts.maxOffered ?? 65_536
  }

  /** queries made so far */
  get rounds (): number {
    return this.queries
  }

  first (): DigestQuery {
    this.pending = [{ lo: '', hi: null }]
    return this.query()
  }

  next (reply: DigestReply): DigestQuery | undefined {
    let q = 0
    let perRange = 0
    /** where the previous item of the same asked range ended (null: at the end; undefined: none yet) */
    let after: string | null | undefined
    for (const item of reply.items) {
      if (!below(item.lo, item.hi)) throw malformed('an empty range')
      while (q < this.asked.length && !below(item.lo, this.asked[q].hi)) {
        q++
        perRange = 0
        after = undefined
      }
      const range = this.asked[q]
      if (range === undefined || item.lo < range.lo || (range.hi !== null && (item.hi === null || item.hi > range.hi))) throw malformed('a range not asked about')
      if (after === null || (after !== undefined && item.lo < after)) throw malformed('ranges overlap or are out of order')
      after = item.hi
      if (++perRange > this.fanout) throw malformed(`more than ${this.fanout} parts of a range`)
      if ('heads' in item) {
        this.take(item, item.heads)
        continue
      }
      if (item.lo === range.lo && item.hi === range.hi) throw malformed('a range not narrowed')
      if (!fpEqual(this.index.fingerprint(item.lo, item.hi), item.fp)) this.pending.push({ lo: item.lo, hi: item.hi })
    }
    return this.pending.length === 0 ? undefined : this.query()
  }

  private take (range: Range, heads: Head[]): void {
    if (heads.length > this.leaf) throw malformed(`more than ${this.leaf} heads for a range`)
    let last: string | undefined
    for (const h of heads) {
      if (h.feed < range.lo || !below(h.feed, range.hi) || (last !== undefined && h.feed <= last)) throw malformed('heads outside their range or out of order')
      last = h.feed
    }
    if (this.offered.length + heads.length > this.maxOffered) throw new AuditError('MESSAGE_TOO_LARGE', `digest offered more than ${this.maxOffered} heads`)
    this.offered.push(...heads)
  }

  private query (): DigestQuery {
    if (this.queries >= this.maxRounds) throw new AuditError('MESSAGE_TOO_LARGE', `digest reconciliation past ${this.maxRounds} rounds`)
    this.queries++
    this.asked = this.pending.splice(0, MAX_QUERY_RANGES).sort((a, b) => a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0)
    return { t: 'digest', ranges: this.asked.map(r => ({ lo: r.lo, hi: r.hi, fp: this.index.fingerprint(r.lo, r.hi) })) }
  }
}
