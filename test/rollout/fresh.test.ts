// Freshness windows and the release floor (issue 14 feature 7): the schema with its bounds, the
// host's one verdict per release (its own entry, kept across restarts and any later clock), a
// stale host out of the gate and visible in status, the admin floor, and that any delivery order
// of the same entries gives the same answer (fast-check).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { applyEntry, decide, isRolloutError, MIN_FRESH_FOR_MS, parseRelease, parseReleaseFloor, parseReleaseSeen, planRelease, releaseStatus, watchExitCode } from '../../protocols/rollout/index.js'
import type { Decision } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { ADMIN, ADMIN2, PATH_A, StaticMembership, Writer, fold, hostIds, releaseBody, shuffle, rng } from './helpers.js'

const hosts = hostIds(6)
const m = StaticMembership.of(hosts, [ADMIN, ADMIN2])
const DAY = 86_400_000
const SIGNED = 1_000_000_000_000
const noSoak = { healthy: 100, soakMs: 0 }
const body = releaseBody({ freshForMs: 7 * DAY, waves: [{ count: 1, gate: noSoak }, { percent: 100, gate: noSoak }], maxFailures: 0 })
const plan = planRelease(body, m)
const [canary] = plan.waves[0]
const late = plan.waves[1]

function ok (w: Writer, host: string, release = 'r1'): Entry[] {
  const attempt = `${host}-${release}`
  return [w.write(host, 'apply-start', { release, path: PATH_A, wave: 0, attempt }), w.write(host, 'apply-ok', { release, path: PATH_A, healthyAt: 1, attempt })]
}

/** Writes what an attest decision asks for, as the agent does, and returns the next decision. */
function attest (s: ReturnType<typeof fold>, w: Writer, host: string, d: Decision, now: number): Decision {
  assert.equal(d.action, 'attest', JSON.stringify(d))
  if (d.action === 'attest') applyEntry(s, w.write(host, d.kind, d.body, now))
  return decide(s, m, host, now)
}

