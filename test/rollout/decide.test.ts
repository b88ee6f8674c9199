import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { applyEntry, decide, emptyState, flagged, planRelease, releaseStatus, soakWatchOf } from '../../protocols/rollout/index.js'
import type { Decision, RolloutState } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { PATH_A, PATH_B, ADMIN, ADMIN2, StaticMembership, Writer, fold, hostIds, releaseBody, rng, shuffle } from './helpers.js'

const hosts = hostIds(20)
const m = StaticMembership.of(hosts, [ADMIN, ADMIN2])

// outcomes a host writes about itself for a successful apply, soaked (on its own clock) for 30 s
function applied (w: Writer, host: string, release: string, healthyAt: number, path = PATH_A): Entry[] {
  const attempt = `${host}-${release}`
  return [w.write(host, 'apply-start', { release, path, wave: 0, attempt }, healthyAt), w.write(host, 'apply-ok', { release, path, healthyAt, attempt }, healthyAt),
    w.write(host, 'soaked', { release, path, attempt, soakMs: 30_000 }, healthyAt + 30_000)]
}

function failed (w: Writer, host: string, release: string, at: number): Entry[] {
  return [
    w.write(host, 'apply-start', { release, path: PATH_A, wave: 0 }, at),
    w.write(host, 'apply-failed', { release, path: PATH_A, reason: 'unit nginx failed', check: 'nginx' }, at),
    w.write(host, 'rollback', { release, from: PATH_A, to: PATH_B, ok: true }, at)
  ]
}

function actions (s: RolloutState, now: number): Map<string, Decision['action']> {
  return new Map(hosts.map(h => [h, decide(s, m, h, now).action]))
}

