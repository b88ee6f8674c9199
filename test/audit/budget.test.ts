// The shared per-peer budget (protocols/budget.ts), on an injected clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BudgetExceeded, PeerBudget } from '../../protocols/budget.js'

function clocked (limits: ConstructorParameters<typeof PeerBudget>[0]['limits'], maxPeers?: number): { budget: PeerBudget, refused: BudgetExceeded[], advance: (ms: number) => void } {
  let t = 0
  const refused: BudgetExceeded[] = []
  const budget = new PeerBudget({ limits, label: 'test input', maxPeers, now: () => t, onExceeded: (e) => { refused.push(e) } })
  return { budget, refused, advance: (ms) => { t += ms } }
}

test('a burst is granted, the next input is refused as over rate, and time refills the bucket', () => {
  const { budget, refused, advance } = clocked({ maxBytes: 100, burst: 3, perSecond: 2 })
  assert.deepEqual([1, 2, 3, 4].map(() => budget.take('p', 10)), [true, true, true, false])
  assert.equal(refused.length, 1)
  assert.equal(refused[0].reason, 'rate')
  assert.equal(refused[0].peer, 'p')
  advance(499)
  assert.equal(budget.take('p'), false, 'under one token after 0.499 s at 2/s')
  advance(1)
  assert.equal(budget.take('p'), true)
  assert.equal(budget.take('q'), true, 'peers have separate buckets')
})

test('hammering while empty neither earns nor costs tokens', () => {
  const { budget, advance } = clocked({ maxBytes: 100, burst: 1, perSecond: 1 })
  assert.equal(budget.take('p'), true)
  for (let i = 0; i < 10; i++) {
    advance(50)
    assert.equal(budget.take('p'), false)
  }
  advance(500)
  assert.equal(budget.take('p'), true, 'one second after the last grant')
})

test('an input over maxBytes is refused as size, and spends nothing', () => {
  const { budget, refused } = clocked({ maxBytes: 100, burst: 1, perSecond: 1 })
  assert.equal(budget.take('p', 101), false)
  assert.equal(refused[0].reason, 'size')
  assert.equal(budget.take('p', 100), true)
})

test('the byte bucket limits volume independently of the input count', () => {
  const { budget, refused, advance } = clocked({ maxBytes: 1000, burst: 100, perSecond: 100, burstBytes: 2000, bytesPerSecond: 1000 })
  assert.equal(budget.take('p', 1000), true)
  assert.equal(budget.take('p', 1000), true)
  assert.equal(budget.take('p', 1), false)
  assert.equal(refused.at(-1)?.reason, 'rate')
  advance(1000)
  assert.equal(budget.take('p', 1000), true)
})

test('the table of peers stays bounded under many peer ids; the least recently seen is forgotten', () => {
  const { budget } = clocked({ maxBytes: 10, burst: 1, perSecond: 1 }, 64)
  assert.equal(budget.take('old'), true)
  assert.equal(budget.take('old'), false)
  for (let i = 0; i < 10_000; i++) budget.take(`peer-${i}`)
  assert.equal(budget.size(), 64)
  assert.equal(budget.take('old'), true, 'evicted, so it restarts full: callers gate on membership first')
  budget.forget('old')
  assert.equal(budget.size(), 63)
})

test('limits that could never admit an input are refused at construction', () => {
  assert.throws(() => new PeerBudget({ limits: { maxBytes: 10, burst: 0, perSecond: 1 }, label: 'x' }), RangeError)
  assert.throws(() => new PeerBudget({ limits: { maxBytes: 10, burst: 1, perSecond: 1, burstBytes: 5, bytesPerSecond: 5 }, label: 'x' }), RangeError)
  assert.throws(() => new PeerBudget({ limits: { maxBytes: 10, burst: 1, perSecond: 1, burstBytes: 50 }, label: 'x' }), RangeError)
})
