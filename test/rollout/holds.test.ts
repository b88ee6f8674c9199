// Pins and quarantine (issue 14 features 3 and 4): the schema with its bounds, the pure
// decisions every host takes from them, the status operators read, and that any delivery order
// of the same entries gives the same answer (fast-check).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { applyEntry, decide, emptyState, holdsStatus, isRolloutError, parsePin, parseQuarantine, parseQuarantineClear, parseUnpin, planRelease, releaseStatus } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { ADMIN, ADMIN2, PATH_A, PATH_B, StaticMembership, Writer, fold, hostIds, releaseBody, shuffle, rng } from './helpers.js'

const hosts = hostIds(8)
const m = StaticMembership.of(hosts, [ADMIN, ADMIN2])
const PATH_C = '/nix/store/c0123456789abcdfghijklmnpqrsvwxy-system-c'

const noSoak = { healthy: 100, soakMs: 0 }

function ok (w: Writer, host: string, release: string, path = PATH_A): Entry[] {
  const attempt = `${host}-${release}`
  return [w.write(host, 'apply-start', { release, path, wave: 0, attempt }), w.write(host, 'apply-ok', { release, path, healthyAt: 1, attempt })]
}

/** apply-failed and rollback of one attempt: a failure after activation */
function brokeAfterActivation (w: Writer, host: string, release: string, path = PATH_A): Entry[] {
  const attempt = `${host}-${release}`
  return [w.write(host, 'apply-start', { release, path, wave: 0, attempt }),
    w.write(host, 'apply-failed', { release, path, reason: 'unit web failed', check: 'web', attempt }),
    w.write(host, 'rollback', { release, from: path, to: PATH_B, ok: true, attempt })]
}

describe('hold schemas', () => {
  it('accept well-formed bodies and refuse malformed or oversize ones with typed errors', () => {
    assert.ok(parsePin({ host: hosts[0], path: PATH_A, reason: 'db migration', expiresMs: 7 * 86_400_000 }))
    assert.ok(parseUnpin({ host: hosts[0], lifts: [`${ADMIN}:3`] }))
    assert.ok(parseQuarantine({ path: PATH_A, reason: 'kernel panic on boot' }))
    assert.ok(parseQuarantineClear({ path: PATH_A, clears: [`${hosts[0]}:2`] }))
    const bad: Array<[() => unknown, string]> = [
      [() => parsePin({ host: 'not a peer id!', path: PATH_A, reason: 'x' }), 'ROLLOUT_BODY_INVALID'],
      [() => parsePin({ host: hosts[0], path: '/tmp/x', reason: 'x' }), 'ROLLOUT_BODY_INVALID'],
      [() => parsePin({ host: hosts[0], path: PATH_A }), 'ROLLOUT_BODY_INVALID'],
      [() => parsePin({ host: hosts[0], path: PATH_A, reason: 'x'.repeat(1025) }), 'ROLLOUT_BODY_TOO_LARGE'],
      [() => parsePin({ host: hosts[0], path: PATH_A, reason: 'x', expiresMs: 0 }), 'ROLLOUT_BODY_INVALID'],
      [() => parsePin({ host: hosts[0], path: PATH_A, reason: 'x', expiresMs: 11 * 365 * 86_400_000 }), 'ROLLOUT_BODY_INVALID'],
      [() => parseUnpin({ host: hosts[0], expired: true }), 'ROLLOUT_BODY_INVALID'],
      [() => parseUnpin({ host: hosts[0], lifts: ['nope'] }), 'ROLLOUT_BODY_INVALID'],
      [() => parseUnpin({ host: hosts[0], lifts: Array.from({ length: 1025 }, (_, i) => `${ADMIN}:${i}`) }), 'ROLLOUT_BODY_TOO_LARGE'],
      [() => parseQuarantine({ path: PATH_A }), 'ROLLOUT_BODY_INVALID'],
      [() => parseQuarantineClear({ path: PATH_A, clears: [] }), 'ROLLOUT_BODY_INVALID'],
      [() => parseQuarantine([PATH_A]), 'ROLLOUT_BODY_INVALID']
    ]
    for (const [f, code] of bad) assert.throws(f, (err: unknown) => isRolloutError(err, code as 'ROLLOUT_BODY_INVALID'), String(f))
  })

  it('a release refuses a quarantineAfter below 1', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', releaseBody({ quarantineAfter: 0 }))])
    assert.equal(s.releases.size, 0)
    assert.match(s.flagged[0].reason, /quarantineAfter/)
  })
})

