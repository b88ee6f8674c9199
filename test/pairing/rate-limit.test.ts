import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RateLimiter } from '../../protocols/pairing/index.js'

test('a burst per address, then one attempt per refill interval', () => {
  const limiter = new RateLimiter({ burst: 3, perMinute: 6 })
  const t0 = 1_000_000
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('10.0.0.1', t0)), [true, true, true, false])
  assert.equal(limiter.take('10.0.0.2', t0), true, 'another address has its own bucket')
  assert.equal(limiter.take('10.0.0.1', t0 + 9_999), false, 'not refilled yet: 6 per minute is one per 10 s')
  assert.equal(limiter.take('10.0.0.1', t0 + 10_000), true)
  assert.equal(limiter.take('10.0.0.1', t0 + 10_000), false)
  // Refills never exceed the burst, however long the address stayed away.
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('10.0.0.1', t0 + 3_600_000)), [true, true, true, false])
})

test('hammering while refused does not earn tokens', () => {
  const limiter = new RateLimiter({ burst: 1, perMinute: 6 })
  assert.equal(limiter.take('a', 0), true)
  for (let t = 1000; t < 10_000; t += 1000) assert.equal(limiter.take('a', t), false)
  assert.equal(limiter.take('a', 10_000), true)
})

test('the table of addresses stays bounded: full buckets are forgotten', () => {
  const limiter = new RateLimiter({ burst: 2, perMinute: 60 })
  for (let i = 0; i < 10_001; i++) limiter.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 0)
  // An hour later every bucket is full again; the next insertion past the cap prunes them.
  for (let i = 0; i < 10_001; i++) limiter.take(`11.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 3_600_000)
  const buckets = (limiter as unknown as { buckets: Map<string, unknown> }).buckets
  assert.equal(buckets.has('10.0.0.0'), false, 'the refilled buckets of the first wave are gone')
  assert.equal(buckets.size, 10_001)
})