describe('decide', () => {
  const body = releaseBody()
  const plan = planRelease(body, m)
  const [canary] = plan.waves[0]

  it('only the canary applies first; later waves wait and say why', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 1000)])
    const d = decide(s, m, canary, 2000)
    assert.equal(d.action, 'apply')
    assert.deepEqual(d.action === 'apply' && [d.path, d.sources, d.wave, d.number], [PATH_A, ['peers'], 0, 1])
    const other = decide(s, m, plan.waves[1][0], 2000)
    assert.equal(other.action, 'wait')
    assert.match(other.action === 'wait' ? other.reason : '', /wave 2 waits: wave 1 has 0\/1 healthy, needs 100 %/)
    assert.equal(decide(s, m, 'Stranger', 2000).action, 'none')
  })

  it('opens the next wave on the canary\'s own soaked entry, whatever the clocks say', () => {
    const w = new Writer()
    const [start, ok, soaked] = applied(w, canary, 'r1', 5000)
    const s = fold([w.write(ADMIN, 'release', body, 1000), start, ok])
    const h = plan.waves[1][0]
    for (const now of [20_000, 35_000, 10 ** 9]) {
      const during = decide(s, m, h, now)
      assert.equal(during.action, 'wait', `at ${now}: the canary has not attested its soak`)
      assert.match(during.action === 'wait' ? during.reason : '', /wave 1 has 0\/1 healthy, needs 100 %, 1 soaking/)
    }
    applyEntry(s, soaked)
    assert.equal(decide(s, m, h, 0).action, 'apply')
    assert.equal(decide(s, m, plan.waves[2][0], 0).action, 'wait', 'wave 2 still waits for wave 1')
    assert.equal(decide(s, m, canary, 0).action, 'none', 'already on it')
  })

  it('a host that applied owes its wave\'s soak, measured by itself; a failure report takes it out of the gate', () => {
    const w = new Writer()
    const [start, ok, soaked] = applied(w, canary, 'r1', 5000)
    const s = fold([w.write(ADMIN, 'release', body, 1000), start, ok])
    assert.deepEqual(soakWatchOf(s, m, canary), { release: 'r1', path: PATH_A, attempt: `${canary}-r1`, soakMs: 30_000 })
    assert.equal(soakWatchOf(s, m, plan.waves[1][0]), undefined, 'a host that has not applied has nothing to watch')
    applyEntry(s, soaked)
    assert.equal(soakWatchOf(s, m, canary), undefined, 'the soak is attested')
    assert.equal(decide(s, m, plan.waves[1][0], 0).action, 'apply')
    applyEntry(s, w.write(canary, 'health', { release: 'r1', path: PATH_A, ok: false, check: 'web', output: 'HTTP 500' }, 41_000))
    const d = decide(s, m, plan.waves[1][0], 0)
    assert.equal(d.action, 'wait', 'the canary that failed after its soak no longer counts as healthy')
    assert.match(d.action === 'wait' ? d.reason : '', /wave 1 has 0\/1 healthy/)
  })

  it('counts silent (offline) hosts as not healthy, until an overdue entry declares them silent', () => {
    const b = releaseBody({ waves: [{ percent: 50, gate: { healthy: 100, soakMs: 0 }, waitOfflineMs: 60_000 }, { percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const p = planRelease(b, m)
    const w = new Writer()
    const [silent, ...rest] = p.waves[0]
    const s = fold([w.write(ADMIN, 'release', b, 0), ...rest.flatMap(h => applied(w, h, 'r1', 1000))])
    const late = p.waves[1][0]
    const d = decide(s, m, late, 30_000)
    assert.equal(d.action, 'wait')
    assert.deepEqual(d.action === 'wait' && d.timer?.key, 'r1/silent/0')
    assert.equal(releaseStatus(s, m, 'r1', h => h !== silent)?.waves[0].offline, 1)
    const first = p.waves[0].find(h => h !== silent) as string
    const a = decide(s, m, first, 0, { expired: new Set(['r1/silent/0']) })
    assert.deepEqual(a.action === 'attest' && a.body, { release: 'r1', wave: 0, hosts: [silent], why: 'silent' })
    if (a.action === 'attest') applyEntry(s, w.write(first, 'overdue', a.body, 0))
    assert.equal(decide(s, m, late, 0).action, 'apply')
    assert.equal(releaseStatus(s, m, 'r1')?.waves[0].silent, 1)
  })

  it('halts when the failure budget is exceeded; halted releases are never applied', () => {
    // quarantineAfter above the fleet: the failures are judged by the budget alone (holds.test.ts covers quarantine)
    const b = releaseBody({ waves: [{ percent: 50, gate: { healthy: 50, soakMs: 0 } }, { percent: 100, gate: { healthy: 0, soakMs: 0 } }], maxFailures: 1, quarantineAfter: 20 })
    const p = planRelease(b, m)
    const w = new Writer()
    const es = [w.write(ADMIN, 'release', b, 0), ...p.waves[0].slice(2).flatMap(h => applied(w, h, 'r1', 0))]
    const one = fold([...es, ...failed(w, p.waves[0][0], 'r1', 10)])
    assert.equal(decide(one, m, p.waves[1][0], 100).action, 'apply', 'one failure is within the budget')
    const two = fold([...es, ...failed(w, p.waves[0][0], 'r1', 10), ...failed(w, p.waves[0][1], 'r1', 10)])
    const d = decide(two, m, p.waves[1][0], 100)
    assert.equal(d.action, 'none')
    assert.match(d.action === 'none' ? d.reason : '', /halted: 2 hosts failed, the budget is 1/)
    assert.equal(releaseStatus(two, m, 'r1')?.state, 'halted')
  })

  it('a failing canary halts the release everywhere and no later-wave host ever gets apply', () => {
    const b = releaseBody({ maxFailures: 5, autoRevert: true })
    const p = planRelease(b, m)
    const w = new Writer()
    const [c] = p.waves[0]
    const s = fold([w.write(ADMIN, 'release', b, 0), ...failed(w, c, 'r1', 10)])
    for (const now of [100, 60_000, 10 ** 9]) {
      for (const h of hosts) {
        const d = decide(s, m, h, now)
        assert.notEqual(d.action, 'apply', `${h} at ${now}`)
        if (h !== c) assert.match(d.action === 'none' ? d.reason : '', /wave 1 can no longer meet its gate/)
      }
    }
  })

  it('autoRevert: hosts that applied a halted release revert it', () => {
    const b = releaseBody({ autoRevert: true, maxFailures: 0, waves: [{ percent: 50, gate: { healthy: 0, soakMs: 0 } }, { percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const p = planRelease(b, m)
    const w = new Writer()
    const [bad, good] = p.waves[0]
    const s = fold([w.write(ADMIN, 'release', b, 0), ...applied(w, good, 'r1', 0), ...failed(w, bad, 'r1', 1)])
    assert.deepEqual(decide(s, m, good, 10), { action: 'revert', release: 'r1', path: PATH_A, trace: decide(s, m, good, 10).trace })
    assert.equal(decide(s, m, bad, 10).action, 'none', 'the failed host already rolled back')
    applyEntry(s, w.write(good, 'rollback', { release: 'r1', from: PATH_A, to: PATH_B, ok: true }, 20))
    assert.equal(decide(s, m, good, 30).action, 'none', 'reverted once')
  })

  it('pause holds new applies, resume lets them go, abort is final', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0)])
    const pause = w.write(ADMIN2, 'release-control', { release: 'r1', action: 'pause' }, 10)
    applyEntry(s, pause)
    const d = decide(s, m, canary, 20)
    assert.equal(d.action, 'wait')
    assert.match(d.action === 'wait' ? d.reason : '', /paused/)
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'paused')
    applyEntry(s, w.write(ADMIN, 'release-control', { release: 'r1', action: 'resume', resumes: [`${ADMIN2}:${pause.seq}`] }, 30))
    assert.equal(decide(s, m, canary, 40).action, 'apply')
    applyEntry(s, w.write(hosts[3], 'release-control', { release: 'r1', action: 'abort' }, 50))
    assert.equal(decide(s, m, canary, 60).action, 'apply', 'a non-admin cannot abort')
    applyEntry(s, w.write(ADMIN, 'release-control', { release: 'r1', action: 'abort' }, 50))
    applyEntry(s, w.write(ADMIN, 'release-control', { release: 'r1', action: 'resume' }, 70))
    assert.equal(decide(s, m, canary, 80).action, 'none')
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'aborted')
  })

  it('never downgrades: an old release replayed after a newer one was applied is skipped', () => {
    const one = releaseBody({ waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const two = { ...one, id: 'r2', number: 2, targets: [{ path: PATH_B, sources: ['peers'] }] }
    const w = new Writer()
    const h = hosts[0]
    const r2 = w.write(ADMIN, 'release', two, 0)
    const s = fold([r2, ...applied(w, h, 'r2', 10, PATH_B)])
    // r1 arrives late (a replay, or simply delivered after r2): still lower than what h applied
    applyEntry(s, w.write(ADMIN2, 'release', one, 0))
    assert.equal(decide(s, m, h, 20).action, 'none')
    // even when r2 is aborted, h does not go back to r1
    applyEntry(s, w.write(ADMIN, 'release-control', { release: 'r2', action: 'abort' }, 30))
    const d = decide(s, m, h, 40)
    assert.equal(d.action, 'none')
    assert.match(d.action === 'none' ? d.reason : '', /already applied a release numbered 2/)
  })

  it('a host back from offline skips superseded releases and converges to the newest', () => {
    const one = releaseBody({ waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const two = { ...one, id: 'r2', number: 2, targets: [{ path: PATH_B, sources: ['peers'] }] }
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', one, 0), w.write(ADMIN, 'release', two, 100)])
    const d = decide(s, m, hosts[7], 200)
    assert.equal(d.action === 'apply' && d.release, 'r2')
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'superseded')
  })

  it('two admins publishing concurrently: the same winner for every delivery order', () => {
    const a = releaseBody({ id: 'from-a', number: 7, waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const b = { ...a, id: 'from-b', targets: [{ path: PATH_B, sources: ['peers'] }] }
    const w = new Writer()
    const es = [w.write(ADMIN, 'release', a, 5), w.write(ADMIN2, 'release', b, 5)]
    const winners = new Set<string>()
    for (const order of [es, [...es].reverse()]) {
      const d = decide(fold(order), m, hosts[0], 10)
      assert.equal(d.action, 'apply')
      if (d.action === 'apply') winners.add(d.release)
    }
    assert.deepEqual([...winners], ['from-b'], 'same number: the higher signer id wins')
  })

  it('ignores and flags a release signed by a non-admin', () => {
    const w = new Writer()
    const rogue = releaseBody({ id: 'rogue', number: 99, waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const s = fold([w.write(hosts[1], 'release', rogue, 0), w.write(hosts[1], 'release', { id: 'junk' }, 0)])
    assert.equal(decide(s, m, hosts[0], 10).action, 'none')
    assert.equal(releaseStatus(s, m, 'rogue'), undefined)
    const f = flagged(s, m)
    assert.equal(f.length, 2)
    assert.ok(f.some(x => /not signed by an admin/.test(x.reason)))
    assert.ok(f.some(x => /release\.number/.test(x.reason)))
  })

  it('a revoked admin\'s release stops everywhere when the revoke cuts it; an earlier release of it stands', () => {
    const mm = StaticMembership.of(hosts, [ADMIN, ADMIN2])
    const w = new Writer()
    const early = w.write(ADMIN2, 'release', releaseBody({ id: 'early', waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] }), 0)
    const late = w.write(ADMIN2, 'release', releaseBody({ id: 'late', number: 2, waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] }), 0)
    const s = fold([early, late])
    assert.equal(decide(s, mm, hosts[0], 10).action === 'apply' && decide(s, mm, hosts[0], 10).release, 'late')
    mm.revoke(ADMIN2, early.seq)
    const d = decide(s, mm, hosts[0], 10)
    assert.equal(d.action === 'apply' && d.release, 'early', 'the revoke cut ADMIN2 after its first release')
  })

  it('a failing health report after apply-ok stops the host counting as healthy', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0), ...applied(w, canary, 'r1', 0)])
    const h = plan.waves[1][0]
    assert.equal(decide(s, m, h, 40_000).action, 'apply')
    applyEntry(s, w.write(canary, 'health', { release: 'r1', path: PATH_A, ok: false, check: 'http', output: '503' }, 41_000))
    assert.equal(releaseStatus(s, m, 'r1')?.waves[0].unhealthy, 1)
    assert.equal(decide(s, m, h, 42_000).action, 'wait')
    applyEntry(s, w.write(canary, 'health', { release: 'r1', path: PATH_A, ok: true }, 43_000))
    assert.equal(decide(s, m, h, 44_000).action, 'apply')
  })

  it('status counts hosts per wave and reports done', () => {
    const b = releaseBody({ waves: [{ count: 2, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 50, soakMs: 0 } }] })
    const p = planRelease(b, m)
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', b, 0), ...applied(w, p.waves[0][0], 'r1', 0), w.write(p.waves[0][1], 'apply-start', { release: 'r1', path: PATH_A, wave: 0 }, 1)])
    const st = releaseStatus(s, m, 'r1')
    assert.deepEqual(st?.waves[0], { index: 0, hosts: 2, pending: 0, offline: 0, applying: 1, soaking: 0, healthy: 1, failed: 0, unhealthy: 0, silent: 0, movedOn: 0, accepted: 0, superseded: 0, pinned: 0, quarantined: 0, stale: 0, need: 2, gateMet: false, waits: '1/2 healthy, needs 100 % (2)',
      hostStates: [{ host: p.waves[0][0], state: 'healthy' as const }, { host: p.waves[0][1], state: 'applying' as const }].sort((x, y) => x.host < y.host ? -1 : 1) })
    assert.equal(st?.state, 'rolling')
    for (const h of p.waves.flat()) for (const e of applied(w, h, 'r1', 5)) applyEntry(s, e)
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'done')
  })

  it('property: the same entries in 100 random orders give identical decisions for every host', () => {
    // quarantineAfter: the failed host's path stays allowed, so the others still have decisions to take
    const b = releaseBody({ maxFailures: 3, quarantineAfter: 20 })
    b.waves[1].gate.healthy = 50
    // r2 targets one host and is paused: that host waits while the others follow r1
    const b2 = { ...releaseBody({ id: 'r2', number: 2 }), targets: [{ host: hosts[0], path: PATH_B, sources: ['peers'] }] }
    const p = planRelease(b, m)
    const w = new Writer()
    const es: Entry[] = [w.write(ADMIN, 'release', b, 0), w.write(ADMIN2, 'release', b2, 50_000),
      w.write(ADMIN2, 'release-control', { release: 'r2', action: 'pause' }, 60_000),
      ...applied(w, p.waves[0][0], 'r1', 1000)]
    for (const h of p.waves[1].slice(0, 2)) es.push(...applied(w, h, 'r1', 40_000))
    es.push(...failed(w, p.waves[1][2], 'r1', 41_000))
    es.push(w.write(p.waves[1][3], 'health', { release: 'r1', path: PATH_A, ok: false }, 42_000))
    // a silent host, one past its apply deadline, one that moved on to a hotfix
    es.push(w.write(p.waves[0][0], 'overdue', { release: 'r1', wave: 1, hosts: [p.waves[1][4]], why: 'silent' }, 43_000))
    es.push(w.write(p.waves[2][0], 'apply-start', { release: 'r1', path: PATH_A, wave: 2 }, 44_000))
    es.push(w.write(p.waves[1][0], 'overdue', { release: 'r1', wave: 2, hosts: [p.waves[2][0]], why: 'deadline' }, 45_000))
    const fix = { ...releaseBody({ id: 'fix', number: 3 }), targets: [{ host: p.waves[2][1], path: PATH_B, sources: ['peers'] }] }
    es.push(w.write(ADMIN, 'release', fix, 46_000), w.write(p.waves[2][1], 'apply-start', { release: 'fix', path: PATH_B, wave: 0 }, 47_000))
    const expected = fold(es)
    const want = [70_000, 200_000].map(now => [...actions(expected, now)])
    const rand = rng(42)
    for (let i = 0; i < 100; i++) {
      const s = emptyState()
      // queries interleaved with the fold: incremental gate evaluation must not depend on when it ran
      for (const e of shuffle(es, rand)) {
        applyEntry(s, e)
        if (rand() < 0.3) decide(s, m, hosts[Math.floor(rand() * hosts.length)], 70_000)
      }
      assert.deepEqual([70_000, 200_000].map(now => [...actions(s, now)]), want)
    }
    const kinds = new Set(want.flatMap(x => x.map(([, a]) => a)))
    assert.ok(kinds.size >= 3, `the fixture exercises several outcomes: ${[...kinds]}`)
  })
})

