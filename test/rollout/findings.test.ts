// Issue 12's findings on the pure decision core, each driven through the real decide() /
// releaseStatus() with crafted logs. Every test here failed on the code before the fix.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  MIN_SILENT_WAIT_MS, applyEntry, assignmentKey, controlState, decide, nextReleaseNumber, planRelease, releaseStatus, rollbackTargets, watchExitCode
} from '../../protocols/rollout/index.js'
import type { Decision } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { peers } from '../membership/helpers.js'
import { LogMembership, PATH_A, PATH_B, ADMIN, ADMIN2, StaticMembership, Writer, fold, hostIds, releaseBody } from './helpers.js'

const hosts = hostIds(20)
const m = StaticMembership.of(hosts, [ADMIN, ADMIN2])

function start (w: Writer, host: string, release: string, at = 0, path = PATH_A): Entry {
  return w.write(host, 'apply-start', { release, path, wave: 0, attempt: `${host}-${release}` }, at)
}

function ok (w: Writer, host: string, release: string, at = 0, path = PATH_A): Entry {
  return w.write(host, 'apply-ok', { release, path, healthyAt: at, attempt: `${host}-${release}` }, at)
}

function soaked (w: Writer, host: string, release: string, soakMs: number, at = 0, path = PATH_A): Entry {
  return w.write(host, 'soaked', { release, path, attempt: `${host}-${release}`, soakMs }, at)
}

function failed (w: Writer, host: string, release: string, at = 0): Entry[] {
  return [start(w, host, release, at), w.write(host, 'apply-failed', { release, path: PATH_A, reason: 'unit web failed', attempt: `${host}-${release}` }, at)]
}

function timerOf (d: Decision): string | undefined {
  return d.action === 'wait' || d.action === 'none' ? d.timer?.key : undefined
}