describe('pins', () => {
  const body = releaseBody({ waves: [{ count: 1, gate: noSoak }, { percent: 100, gate: noSoak }], maxFailures: 0 })
  const plan = planRelease(body, m)
  const [canary] = plan.waves[0]
  const pinnedHost = plan.waves[1][0]

  it('a pinned host is skipped and counted pinned, neither pending nor failed; the release completes without it', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'pin', { host: pinnedHost, path: PATH_B, reason: 'holding for the db migration' }), w.write(ADMIN, 'release', body), ...ok(w, canary, 'r1')])
    const d = decide(s, m, pinnedHost, 0)
    assert.equal(d.action, 'none')
    assert.match(d.action === 'none' ? d.reason : '', /pinned by AdminA: holding for the db migration/)
    for (const h of plan.waves[1].slice(1)) {
      assert.equal(decide(s, m, h, 0).action, 'apply')
      for (const e of ok(w, h, 'r1')) applyEntry(s, e)
    }
    const st = releaseStatus(s, m, 'r1')
    assert.equal(st?.state, 'done')
    assert.deepEqual(st?.pinnedHosts, [pinnedHost])
    assert.equal(st?.waves[1].pinned, 1)
    assert.equal(st?.waves[1].pending, 0)
    assert.equal(st?.failed, 0)
    assert.deepEqual(holdsStatus(s, m).pins.map(p => [p.host, p.path, p.by]), [[pinnedHost, PATH_B, ADMIN]])
  })

  it('a pinned canary leaves the gate: the next wave opens without it', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body), w.write(ADMIN, 'pin', { host: canary, path: PATH_B, reason: 'x' })])
    assert.equal(decide(s, m, canary, 0).action, 'none')
    assert.equal(decide(s, m, pinnedHost, 0).action, 'apply', 'wave 0 has no host left to wait for')
  })

  it('a release that brings the host to its pinned path is applied', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body), w.write(ADMIN, 'pin', { host: canary, path: PATH_A, reason: 'x' })])
    assert.equal(decide(s, m, canary, 0).action, 'apply')
  })

  it('a pinned host does not revert a halted release it is on: it holds its generation', () => {
    const b = releaseBody({ autoRevert: true, maxFailures: 0, waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const w = new Writer()
    const [x, bad] = planRelease(b, m).waves[0]
    const s = fold([w.write(ADMIN, 'release', b), ...ok(w, x, 'r1'), ...brokeAfterActivation(w, bad, 'r1')])
    assert.equal(decide(s, m, x, 0).action, 'revert')
    applyEntry(s, w.write(ADMIN, 'pin', { host: x, path: PATH_A, reason: 'keep it' }))
    // pinned to the path it is on: holding it means not reverting it
    assert.equal(decide(s, m, x, 0).action, 'revert', 'a pin to the release\'s own path lets the release decide')
    applyEntry(s, w.write(ADMIN, 'pin', { host: x, path: PATH_C, reason: 'keep it' }))
    assert.equal(decide(s, m, x, 0).action, 'none')
  })

  it('a pin not signed by an admin holds nothing', () => {
    const w = new Writer()
    const s = fold([w.write(hosts[3], 'pin', { host: canary, path: PATH_B, reason: 'mine' }), w.write(ADMIN, 'release', body)])
    assert.equal(decide(s, m, canary, 0).action, 'apply')
    assert.deepEqual(holdsStatus(s, m).pins, [])
  })

  it('an unpin lifts its own feed\'s earlier pins, another admin\'s only by naming them', () => {
    const w = new Writer()
    const pinA = w.write(ADMIN, 'pin', { host: canary, path: PATH_B, reason: 'a' })
    const s = fold([w.write(ADMIN, 'release', body), pinA])
    applyEntry(s, w.write(ADMIN2, 'unpin', { host: canary }))
    assert.equal(decide(s, m, canary, 0).action, 'none', 'another admin\'s unpin that does not name the pin')
    applyEntry(s, w.write(ADMIN2, 'unpin', { host: canary, lifts: [`${ADMIN}:${pinA.seq}`] }))
    assert.equal(decide(s, m, canary, 0).action, 'apply')
    const t = fold([w.write(ADMIN, 'release', body), w.write(ADMIN, 'pin', { host: canary, path: PATH_B, reason: 'b' }), w.write(ADMIN, 'unpin', { host: canary })])
    assert.equal(decide(t, m, canary, 0).action, 'apply', 'its own feed\'s earlier pin')
  })

  it('expires by the pinned host\'s own timer and its own unpin entry, which every host then reads', () => {
    const w = new Writer()
    const pin = w.write(ADMIN, 'pin', { host: canary, path: PATH_B, reason: 'a week', expiresMs: 7 * 86_400_000 }, 1000)
    const s = fold([w.write(ADMIN, 'release', body), pin])
    // no clock decides: however late it is, only the host's timer does
    const d = decide(s, m, canary, 10 ** 13)
    assert.equal(d.action, 'none')
    assert.deepEqual(d.action === 'none' && d.timer, { key: `pin/${ADMIN}:${pin.seq}`, ms: 7 * 86_400_000 })
    assert.notEqual(decide(s, m, hosts.find(h => h !== canary) as string, 0, { expired: new Set([`pin/${ADMIN}:${pin.seq}`]) }).action, 'attest', 'another host\'s timer is not about this pin')
    const a = decide(s, m, canary, 0, { expired: new Set([`pin/${ADMIN}:${pin.seq}`]) })
    assert.deepEqual(a.action === 'attest' && [a.kind, a.body], ['unpin', { host: canary, lifts: [`${ADMIN}:${pin.seq}`], expired: true }])
    if (a.action === 'attest') applyEntry(s, w.write(canary, a.kind, a.body))
    assert.equal(decide(s, m, canary, 0).action, 'apply')
    assert.deepEqual(holdsStatus(s, m).pins, [])
  })

  it('a host\'s own unpin lifts only a named pin that had an expiry; another host\'s lifts nothing', () => {
    const w = new Writer()
    const forever = w.write(ADMIN, 'pin', { host: canary, path: PATH_B, reason: 'no expiry' })
    const s = fold([w.write(ADMIN, 'release', body), forever,
      w.write(canary, 'unpin', { host: canary, lifts: [`${ADMIN}:${forever.seq}`], expired: true })])
    assert.equal(decide(s, m, canary, 0).action, 'none')
    const timed = w.write(ADMIN, 'pin', { host: pinnedHost, path: PATH_B, reason: 'timed', expiresMs: 1000 })
    applyEntry(s, timed)
    applyEntry(s, w.write(canary, 'unpin', { host: pinnedHost, lifts: [`${ADMIN}:${timed.seq}`], expired: true }))
    assert.deepEqual(holdsStatus(s, m).pins.map(p => p.host).sort(), [canary, pinnedHost].sort())
  })
})

