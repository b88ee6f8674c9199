import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PairingBudget } from '../../protocols/pairing/index.js'

function clocked (perAddress: { burst: number, perMinute: number }, overall: { burst: number, perMinute: number }): { budget: PairingBudget, at: (ms: number) => void } {
  let now = 1_000_000
  return { budget: new PairingBudget({ perAddress, overall }, { now: () => now }), at: (ms) => { now = 1_000_000 + ms } }
}

test('a burst per address, then one attempt per refill interval', () => {
  const { budget, at } = clocked({ burst: 3, perMinute: 6 }, { burst: 1000, perMinute: 1000 })
  assert.deepEqual([1, 2, 3, 4].map(() => budget.take('10.0.0.1')), [true, true, true, false])
  assert.equal(budget.take('10.0.0.2'), true, 'another address has its own bucket')
  at(9_999)
  assert.equal(budget.take('10.0.0.1'), false, 'not refilled yet: 6 per minute is one per 10 s')
  at(10_000)
  assert.equal(budget.take('10.0.0.1'), true)
  assert.equal(budget.take('10.0.0.1'), false)
  at(3_600_000)
  // Refills never exceed the burst, however long the address stayed away.
  assert.deepEqual([1, 2, 3, 4].map(() => budget.take('10.0.0.1')), [true, true, true, false])
})

test('many addresses share one overall budget: fresh addresses do not buy fresh attempts', () => {
  const { budget, at } = clocked({ burst: 5, perMinute: 10 }, { burst: 10, perMinute: 60 })
  const granted = Array.from({ length: 1000 }, (_, i) => budget.take(`2001:db8::${i.toString(16)}`)).filter(Boolean).length
  assert.equal(granted, 10)
  at(1_000)
  assert.equal(budget.take('2001:db8::ffff'), true, 'one attempt a second comes back')
  assert.equal(budget.take('2001:db8::fffe'), false)
})

test('hammering while refused does not earn tokens', () => {
  const { budget, at } = clocked({ burst: 1, perMinute: 6 }, { burst: 1000, perMinute: 1000 })
  assert.equal(budget.take('a'), true)
  for (let t = 1000; t < 10_000; t += 1000) {
    at(t)
    assert.equal(budget.take('a'), false)
  }
  at(10_000)
  assert.equal(budget.take('a'), true)
})
