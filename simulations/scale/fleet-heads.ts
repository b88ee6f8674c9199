// Every simulated host's head vector, without materialising N vectors of N heads: one shared
// table of the newest head of every feed (FleetHeads, sorted by feed, with a Fenwick tree of
// reconcile.ts's per-head hash limbs, updated in O(log N) per new head) and, per host, the few
// feeds where it holds an older head than that (HostView's overrides: an announcement still on
// its way, or lost). A HostView is a HeadIndex, so protocols/audit/reconcile.ts's Reconciliation
// and answerDigest run on it unchanged; its fingerprint is the shared range sum corrected by its
// overrides, fed to the same fingerprintOf as SortedHeads, so both give the same bytes.
import { fingerprintOf, headHash, splitBounds, type HeadIndex } from '../../protocols/audit/reconcile.js'
import type { Head } from '../../protocols/audit/types.js'

const LIMBS = 8

export class FleetHeads {
  /** feed ids, sorted */
  readonly feeds: string[]
  readonly heads: Head[]
  private readonly limbs: Uint32Array
  private readonly tree: Uint32Array
  private readonly scratch = new Uint32Array(LIMBS)

  constructor (heads: Head[]) {
    this.heads = [...heads].sort((a, b) => a.feed < b.feed ? -1 : a.feed > b.feed ? 1 : 0)
    this.feeds = this.heads.map(h => h.feed)
    const n = this.heads.length
    this.limbs = new Uint32Array(n * LIMBS)
    this.tree = new Uint32Array((n + 1) * LIMBS)
    this.heads.forEach((h, i) => { this.add(i, headHash(h)) })
  }

  get size (): number {
    return this.heads.length
  }

  /** index of the first feed ≥ s */
  lower (s: string): number {
    let lo = 0
    let hi = this.feeds.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.feeds[mid] < s) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  end (hi: string | null): number {
    return hi === null ? this.feeds.length : this.lower(hi)
  }

  limbsAt (i: number): Uint32Array {
    return this.limbs.subarray(i * LIMBS, (i + 1) * LIMBS)
  }

  /** The feed at index i has a new newest head. */
  set (i: number, h: Head): void {
    if (h.feed !== this.feeds[i]) throw new Error(`head of ${h.feed} set at the index of ${this.feeds[i]}`)
    const next = headHash(h)
    const old = this.limbsAt(i)
    for (let l = 0; l < LIMBS; l++) this.scratch[l] = next[l] - old[l]
    this.heads[i] = h
    this.add(i, this.scratch)
  }

  /** out = the limb sum of heads [from, to) */
  sum (from: number, to: number, out: Uint32Array): void {
    out.fill(0)
    for (let k = to; k > 0; k -= k & -k) for (let l = 0; l < LIMBS; l++) out[l] += this.tree[k * LIMBS + l]
    for (let k = from; k > 0; k -= k & -k) for (let l = 0; l < LIMBS; l++) out[l] -= this.tree[k * LIMBS + l]
  }

  private add (i: number, delta: Uint32Array): void {
    for (let l = 0; l < LIMBS; l++) this.limbs[i * LIMBS + l] += delta[l]
    for (let k = i + 1; k <= this.heads.length; k += k & -k) for (let l = 0; l < LIMBS; l++) this.tree[k * LIMBS + l] += delta[l]
  }
}

/** A head a host holds instead of the newest, with its hash limbs (shared by every host holding it). */
export interface Held { head: Head, limbs: Uint32Array }

export function held (head: Head): Held {
  return { head, limbs: headHash(head) }
}

/** One host's heads: the shared newest heads, except where it holds an older one. */
export class HostView implements HeadIndex {
  /** feed index → the head this host holds there, when older than the newest */
  readonly behind = new Map<number, Held>()
  private readonly sumBuf = new Uint32Array(LIMBS)

  constructor (private readonly fleet: FleetHeads) {}

  /** The head this host holds of feed index i. */
  headAt (i: number): Head {
    return this.behind.get(i)?.head ?? this.fleet.heads[i]
  }

  count (lo: string, hi: string | null): number {
    return Math.max(0, this.fleet.end(hi) - this.fleet.lower(lo))
  }

  fingerprint (lo: string, hi: string | null): Uint8Array {
    const from = this.fleet.lower(lo)
    const to = Math.max(from, this.fleet.end(hi))
    const s = this.sumBuf
    this.fleet.sum(from, to, s)
    for (const [i, h] of this.behind) {
      if (i < from || i >= to) continue
      const newest = this.fleet.limbsAt(i)
      for (let l = 0; l < LIMBS; l++) s[l] += h.limbs[l] - newest[l]
    }
    return fingerprintOf(s, to - from)
  }

  heads (lo: string, hi: string | null): Head[] {
    const from = this.fleet.lower(lo)
    const to = this.fleet.end(hi)
    const out: Head[] = []
    for (let i = from; i < to; i++) out.push(this.headAt(i))
    return out
  }

  /** Split points by the rule every HeadIndex follows (splitBounds), so ranges line up with a real host's. */
  bounds (lo: string, hi: string | null, parts: number): string[] {
    const from = this.fleet.lower(lo)
    const feeds = this.fleet.feeds
    return splitBounds(i => feeds[i], from, this.fleet.end(hi) - from, parts)
  }
}