describe('freshness schema', () => {
  it('accepts a window from MIN_FRESH_FOR_MS up, refuses shorter, fractional or absurd ones with typed errors', () => {
    assert.equal(parseRelease(releaseBody({ freshForMs: MIN_FRESH_FOR_MS })).freshForMs, MIN_FRESH_FOR_MS)
    for (const bad of [MIN_FRESH_FOR_MS - 1, 0, 1.5, -DAY, 11 * 365 * DAY, '7d']) {
      assert.throws(() => parseRelease(releaseBody({ freshForMs: bad as number })), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_INVALID') && /freshForMs/.test((e as Error).message), String(bad))
    }
    assert.ok(parseReleaseSeen({ release: 'r1', stale: true }))
    assert.ok(parseReleaseFloor({ number: 3, reason: 'r1 and r2 carry the broken kernel' }))
    const bad: Array<[() => unknown, string]> = [
      [() => parseReleaseSeen({ release: 'r1' }), 'ROLLOUT_BODY_INVALID'],
      [() => parseReleaseSeen({ release: 'r 1', stale: false }), 'ROLLOUT_BODY_INVALID'],
      [() => parseReleaseFloor({ number: 0, reason: 'x' }), 'ROLLOUT_BODY_INVALID'],
      [() => parseReleaseFloor({ number: 2 }), 'ROLLOUT_BODY_INVALID'],
      [() => parseReleaseFloor({ number: 2, reason: 'x'.repeat(1025) }), 'ROLLOUT_BODY_TOO_LARGE']
    ]
    for (const [f, code] of bad) assert.throws(f, (err: unknown) => isRolloutError(err, code as 'ROLLOUT_BODY_INVALID'), String(f))
  })
})

describe('freshness', () => {
  it('a host that first decides on the release within its window attests fresh, then applies', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, SIGNED)])
    const now = SIGNED + 6 * DAY
    const d = decide(s, m, canary, now)
    assert.deepEqual(d.action === 'attest' && [d.kind, d.body], ['release-seen', { release: 'r1', stale: false }])
    assert.equal(attest(s, w, canary, d, now).action, 'apply')
  })

  it('a host that first decides on it after its window refuses it: out of the gate, neither pending nor failed, listed stale', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, SIGNED), ...ok(w, canary)])
    const [back, ...rest] = late
    const now = SIGNED + 8 * DAY
    const d = attest(s, w, back, decide(s, m, back, now), now)
    assert.equal(d.action, 'none')
    assert.match(d.action === 'none' ? d.reason : '', /stale: this host first held it after its freshness window/)
    for (const h of rest) {
      const v = decide(s, m, h, SIGNED + DAY)
      assert.equal(attest(s, w, h, v, SIGNED + DAY).action, 'apply')
      for (const e of ok(w, h)) applyEntry(s, e)
    }
    const st = releaseStatus(s, m, 'r1')
    assert.deepEqual(st?.staleHosts, [back])
    assert.equal(st?.waves[1].stale, 1)
    assert.equal(st?.waves[1].pending, 0)
    assert.equal(st?.failed, 0)
    assert.equal(st?.state, 'done', 'the release completes without the stale host')
    assert.equal(decide(s, m, back, now).action, 'none', 'and it never applies it')
  })

  it('the first verdict is kept: a host that waited past the window (or restarted) still applies once its wave opens', () => {
    const w = new Writer()
    const log = [w.write(ADMIN, 'release', body, SIGNED)]
    const s = fold(log)
    const h = late[0]
    const d = decide(s, m, h, SIGNED + DAY)
    assert.ok(d.action === 'attest' && d.kind === 'release-seen')
    log.push(w.write(h, d.kind, d.body, SIGNED + DAY))
    applyEntry(s, log[1])
    assert.equal(decide(s, m, h, SIGNED + DAY).action, 'wait', 'its wave waits for the canary')
    // a restart folds the same log: the verdict is its own entry, not a memory
    const again = fold(log)
    for (const e of ok(w, canary)) { applyEntry(s, e); applyEntry(again, e) }
    assert.equal(decide(s, m, h, SIGNED + 30 * DAY).action, 'apply')
    assert.equal(decide(again, m, h, SIGNED + 30 * DAY).action, 'apply')
  })

  it('the verdict is made when the host first learns of it, whatever holds it then: a pin, or a release it waits for', () => {
    const w = new Writer()
    const h = late[0]
    const pin = w.write(ADMIN, 'pin', { host: h, path: '/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-system-b', reason: 'hold' })
    const s = fold([w.write(ADMIN, 'release', body, SIGNED), ...ok(w, canary), pin])
    const d = decide(s, m, h, SIGNED + DAY)
    assert.deepEqual(d.action === 'attest' && d.body, { release: 'r1', stale: false }, 'pinned, it still judges the release it learned of')
    assert.equal(attest(s, w, h, d, SIGNED + DAY).action, 'none', 'and then holds its generation')
    applyEntry(s, w.write(ADMIN, 'unpin', { host: h, lifts: [`${ADMIN}:${pin.seq}`] }))
    assert.equal(decide(s, m, h, SIGNED + 30 * DAY).action, 'apply', 'unpinned after the window, it applies what it learned of in time')
    const t = fold([w.write(ADMIN, 'release', { ...body, id: 'r0', number: 1, freshForMs: undefined, waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }] }, SIGNED),
      w.write(ADMIN, 'release', { ...body, id: 'r2', number: 2, after: 'r0' }, SIGNED)])
    const e = decide(t, m, h, SIGNED + DAY)
    assert.deepEqual(e.action === 'attest' && e.body, { release: 'r2', stale: false }, 'a release waiting for another is judged when first learned of, not when it becomes active')
  })

  it('only the host\'s own first verdict counts, whatever a later one or another host says', () => {
    const w = new Writer()
    const h = late[0]
    const s = fold([w.write(ADMIN, 'release', body, SIGNED), ...ok(w, canary),
      w.write(h, 'release-seen', { release: 'r1', stale: false }, SIGNED + DAY),
      w.write(h, 'release-seen', { release: 'r1', stale: true }, SIGNED + 9 * DAY),
      w.write(late[1], 'release-seen', { release: 'r1', stale: false }, SIGNED + 9 * DAY)])
    assert.equal(decide(s, m, h, SIGNED + 9 * DAY).action, 'apply')
    assert.deepEqual(releaseStatus(s, m, 'r1')?.staleHosts, [])
  })

  it('a release without a window is never judged: no verdict entry, whatever the clock says', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', { ...body, freshForMs: undefined }, SIGNED)])
    assert.equal(decide(s, m, canary, SIGNED + 365 * DAY).action, 'apply')
  })

  it('any delivery order of the same entries gives the same stale hosts and decisions', () => {
    const w = new Writer()
    const entries = [w.write(ADMIN, 'release', body, SIGNED), ...ok(w, canary),
      w.write(late[0], 'release-seen', { release: 'r1', stale: true }, SIGNED + 9 * DAY),
      w.write(late[1], 'release-seen', { release: 'r1', stale: false }, SIGNED + DAY),
      w.write(late[1], 'release-seen', { release: 'r1', stale: true }, SIGNED + 9 * DAY),
      w.write(late[2], 'release-seen', { release: 'r1', stale: false }, SIGNED + DAY), ...ok(w, late[2])]
    const expected = releaseStatus(fold(entries), m, 'r1')
    assert.deepEqual(expected?.staleHosts, [late[0]])
    fc.assert(fc.property(fc.integer(), (seed) => {
      const s = fold(shuffle(entries, rng(seed)))
      assert.deepEqual(releaseStatus(s, m, 'r1'), expected)
      for (const h of hosts) assert.deepEqual(decide(s, m, h, SIGNED + 9 * DAY).action, decide(fold(entries), m, h, SIGNED + 9 * DAY).action)
    }), { numRuns: 50 })
  })
})

describe('release floor', () => {
  const r1 = releaseBody({ id: 'r1', number: 1, waves: [{ percent: 100, gate: noSoak }] })
  const r2 = releaseBody({ id: 'r2', number: 2, waves: [{ percent: 100, gate: noSoak }] })

  it('an admin floor refuses every release numbered below it, on every host; status says why', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', r1), w.write(ADMIN, 'release-floor', { number: 2, reason: 'r1 carries the broken kernel' })])
    for (const h of hosts) assert.notEqual(decide(s, m, h, 0).action, 'apply', h)
    const st = releaseStatus(s, m, 'r1')
    assert.equal(st?.state, 'refused')
    assert.match(st?.reason ?? '', /below the release floor #2 set by AdminA: r1 carries the broken kernel/)
    assert.equal(watchExitCode('refused'), 7)
    applyEntry(s, w.write(ADMIN, 'release', r2))
    assert.equal(decide(s, m, hosts[0], 0).action, 'apply', 'a release at the floor is applied')
  })

  it('a floor not signed by an admin refuses nothing; the highest counted floor wins', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', r1), w.write(ADMIN, 'release', r2), w.write(hosts[0], 'release-floor', { number: 3, reason: 'mine' })])
    assert.equal(decide(s, m, hosts[1], 0).action, 'apply')
    applyEntry(s, w.write(ADMIN2, 'release-floor', { number: 2, reason: 'a' }))
    applyEntry(s, w.write(ADMIN, 'release-floor', { number: 1, reason: 'b' }))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'refused')
    assert.notEqual(releaseStatus(s, m, 'r2')?.state, 'refused')
  })
})
