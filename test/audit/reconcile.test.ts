// Digest reconciliation of head vectors (protocols/audit/reconcile.ts), pure: random pairs of head
// vectors reconciled through the real answerDigest, the wire codec in between, and replies from
// a peer that lies about ranges. Reproducible: PROPERTY_SEED=N replays a run.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { AuditError } from '../../protocols/audit/errors.js'
import {
  Reconciliation, SortedHeads, answerDigest, MAX_QUERY_RANGES, type DigestQuery, type DigestReply, type HeadIndex, type ReconcileOptions
} from '../../protocols/audit/reconcile.js'
import { decodeFrame, decodeRequest, encodeFrame, encodeRequest } from '../../protocols/audit/wire.js'
import type { Head } from '../../protocols/audit/types.js'

const SEED = Number(process.env.PROPERTY_SEED ?? 1)
const RUNS = Number(process.env.PROPERTY_RUNS ?? 100)
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** A base58 feed id from a number, with the long shared prefix of peer ids. */
function feedOf (n: number, width = 8): string {
  let s = ''
  for (let i = 0; i < width; i++, n = Math.floor(n / 58)) s = B58[n % 58] + s
  return '12D3KooW' + s
}

function hashOf (n: number): Uint8Array {
  const h = new Uint8Array(32)
  new DataView(h.buffer).setUint32(0, n)
  return h
}

/** Feed ids with long shared prefixes, like peer ids ("12D3KooW…"). */
const feedArb = fc.tuple(fc.constantFrom('12D3KooW', '12D3KooWA', '12D3KooWAb'), fc.array(fc.constantFrom(...B58), { minLength: 1, maxLength: 6 }))
  .map(([p, cs]) => p + cs.join(''))
const headArb = fc.record({ feed: feedArb, seq: fc.nat({ max: 5 }), h: fc.nat({ max: 3 }) }).map(x => ({ feed: x.feed, seq: x.seq, hash: hashOf(x.h) }))
/** A shared base, then each side's own changes: updated, added or missing heads. */
const pairArb = fc.record({ base: fc.array(headArb, { maxLength: 300 }), a: fc.array(headArb, { maxLength: 40 }), b: fc.array(headArb, { maxLength: 40 }), dropA: fc.array(fc.nat(), { maxLength: 10 }), dropB: fc.array(fc.nat(), { maxLength: 10 }) })
const optsArb = fc.constantFrom<ReconcileOptions>({}, { fanout: 2, leaf: 1 }, { fanout: 4, leaf: 3 }, { fanout: 16, leaf: 1 })

function byFeed (heads: Iterable<Head>): Map<string, Head> {
  return new Map([...heads].map(h => [h.feed, h]))
}

function build (base: Head[], own: Head[], drop: number[]): Map<string, Head> {
  const m = byFeed([...base, ...own])
  const feeds = [...m.keys()]
  for (const d of drop) if (feeds.length > 0) m.delete(feeds[d % feeds.length])
  return m
}

/** Runs one exchange through the wire encoders; returns the requester's state and the bytes both ways. */
function reconcile (a: HeadIndex, b: HeadIndex, opts: ReconcileOptions = {}): { r: Reconciliation, bytes: number } {
  const r = new Reconciliation(a, opts)
  let q: DigestQuery | undefined = r.first()
  let bytes = 0
  while (q !== undefined) {
    const req = encodeRequest(q)
    const decoded = decodeRequest(req)
    assert.ok(decoded.t === 'digest')
    const frame = encodeFrame(answerDigest(b, decoded, opts))
    bytes += req.length + frame.length
    q = r.next(decodeFrame(frame, 1 << 20) as DigestReply)
  }
  return { r, bytes }
}

const same = (x: Head | undefined, y: Head): boolean => x !== undefined && x.seq === y.seq && Buffer.from(x.hash).equals(y.hash)