describe('quarantine', () => {
  const r1 = releaseBody({ id: 'r1', number: 1, waves: [{ count: 1, gate: noSoak }, { percent: 100, gate: noSoak }], maxFailures: 0 })
  const r2 = releaseBody({ id: 'r2', number: 2, waves: [{ count: 1, gate: noSoak }, { percent: 100, gate: noSoak }], maxFailures: 0 })
  const [c1] = planRelease(r1, m).waves[0]

  it('a path that failed after activation on the canary is refused in a second release, until cleared', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', r1), ...brokeAfterActivation(w, c1, 'r1'), w.write(ADMIN, 'release', r2)])
    for (const h of hosts) {
      const d = decide(s, m, h, 0)
      assert.notEqual(d.action, 'apply', h)
    }
    const [c2] = planRelease(r2, m).waves[0]
    const d = decide(s, m, c2, 0)
    assert.match(d.action === 'wait' ? d.reason : '', /path quarantined: failed after activation on 1 host/)
    const st = releaseStatus(s, m, 'r2')
    assert.deepEqual(st?.quarantinedPaths, [PATH_A])
    assert.equal(st?.waves[0].quarantined, 1)
    assert.equal(st?.state, 'halted', 'nothing in flight and every host left refuses the path: it stands still until cleared')
    assert.match(st?.reason ?? '', /wave 1: 1 host\(s\) refuse quarantined \/nix\/store\/.*-system-a until it is cleared/)
    const [q] = holdsStatus(s, m).quarantined
    assert.deepEqual([q.path, q.failedOn], [PATH_A, [c1]])
    // a clear that does not name the failure lifts nothing; naming it does
    applyEntry(s, w.write(ADMIN, 'quarantine-clear', { path: PATH_A }))
    assert.notEqual(decide(s, m, c2, 0).action, 'apply')
    applyEntry(s, w.write(ADMIN, 'quarantine-clear', { path: PATH_A, clears: q.refs }))
    assert.equal(decide(s, m, c2, 0).action, 'apply')
    assert.deepEqual(holdsStatus(s, m).quarantined, [])
  })

  it('a failure before activation, or an autoRevert\'s rollback, quarantines nothing', () => {
    const w = new Writer()
    const [a, b] = hosts
    const s = fold([w.write(ADMIN, 'release', releaseBody({ waves: [{ percent: 100, gate: noSoak }], maxFailures: 8 })),
      w.write(a, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'a1' }),
      w.write(a, 'apply-failed', { release: 'r1', path: PATH_A, reason: 'FETCH_FAILED: no substituter', attempt: 'a1' }),
      ...ok(w, b, 'r1'), w.write(b, 'rollback', { release: 'r1', from: PATH_A, to: PATH_B, ok: true, attempt: 'revert-1' })])
    assert.deepEqual(holdsStatus(s, m).quarantined, [])
  })

  it('quarantineAfter K: K distinct hosts of the release must fail after activation', () => {
    const b = releaseBody({ waves: [{ percent: 100, gate: noSoak }], maxFailures: 8, quarantineAfter: 2 })
    const [x, y] = planRelease(b, m).waves[0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', b), ...brokeAfterActivation(w, x, 'r1')])
    assert.deepEqual(holdsStatus(s, m).quarantined, [])
    for (const e of brokeAfterActivation(w, y, 'r1')) applyEntry(s, e)
    assert.deepEqual(holdsStatus(s, m).quarantined[0].failedOn.sort(), [x, y].sort())
  })

  it('a member the release does not target with that path cannot quarantine it', () => {
    const b = releaseBody({ targets: [{ host: hosts[0], path: PATH_A, sources: ['peers'] }], waves: [{ percent: 100, gate: noSoak }] })
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', b), ...brokeAfterActivation(w, hosts[5], 'r1')])
    assert.deepEqual(holdsStatus(s, m).quarantined, [])
  })

  it('an admin quarantines by hand (a non-admin cannot); the admin\'s later clear lifts it', () => {
    const w = new Writer()
    const s = fold([w.write(hosts[4], 'quarantine', { path: PATH_A, reason: 'mine' }), w.write(ADMIN, 'release', r1)])
    assert.equal(decide(s, m, c1, 0).action, 'apply')
    applyEntry(s, w.write(ADMIN2, 'quarantine', { path: PATH_A, reason: 'CVE in openssl' }))
    const d = decide(s, m, c1, 0)
    assert.match(d.action === 'wait' ? d.reason : '', /quarantined by AdminB: CVE in openssl/)
    applyEntry(s, w.write(ADMIN2, 'quarantine-clear', { path: PATH_A }))
    assert.equal(decide(s, m, c1, 0).action, 'apply')
  })
})