describe('issue 12: decisions that hold when clocks disagree and hosts go silent', () => {
  it('finding 1: a wave-1 host whose clock runs 60 s fast does not apply before the canary attests its soak', () => {
    const body = releaseBody()
    const p = planRelease(body, m)
    const [canary] = p.waves[0]
    const follower = p.waves[1][0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 1000), start(w, canary, 'r1', 5000), ok(w, canary, 'r1', 5000)])
    // 1 s after the canary's apply-ok, on a clock 60 s ahead: the old code compared healthyAt + soak with it
    const skewed = 5000 + 1000 + 60_000
    assert.equal(decide(s, m, follower, skewed).action, 'wait')
    assert.equal(decide(s, m, follower, Number.MAX_SAFE_INTEGER).action, 'wait', 'no clock opens the wave')
    assert.equal(releaseStatus(s, m, 'r1')?.waves[0].soaking, 1)
    applyEntry(s, soaked(w, canary, 'r1', 30_000, 35_000))
    assert.equal(decide(s, m, follower, 0).action, 'apply', 'the attestation opens it, even on a slow clock')
  })

  it('finding 1: a soaked entry shorter than the wave\'s soak does not count', () => {
    const body = releaseBody()
    const p = planRelease(body, m)
    const [canary] = p.waves[0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0), start(w, canary, 'r1'), ok(w, canary, 'r1'), soaked(w, canary, 'r1', 1000)])
    assert.equal(decide(s, m, p.waves[1][0], 10 ** 9).action, 'wait')
  })

  it('finding 2: with the canary silent, waiting for it opens wave 1 only; wave 2 waits its own wait', () => {
    for (const waitOfflineMs of [60_000, 0]) {
      const body = releaseBody({
        waves: [
          { count: 1, gate: { healthy: 100, soakMs: 0 }, waitOfflineMs },
          { percent: 25, gate: { healthy: 100, soakMs: 0 }, waitOfflineMs },
          { percent: 100, gate: { healthy: 90, soakMs: 0 } }
        ]
      })
      const p = planRelease(body, m)
      const w = new Writer()
      const s = fold([w.write(ADMIN, 'release', body, 0)])
      const one = p.waves[1][0]
      const two = p.waves[2][0]
      // long after every claimed cutoff: the old code opened waves 1 and 2 together here
      const late = 10 * 60_000
      const d1 = decide(s, m, one, late)
      const d2 = decide(s, m, two, late)
      assert.equal(d1.action, 'wait', `wait ${waitOfflineMs}`)
      assert.equal(d2.action, 'wait', `wait ${waitOfflineMs}`)
      assert.equal(timerOf(d1), 'r1/silent/0', 'the wait runs on the local clock of a host that sees wave 0 open')
      const wait = Math.max(waitOfflineMs, MIN_SILENT_WAIT_MS)
      assert.equal(d1.action === 'wait' && d1.timer?.ms, wait, 'wave 1\'s first host is first in line to write it; online hosts get at least 5 s')
      assert.ok(d2.action === 'wait' && (d2.timer?.ms as number) > wait, 'the others only after a fallback delay')
      const a = decide(s, m, one, late, { expired: new Set(['r1/silent/0']) })
      assert.equal(a.action, 'attest')
      assert.deepEqual(a.action === 'attest' && a.body, { release: 'r1', wave: 0, hosts: [p.waves[0][0]], why: 'silent' })
      if (a.action === 'attest') applyEntry(s, w.write(one, 'overdue', a.body, 0))
      const actions = (wave: number): string[] => p.waves[wave].map(h => decide(s, m, h, late, { expired: new Set(['r1/silent/0']) }).action)
      assert.deepEqual(new Set(actions(1)), new Set(['apply']))
      assert.deepEqual(new Set(actions(2)), new Set(['wait']), 'wave 2 does not open with wave 1')
      assert.equal(timerOf(decide(s, m, two, late)), 'r1/silent/1', 'wave 1\'s own wait starts only now')
    }
  })

  it('finding 2: an overdue entry from a non-member or about another wave changes nothing', () => {
    const body = releaseBody({ waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 }, waitOfflineMs: 0 }, { percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const p = planRelease(body, m)
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0),
      w.write('Stranger', 'overdue', { release: 'r1', wave: 0, hosts: p.waves[0], why: 'silent' }, 0),
      w.write(p.waves[1][0], 'overdue', { release: 'r1', wave: 1, hosts: p.waves[0], why: 'silent' }, 0)])
    assert.equal(decide(s, m, p.waves[1][1], 0).action, 'wait')
  })

  it('finding 3: the overdue entry comes within log2(plan size) fallbacks, each fallback tier twice the one before, never the whole fleet at once', () => {
    const body = releaseBody({ applyDeadlineMs: 600_000, waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, m)
    const stuck = p.waves[0][0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0), start(w, stuck, 'r1')])
    const waits = p.waves[1].map(h => decide(s, m, h, 0)).flatMap(d => timerOf(d)?.startsWith('r1/deadline/0/') === true ? [(d as { timer: { ms: number } }).timer.ms] : [])
    assert.equal(waits.length, p.waves[1].length, 'every other host runs the deadline timer')
    const byTier = new Map<number, number>()
    for (const ms of waits) byTier.set((ms - 600_000) / 60_000, (byTier.get((ms - 600_000) / 60_000) ?? 0) + 1)
    assert.equal(byTier.get(0), 1, 'one host writes at the deadline')
    for (const [t, n] of byTier) assert.ok(Number.isInteger(t) && n <= 2 ** t, `tier ${t} holds ${n} hosts`)
    assert.ok(Math.max(...byTier.keys()) <= Math.ceil(Math.log2(p.rank.size)), 'the last tier writes within log2(plan size) fallbacks')
  })

  it('finding 3: a host that wrote apply-start and went silent is declared overdue past the apply deadline and counts as failed', () => {
    const body = releaseBody({ applyDeadlineMs: 600_000, maxFailures: 1, waves: [{ count: 2, gate: { healthy: 50, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, m)
    const [stuck, good] = p.waves[0]
    const w = new Writer()
    // wave 0's gate is met by `good`; the first of wave 1 (first in line for wave 0) applied too
    const first = p.waves[1][0]
    const s = fold([w.write(ADMIN, 'release', body, 0), start(w, stuck, 'r1'), start(w, good, 'r1'), ok(w, good, 'r1'), start(w, first, 'r1'), ok(w, first, 'r1')])
    const d = decide(s, m, first, 0)
    const key = timerOf(d) as string
    assert.match(key, /^r1\/deadline\/0\//)
    assert.equal(d.action === 'none' && d.timer?.ms, 600_000, 'the first host in line waits the release\'s deadline')
    assert.ok(((decide(s, m, good, 0) as { timer?: { ms: number } }).timer?.ms as number) > 600_000, 'a host further back waits longer')
    assert.equal(timerOf(decide(s, m, stuck, 0)), undefined, 'the stuck host does not declare itself')
    const a = decide(s, m, first, 0, { expired: new Set([key]) })
    assert.deepEqual(a.action === 'attest' && a.body, { release: 'r1', wave: 0, hosts: [stuck], why: 'deadline' })
    if (a.action === 'attest') applyEntry(s, w.write(first, 'overdue', a.body, 0))
    const st = releaseStatus(s, m, 'r1')
    assert.equal(st?.failed, 1, 'counted against the budget')
    assert.deepEqual(st?.failedHosts, [stuck], 'what a resume may accept')
    assert.equal(st?.waves[0].applying, 0)
    assert.equal(st?.state, 'rolling', 'one failure is within the budget')
    applyEntry(s, ok(w, stuck, 'r1'))
    assert.equal(releaseStatus(s, m, 'r1')?.failed, 1, 'a late outcome does not undo the declared failure')
  })

  it('finding 3: past the deadline with no budget left, a 100 % gate halts instead of rolling forever', () => {
    const body = releaseBody({ maxFailures: 0, waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, m)
    const [canary] = p.waves[0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0), start(w, canary, 'r1')])
    const other = p.waves[1][0]
    const key = timerOf(decide(s, m, other, 0)) as string
    assert.equal(decide(s, m, other, 0).action === 'wait' && (decide(s, m, other, 0) as { timer?: { ms: number } }).timer?.ms, 30 * 60_000, 'default deadline: 30 min')
    const a = decide(s, m, other, 0, { expired: new Set([key]) })
    if (a.action === 'attest') applyEntry(s, w.write(other, 'overdue', a.body, 0))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'halted')
    assert.equal(watchExitCode('halted'), 6)
  })
})

describe('issue 12: a frozen plan, sticky halts and authority as of the entry', () => {
  it('finding 3: a canary that died after its apply-ok, before it attested its soak, is declared overdue past the deadline plus the soak (chaos quick seed 1)', () => {
    const body = releaseBody({ applyDeadlineMs: 600_000, maxFailures: 0, waves: [{ count: 1, gate: { healthy: 100, soakMs: 30_000 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, m)
    const canary = p.waves[0][0]
    const next = p.waves[1][0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0), start(w, canary, 'r1'), ok(w, canary, 'r1')])
    const d = decide(s, m, next, 0)
    const key = timerOf(d) as string
    assert.match(key, /^r1\/deadline\/0\//, 'a host waiting on a soak that never ends runs the deadline timer')
    assert.equal(d.action === 'wait' && d.timer?.ms, 630_000, 'the deadline plus the wave\'s soak, so a long soak is never cut short')
    const a = decide(s, m, next, 0, { expired: new Set([key]) })
    assert.deepEqual(a.action === 'attest' && a.body, { release: 'r1', wave: 0, hosts: [canary], why: 'deadline' })
    applyEntry(s, w.write(next, 'overdue', a.action === 'attest' ? a.body : {}, 1))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'halted')
  })

  it('finding 6: revoking a failed canary does not un-halt; a new member does not displace a canary; status keeps its waves', async () => {
    const [F, ...ids] = await peers(9)
    const fleet = ids.slice(0, 7)
    const newcomer = ids[7]
    const mm = new LogMembership('mesh-test')
    const log = new Writer()
    mm.add(log.write(F, 'genesis', { mesh: 'mesh-test', name: 'm', founder: F }, 1))
    for (const h of fleet) mm.add(log.write(F, 'admit', { peer: h, role: 'host', tags: ['web'] }, 2))
    const body = releaseBody({ basis: mm.basis(), maxFailures: 3, waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const rel = log.write(F, 'release', body, 3)
    const p = planRelease(body, mm)
    const [canary] = p.waves[0]
    const s = fold([rel, ...failed(log, canary, 'r1', 4)])
    assert.match(releaseStatus(s, mm, 'r1')?.reason ?? '', /wave 1 can no longer meet its gate/)
    // the operator revokes the failed canary, after its failure
    mm.add(log.write(F, 'revoke', { peer: canary, after: 1 }, 5))
    for (const h of fleet.filter(h => h !== canary)) assert.notEqual(decide(s, mm, h, 10).action, 'apply', `${h} after the revoke`)
    const st = releaseStatus(s, mm, 'r1')
    assert.equal(st?.state, 'halted')
    assert.deepEqual(st?.waves.map(w => w.hosts), [1, 7], 'the release\'s history is not rewritten: no 0/0 waves')
    // a member admitted after the release is not in its plan
    mm.add(log.write(F, 'admit', { peer: newcomer, role: 'host', tags: ['web'] }, 6))
    assert.equal(decide(s, mm, newcomer, 10).action, 'none')
    assert.equal(releaseStatus(s, mm, 'r1')?.waves[0].hosts, 1)
  })

  it('finding 6: a new member does not displace a canary that soaked', async () => {
    const [F, newcomer, ...ids] = await peers(6)
    const mm = new LogMembership('mesh-test')
    const log = new Writer()
    mm.add(log.write(F, 'genesis', { mesh: 'mesh-test', name: 'm', founder: F }, 1))
    for (const h of ids) mm.add(log.write(F, 'admit', { peer: h, role: 'host', tags: [] }, 2))
    // a release id under which the newcomer, admitted after the release, sorts first: a live plan would make it canary
    let id = 'r1'
    for (let i = 0; [F, ...ids].some(h => assignmentKey(id, h) < assignmentKey(id, newcomer)); i++) id = `r1-${i}`
    const body = releaseBody({ id, basis: mm.basis(), waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, mm)
    const [canary] = p.waves[0]
    const s = fold([log.write(F, 'release', body, 3), start(log, canary, id), ok(log, canary, id)])
    mm.add(log.write(F, 'admit', { peer: newcomer, role: 'host', tags: [] }, 4))
    assert.equal(planRelease(body, mm).waves[0][0], newcomer, 'the live plan would have a new canary')
    for (const h of p.waves[1]) assert.equal(decide(s, mm, h, 10).action, 'apply', h)
    assert.equal(decide(s, mm, newcomer, 10).action, 'none', 'not in the frozen plan')
  })

  it('finding 6: a host that does not hold the release\'s basis waits, catching up', async () => {
    const [F, A, B] = await peers(3)
    const full = new LogMembership('mesh-test')
    const behind = new LogMembership('mesh-test')
    const log = new Writer()
    const entries = [log.write(F, 'genesis', { mesh: 'mesh-test', name: 'm', founder: F }, 1), log.write(F, 'admit', { peer: A, role: 'host', tags: [] }, 2), log.write(F, 'admit', { peer: B, role: 'host', tags: [] }, 2)]
    for (const e of entries) full.add(e)
    for (const e of entries.slice(0, 2)) behind.add(e)
    const s = fold([log.write(F, 'release', releaseBody({ basis: full.basis(), waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] }), 3)])
    const d = decide(s, behind, A, 10)
    assert.equal(d.action, 'none')
    assert.match(d.action === 'none' ? d.reason : '', /catching up to the release's basis/)
    assert.equal(decide(s, full, A, 10).action, 'apply')
  })

  it('finding 6: a halt is sticky until an admin\'s resume accepts the failed hosts', () => {
    const body = releaseBody({ maxFailures: 0, waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, m)
    const [canary] = p.waves[0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0), ...failed(w, canary, 'r1')])
    applyEntry(s, w.write(ADMIN, 'release-control', { release: 'r1', action: 'resume' }, 1))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'halted', 'a plain resume does not lift a halt')
    applyEntry(s, w.write(hosts[5], 'release-control', { release: 'r1', action: 'resume', accept: [canary] }, 2))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'halted', 'a non-admin cannot accept')
    applyEntry(s, w.write(ADMIN2, 'release-control', { release: 'r1', action: 'resume', accept: [canary] }, 2))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'rolling')
    assert.equal(decide(s, m, p.waves[1][0], 10).action, 'apply')
  })

  it('finding 6: once halted, no later entry lifts the halt by itself (a silent host coming back, a host moving on)', () => {
    const body = releaseBody({ maxFailures: 5, waves: [{ count: 3, gate: { healthy: 100, soakMs: 0 }, waitOfflineMs: 0 }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, m)
    const [bad, quiet, mover] = p.waves[0]
    const hotfix = releaseBody({ id: 'hotfix', number: 2, targets: [{ host: mover, path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }] })
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0), ...failed(w, bad, 'r1'), w.write(p.waves[1][0], 'overdue', { release: 'r1', wave: 0, hosts: [quiet], why: 'silent' }, 0)])
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'halted')
    for (const e of [w.write(ADMIN, 'release', hotfix, 1), start(w, mover, 'hotfix', 0, PATH_B), start(w, quiet, 'r1'), ok(w, quiet, 'r1')]) {
      applyEntry(s, e)
      assert.equal(releaseStatus(s, m, 'r1')?.state, 'halted', `after ${e.kind} of ${e.feed}`)
      for (const h of p.waves[1]) assert.notEqual(decide(s, m, h, 0).action, 'apply')
    }
  })

  it('finding 6: in a frozen plan, what a revoked host wrote past its revoke\'s cut does not count', () => {
    const mm = StaticMembership.of(hosts, [ADMIN])
    const body = releaseBody({ basis: { [ADMIN]: 0 }, waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(body, mm)
    const [canary] = p.waves[0]
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body, 0)])
    decide(s, mm, canary, 0) // resolves the plan against the basis, and freezes it
    const st = start(w, canary, 'r1')
    mm.revoke(canary, st.seq)
    for (const e of [st, ok(w, canary, 'r1')]) applyEntry(s, e)
    assert.equal(decide(s, mm, p.waves[1][0], 0).action, 'wait', 'its apply-ok came after the cut')
    assert.equal(releaseStatus(s, mm, 'r1')?.waves[0].hosts, 1, 'it stays in the frozen plan')
  })

  it('finding 8: a canary that moved on to a newer hotfix does not strand the older release', () => {
    const r1 = releaseBody({ waves: [{ count: 1, gate: { healthy: 100, soakMs: 30_000 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(r1, m)
    const [canary] = p.waves[0]
    const hotfix = releaseBody({ id: 'hotfix', number: 2, targets: [{ host: canary, path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', r1, 0), w.write(ADMIN, 'release', hotfix, 1), start(w, canary, 'hotfix', 2, PATH_B)])
    const d = decide(s, m, p.waves[1][0], 10)
    assert.equal(d.action === 'apply' && d.release, 'r1')
    const st = releaseStatus(s, m, 'r1')
    assert.equal(st?.waves[0].movedOn, 1)
    assert.equal(st?.state, 'rolling', 'r1 is superseded on the canary only')
  })

  it('finding 8: a gate that the hosts still judged on can no longer meet halts, when a host moved on (chaos seed 16)', () => {
    // five hosts in one wave at 80 %: three healthy, one failed, one moved on to a hotfix
    const r1 = releaseBody({ maxFailures: 1, waves: [{ count: 5, gate: { healthy: 80, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(r1, m)
    const [a, b, c, bad, mover] = p.waves[0]
    const hotfix = releaseBody({ id: 'hotfix', number: 2, targets: [{ host: mover, path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', r1, 0), w.write(ADMIN, 'release', hotfix, 1),
      ...[a, b, c].flatMap(h => [start(w, h, 'r1'), ok(w, h, 'r1')]), ...failed(w, bad, 'r1'), start(w, mover, 'hotfix', 2, PATH_B)])
    const st = releaseStatus(s, m, 'r1')
    assert.equal(st?.waves[0].movedOn, 1)
    assert.equal(st?.state, 'halted', 'three of the four hosts it is judged on can be healthy, four must be: it halts instead of rolling forever')
    assert.equal(decide(s, m, p.waves[1][0], 0).action, 'none')
  })

  it('finding 15: a last wave that can no longer meet its gate, with nothing in flight, ends halted, not rolling forever (chaos seed 1)', () => {
    const r1 = releaseBody({ maxFailures: 1, waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const p = planRelease(r1, m)
    const [bad, ...good] = p.waves[1]
    const w = new Writer()
    const entries = [w.write(ADMIN, 'release', r1, 0), start(w, p.waves[0][0], 'r1'), ok(w, p.waves[0][0], 'r1'), ...good.flatMap(h => [start(w, h, 'r1'), ok(w, h, 'r1')])]
    assert.equal(releaseStatus(fold([...entries, start(w, bad, 'r1')]), m, 'r1')?.state, 'rolling', 'while a host is still applying')
    const st = releaseStatus(fold([...entries, ...failed(new Writer(), bad, 'r1')]), m, 'r1')
    assert.equal(st?.state, 'halted')
    assert.equal(watchExitCode(st!.state), 6)
  })

  it('finding 9: within a feed, a resume after a pause wins whatever their timestamps; across admins, only a named pause is lifted', () => {
    const body = releaseBody()
    const [canary] = planRelease(body, m).waves[0]
    const w = new Writer()
    const rel = w.write(ADMIN, 'release', body, 0)
    const pause = w.write(ADMIN, 'release-control', { release: 'r1', action: 'pause' }, 2000)
    const resume = w.write(ADMIN, 'release-control', { release: 'r1', action: 'resume' }, 1000)
    for (const order of [[rel, pause, resume], [resume, rel, pause]]) {
      assert.equal(decide(fold(order), m, canary, 3000).action, 'apply', 'the resume has the higher seq')
    }
    const other = w.write(ADMIN2, 'release-control', { release: 'r1', action: 'pause' }, 500)
    const s = fold([rel, pause, resume, other])
    assert.equal(decide(s, m, canary, 3000).action, 'wait', 'ADMIN\'s resume had not seen ADMIN2\'s pause')
    assert.deepEqual(controlState(s, m, 'r1').pauses, [`${ADMIN2}:${other.seq}`])
    applyEntry(s, w.write(ADMIN, 'release-control', { release: 'r1', action: 'resume', resumes: controlState(s, m, 'r1').pauses }, 0))
    assert.equal(decide(s, m, canary, 3000).action, 'apply')
  })

  it('authority as of the entry: a revoked admin\'s pause written before the cut holds; its abort after the cut does not count', () => {
    const mm = StaticMembership.of(hosts, [ADMIN, ADMIN2])
    const body = releaseBody()
    const [canary] = planRelease(body, mm).waves[0]
    const w = new Writer()
    const pause = w.write(ADMIN2, 'release-control', { release: 'r1', action: 'pause' }, 0)
    const abort = w.write(ADMIN2, 'release-control', { release: 'r1', action: 'abort' }, 0)
    const s = fold([w.write(ADMIN, 'release', body, 0), pause, abort])
    mm.revoke(ADMIN2, pause.seq)
    const d = decide(s, mm, canary, 0)
    assert.equal(d.action, 'wait')
    assert.match(d.action === 'wait' ? d.reason : '', /paused by AdminB/)
    assert.equal(releaseStatus(s, mm, 'r1')?.state, 'paused')
  })

  it('finding 10: a non-admin release numbered 2^53−1 does not move release numbering', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', releaseBody({ number: 4 }), 0),
      w.write(hosts[2], 'release', releaseBody({ id: 'block', number: Number.MAX_SAFE_INTEGER }), 0)])
    assert.equal(nextReleaseNumber(s, m), 5)
  })

  it('finding 15: a newer release with disjoint targets does not supersede; --watch ends 0 only on done', () => {
    const tags = Object.fromEntries(hosts.map((h, i) => [h, [i % 2 === 0 ? 'web' : 'db']]))
    const mt = StaticMembership.of(hosts, [ADMIN], tags)
    const web = releaseBody({ targets: [{ tag: 'web', path: PATH_A, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 30_000 } }] })
    const db = releaseBody({ id: 'r2', number: 2, targets: [{ tag: 'db', path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }] })
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', web, 0), w.write(ADMIN, 'release', db, 1)])
    const webHosts = planRelease(web, mt).waves[0]
    for (const h of webHosts) { applyEntry(s, start(w, h, 'r1')); applyEntry(s, ok(w, h, 'r1')) }
    const mid = releaseStatus(s, mt, 'r1')
    assert.equal(mid?.state, 'rolling', 'in the middle of the soak')
    assert.equal(watchExitCode(mid?.state ?? 'done'), undefined)
    for (const h of webHosts) applyEntry(s, soaked(w, h, 'r1', 30_000))
    const done = releaseStatus(s, mt, 'r1')
    assert.equal(done?.state, 'done')
    assert.equal(watchExitCode('done'), 0)
    assert.equal(watchExitCode('aborted'), 7)
  })

  it('finding 14: rollback --release goes back to the last release that was healthy, never a halted one', () => {
    const all = { waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0 }
    const good = releaseBody({ id: 'good', number: 1, ...all, targets: [{ path: PATH_B, sources: ['peers'] }] })
    const bad = releaseBody({ id: 'bad', number: 2, ...all, targets: [{ path: '/nix/store/0000000000000000000000000000000b-bad', sources: ['peers'] }] })
    const worse = releaseBody({ id: 'worse', number: 3, ...all })
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', good, 0), ...m.members().flatMap(h => [start(w, h, 'good', 0, PATH_B), ok(w, h, 'good', 0, PATH_B)]),
      w.write(ADMIN, 'release', bad, 1), ...failed(w, hosts[0], 'bad', 2),
      w.write(ADMIN, 'release', worse, 3), ...failed(w, hosts[1], 'worse', 4)])
    const t = rollbackTargets(s, m, 'worse')
    assert.equal(t?.[0].from?.release.body.id, 'good', 'not the halted, never-healthy release just before')
    assert.equal(t?.[0].from?.target.path, PATH_B)
    const none = rollbackTargets(s, m, 'good')
    assert.equal(none?.[0].from, undefined, 'nothing healthy before the first release')
  })
})