describe('digest reconciliation', () => {
  it('the requester is offered every head where the two vectors differ, and only the peer\'s heads', () => {
    fc.assert(fc.property(pairArb, optsArb, ({ base, a, b, dropA, dropB }, opts) => {
      const mineMap = build(base, a, dropA)
      const theirs = build(base, b, dropB)
      const { r } = reconcile(new SortedHeads(mineMap.values()), new SortedHeads(theirs.values()), opts)
      const offered = byFeed(r.offered)
      assert.equal(offered.size, r.offered.length, 'no head offered twice')
      for (const h of theirs.values()) {
        if (!same(mineMap.get(h.feed), h)) assert.ok(same(offered.get(h.feed), h), `offered ${h.feed}`)
      }
      for (const h of r.offered) assert.ok(same(theirs.get(h.feed), h), 'an offered head is the peer\'s')
    }), { seed: SEED, numRuns: RUNS })
  })

  it('two equal vectors finish in one round, built in any order', () => {
    fc.assert(fc.property(fc.array(headArb, { maxLength: 300 }), optsArb, (heads, opts) => {
      const m = byFeed(heads)
      const mine = new SortedHeads(m.values())
      const theirs = new SortedHeads([...m.values()].reverse())
      const r = new Reconciliation(mine, opts)
      const reply = answerDigest(theirs, r.first(), opts)
      assert.deepEqual(reply.items, [])
      assert.equal(r.next(reply), undefined)
      assert.equal(r.rounds, 1)
      assert.deepEqual(r.offered, [])
    }), { seed: SEED, numRuns: RUNS })
  })

  it('keeps fingerprints right as heads are updated, added and deleted after they were computed', () => {
    fc.assert(fc.property(fc.array(headArb, { maxLength: 100 }), fc.array(fc.oneof(headArb, feedArb), { maxLength: 30 }), (start, ops) => {
      const live = new SortedHeads(start)
      const m = byFeed(start)
      live.fingerprint('', null)
      for (const op of ops) {
        if (typeof op === 'string') {
          live.delete(op)
          m.delete(op)
        } else {
          live.set(op)
          m.set(op.feed, op)
        }
        const fresh = new SortedHeads(m.values())
        assert.deepEqual(live.fingerprint('', null), fresh.fingerprint('', null))
        assert.deepEqual(live.fingerprint('12D3KooWA', '12D3KooWB'), fresh.fingerprint('12D3KooWA', '12D3KooWB'))
      }
    }), { seed: SEED, numRuns: RUNS })
  })

  it('splits by count into short bounds strictly inside the range', () => {
    const heads = Array.from({ length: 1000 }, (_, i) => ({ feed: feedOf(i * 7919, 6), seq: 0, hash: hashOf(i) }))
    const index = new SortedHeads(heads)
    const bounds = index.bounds('', null, 16)
    assert.equal(bounds.length, 15)
    const edges = ['', ...bounds]
    for (let i = 0; i < bounds.length; i++) {
      assert.ok(edges[i] < bounds[i])
      assert.ok(bounds[i].length < 16, 'a bound is a short prefix')
      const n = index.count(bounds[i], bounds[i + 1] ?? null)
      assert.ok(n >= 62 && n <= 63, `part of ${n} feeds`)
    }
  })

  it('an up-to-date repair costs the same few bytes with 5 or 5000 feeds', () => {
    const costs = [5, 5000].map(n => {
      const heads = Array.from({ length: n }, (_, i) => ({ feed: feedOf(i), seq: i, hash: hashOf(i) }))
      return reconcile(new SortedHeads(heads), new SortedHeads(heads)).bytes
    })
    assert.equal(costs[0], costs[1])
    assert.ok(costs[0] < 100, `${costs[0]} bytes`)
  })

  it('one changed feed among 5000 costs a few rounds and a few kilobytes', () => {
    const heads = Array.from({ length: 5000 }, (_, i) => ({ feed: feedOf(i), seq: i, hash: hashOf(i) }))
    const theirs = new SortedHeads(heads)
    theirs.set({ ...heads[1234], seq: heads[1234].seq + 1 })
    const { r, bytes } = reconcile(new SortedHeads(heads), theirs)
    assert.ok(r.offered.some(h => h.feed === heads[1234].feed && h.seq === heads[1234].seq + 1))
    assert.ok(r.offered.length <= 32)
    assert.ok(r.rounds <= 4, `${r.rounds} rounds`)
    assert.ok(bytes < 8000, `${bytes} bytes`)
  })

  it('a requester with nothing learns a large vector through queries of bounded size', () => {
    const heads = Array.from({ length: 20_000 }, (_, i) => ({ feed: feedOf(i), seq: 1, hash: hashOf(i) }))
    const theirs = new SortedHeads(heads)
    const r = new Reconciliation(new SortedHeads())
    let q: DigestQuery | undefined = r.first()
    while (q !== undefined) {
      assert.ok(q.ranges.length <= MAX_QUERY_RANGES)
      q = r.next(answerDigest(theirs, q))
    }
    assert.equal(r.offered.length, heads.length)
  })

  describe('refuses replies that do not answer the query', () => {
    const mine = new SortedHeads([{ feed: '12D3KooWa', seq: 0, hash: hashOf(0) }])
    const theirs = new SortedHeads(Array.from({ length: 100 }, (_, i) => ({ feed: feedOf(i) + 'b', seq: 0, hash: hashOf(i) })))
    const fp = new Uint8Array(16)
    const h = (feed: string): Head => ({ feed, seq: 0, hash: hashOf(1) })
    const cases: Array<[string, DigestReply['items'], string]> = [
      ['a range not narrowed, which could go on for ever', [{ lo: '', hi: null, fp }], 'MESSAGE_MALFORMED'],
      ['an empty range', [{ lo: 'b', hi: 'a', fp }], 'MESSAGE_MALFORMED'],
      ['ranges out of order', [{ lo: 'b', hi: 'c', fp }, { lo: 'a', hi: 'b', fp }], 'MESSAGE_MALFORMED'],
      ['overlapping ranges', [{ lo: 'a', hi: 'c', fp }, { lo: 'b', hi: 'd', fp }], 'MESSAGE_MALFORMED'],
      ['a part after one that ran to the end', [{ lo: 'a', hi: null, fp }, { lo: 'b', hi: 'c', fp }], 'MESSAGE_MALFORMED'],
      ['more parts than the fanout', Array.from({ length: 17 }, (_, i) => ({ lo: `a${feedOf(i, 2)}`, hi: `a${feedOf(i + 1, 2)}`, fp })), 'MESSAGE_MALFORMED'],
      ['heads outside their range', [{ lo: 'a', hi: 'b', heads: [h('c')] }], 'MESSAGE_MALFORMED'],
      ['heads out of order', [{ lo: '', hi: null, heads: [h('b'), h('a')] }], 'MESSAGE_MALFORMED'],
      ['more heads than the leaf size', [{ lo: '', hi: null, heads: Array.from({ length: 33 }, (_, i) => h(`a${feedOf(i, 2)}`)) }], 'MESSAGE_MALFORMED']
    ]
    for (const [what, items, code] of cases) {
      it(what, () => {
        const r = new Reconciliation(mine)
        r.first()
        assert.throws(() => r.next({ t: 'digest', items }), (err: unknown) => err instanceof AuditError && err.code === code)
      })
    }

    it('a range outside the one asked about', () => {
      const r = new Reconciliation(mine)
      const q = r.first()
      const reply = answerDigest(theirs, q)
      const sub = reply.items.find(i => 'fp' in i && i.hi !== null) as { lo: string, hi: string, fp: Uint8Array }
      assert.ok(sub !== undefined)
      const q2 = r.next(reply)
      assert.ok(q2 !== undefined)
      // asked about some sub-ranges only: an answer for the whole vector is not one of them
      assert.throws(() => r.next({ t: 'digest', items: [{ lo: '', hi: null, heads: [] }] }), (err: unknown) => err instanceof AuditError && err.code === 'MESSAGE_MALFORMED')
    })

    it('a peer that keeps splitting is given up on after maxRounds', () => {
      const r = new Reconciliation(mine, { maxRounds: 3 })
      let q: DigestQuery | undefined = r.first()
      assert.throws(() => {
        while (q !== undefined) {
          // always narrower, never an answer: one more character each round
          q = r.next({ t: 'digest', items: [{ lo: q.ranges[0].lo + 'a', hi: null, fp }] })
        }
      }, (err: unknown) => err instanceof AuditError && err.code === 'MESSAGE_TOO_LARGE')
    })

    it('a peer that offers more heads than maxOffered', () => {
      const r = new Reconciliation(mine, { maxOffered: 10 })
      let q: ReturnType<Reconciliation['next']> = r.first()
      assert.throws(() => {
        while (q !== undefined) q = r.next(answerDigest(theirs, q))
      }, (err: unknown) => err instanceof AuditError && err.code === 'MESSAGE_TOO_LARGE')
    })
  })
})
