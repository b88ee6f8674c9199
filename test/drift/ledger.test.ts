// The pure parts of drift: what differs, the generation a host's own log says it runs, the
// entry schema's bounds, and the ledger that keeps drift from flooding the log.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DriftError, findDrift, foldDesired, parseDrift, type DriftBody } from '../../protocols/drift/index.js'
import { DriftLedger, MAX_PER_WINDOW, WINDOW_MS } from '../../node/drift/ledger.js'

const P1 = '/nix/store/00000000000000000000000000000001-system-1'
const P2 = '/nix/store/00000000000000000000000000000002-system-2'

test('findDrift holds the activated system and the profile to the log, or the link to the profile without one', () => {
  assert.deepEqual(findDrift({ activated: P1, profile: P1, desired: P1, modifiedCount: 0 }), [])
  assert.deepEqual(findDrift({ activated: P1, profile: P2, desired: P1, modifiedCount: 0 }), ['profile'])
  assert.deepEqual(findDrift({ activated: P2, profile: P1, desired: P1, modifiedCount: 0 }), ['activation'])
  assert.deepEqual(findDrift({ activated: P2, profile: P2, desired: P1, modifiedCount: 2 }), ['activation', 'profile', 'store'])
  assert.deepEqual(findDrift({ activated: P2, profile: P1, desired: null, modifiedCount: null }), ['activation'])
  assert.deepEqual(findDrift({ activated: null, profile: P1, desired: null, modifiedCount: null }), [], 'no link, no log: nothing to hold anything to')
  assert.deepEqual(findDrift({ activated: null, profile: null, desired: P1, modifiedCount: null }), ['profile'])
})

test('the desired generation is the newest own entry that ends on one, by seq, whatever the delivery order', () => {
  const entries = [
    { kind: 'apply-ok', seq: 3, body: { release: 'r1', path: P1 } },
    { kind: 'apply-start', seq: 4, body: { release: 'r2', path: P2 } },
    { kind: 'apply-failed', seq: 5, body: { release: 'r2', path: P2 } },
    { kind: 'rollback', seq: 6, body: { release: 'r2', from: P2, to: P1, ok: false } },
    { kind: 'local-apply', seq: 7, body: { path: P2, phase: 'start' } }
  ]
  for (const order of [entries, [...entries].reverse()]) {
    assert.deepEqual(order.reduce(foldDesired, null), { path: P1, kind: 'apply-ok', seq: 3 })
  }
  assert.equal(foldDesired(null, { kind: 'local-apply', seq: 8, body: { path: P2, phase: 'end', status: 'ok' } })?.path, P2)
  assert.equal(foldDesired(null, { kind: 'rollback', seq: 8, body: { from: P2, to: P1, ok: true } })?.path, P1)
  assert.equal(foldDesired(null, { kind: 'local-rollback', seq: 8, body: { from: P2, to: P1 } })?.path, P1)
})

test('drift bodies: bounded, typed errors for what breaks the schema', () => {
  const ok: DriftBody = { v: 1, state: 'detected', what: ['profile', 'store'], profile: P2, desired: P1, modified: [P1], modifiedCount: 1 }
  assert.equal(parseDrift(ok), ok)
  const bad = (body: unknown, code: DriftError['code']): void => {
    assert.throws(() => parseDrift(body), (err: DriftError) => err instanceof DriftError && err.code === code, JSON.stringify(body).slice(0, 200))
  }
  bad({ ...ok, what: ['store', 'profile'] }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, what: ['profile', 'profile'] }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, what: [] }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, state: 'cleared' }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, outcome: 'ok' }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, state: 'repair' }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, profile: '/etc/passwd' }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, activated: 'relative/link' }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, activated: '/tmp/a\nb' }, 'DRIFT_BODY_INVALID')
  bad({ ...ok, activated: `/${'x'.repeat(2000)}` }, 'DRIFT_BODY_TOO_LARGE')
  bad({ ...ok, modified: Array(17).fill(P1) }, 'DRIFT_BODY_TOO_LARGE')
  bad({ ...ok, reason: 'r'.repeat(1001) }, 'DRIFT_BODY_TOO_LARGE')
  bad({ ...ok, v: 2 }, 'DRIFT_BODY_INVALID')
  bad(null, 'DRIFT_BODY_INVALID')
})

test('the ledger writes a drift once, again only when it changes, a clear once, and no more than its quota an hour', () => {
  let now = 1_000_000_000
  const ledger = new DriftLedger(() => now)
  const found: DriftBody = { v: 1, state: 'detected', what: ['profile'], profile: P2, desired: P1 }
  const clean: DriftBody = { v: 1, state: 'detected', what: [], profile: P1, desired: P1 }
  let seq = 0
  const write = (body: DriftBody): void => { ledger.note(++seq, now, body) }
  assert.equal(ledger.next(clean), null, 'nothing open, nothing found: nothing to write')
  assert.equal(ledger.next(found), 'detected')
  write(found)
  assert.equal(ledger.next(found), null, 'the same drift is not written twice')
  ledger.note(seq, now, found) // a restart folding the same entry again changes nothing
  assert.equal(ledger.next({ ...found, profile: P1, activated: P2, what: ['activation'] }), 'detected', 'a different drift is')
  assert.equal(ledger.repaired(found), false)
  write({ ...found, state: 'repair', outcome: 'failed' })
  assert.equal(ledger.repaired(found), true, 'one repair per drift')
  assert.equal(ledger.next(found), null, 'a failed repair leaves the drift reported')
  assert.equal(ledger.next(clean), 'cleared')
  write({ ...clean, state: 'cleared' })
  assert.equal(ledger.next(clean), null)

  // A link flipped back and forth: the quota holds, and the window moves on.
  while (ledger.allowed()) write(seq % 2 === 0 ? found : { ...clean, state: 'cleared' })
  assert.equal(seq, MAX_PER_WINDOW)
  now += WINDOW_MS
  assert.equal(ledger.allowed(), true)
})