describe('holds in any delivery order', () => {
  // Random pin/unpin/quarantine/clear/failure histories from admins, a non-admin and the hosts
  // themselves; every permutation of the same entries must give every host the same decision
  // and the same holds.
  const actors = [ADMIN, ADMIN2, hosts[7]]
  const cmd = fc.oneof(
    fc.record({ k: fc.constant('pin'), by: fc.integer({ min: 0, max: 2 }), host: fc.integer({ min: 0, max: 3 }), path: fc.boolean(), expires: fc.boolean() }),
    fc.record({ k: fc.constant('unpin'), by: fc.integer({ min: 0, max: 2 }), host: fc.integer({ min: 0, max: 3 }), named: fc.nat(), self: fc.boolean() }),
    fc.record({ k: fc.constant('quarantine'), by: fc.integer({ min: 0, max: 2 }), path: fc.boolean() }),
    fc.record({ k: fc.constant('clear'), by: fc.integer({ min: 0, max: 2 }), path: fc.boolean(), named: fc.nat() }),
    fc.record({ k: fc.constant('fail'), host: fc.integer({ min: 0, max: 7 }) })
  )
  it('same entries, any order: same decisions and holds', () => {
    fc.assert(fc.property(fc.array(cmd, { maxLength: 24 }), fc.integer(), fc.boolean(), (cmds, seed, quarantineAfter2) => {
      const w = new Writer()
      const rel = releaseBody({ waves: [{ count: 2, gate: noSoak }, { percent: 100, gate: noSoak }], maxFailures: 8, ...(quarantineAfter2 ? { quarantineAfter: 2 } : {}) })
      const es: Entry[] = [w.write(ADMIN, 'release', rel)]
      const refs: string[] = []
      for (const c of cmds) {
        const path = 'path' in c && c.path ? PATH_A : PATH_C
        if (c.k === 'pin') { const e = w.write(actors[c.by], 'pin', { host: hosts[c.host], path, reason: 'r', ...(c.expires ? { expiresMs: 1000 } : {}) }); refs.push(`${e.feed}:${e.seq}`); es.push(e) }
        if (c.k === 'unpin') es.push(w.write(c.self ? hosts[c.host] : actors[c.by], 'unpin', { host: hosts[c.host], ...(refs.length > 0 ? { lifts: [refs[c.named % refs.length]] } : {}), ...(c.self && refs.length > 0 ? { expired: true } : {}) }))
        if (c.k === 'quarantine') { const e = w.write(actors[c.by], 'quarantine', { path, reason: 'q' }); refs.push(`${e.feed}:${e.seq}`); es.push(e) }
        if (c.k === 'clear') es.push(w.write(actors[c.by], 'quarantine-clear', { path, ...(refs.length > 0 ? { clears: [refs[c.named % refs.length]] } : {}) }))
        if (c.k === 'fail') { const f = brokeAfterActivation(w, hosts[c.host], 'r1'); refs.push(`${f[2].feed}:${f[2].seq}`); es.push(...f) }
      }
      const answer = (order: Entry[]): string => {
        const s = emptyState()
        for (const e of order) applyEntry(s, e)
        return JSON.stringify([hosts.map(h => { const d = decide(s, m, h, 0); return [d.action, 'reason' in d ? d.reason : '', 'timer' in d ? d.timer : undefined] }), holdsStatus(s, m), releaseStatus(s, m, 'r1')])
      }
      const first = answer(es)
      assert.equal(answer(shuffle(es, rng(seed))), first)
      assert.equal(answer([...es].reverse()), first)
    }), { seed: Number(process.env.PROPERTY_SEED ?? 1), numRuns: Number(process.env.PROPERTY_RUNS ?? 100) })
  })
})
