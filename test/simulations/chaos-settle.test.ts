// The chaos scenario's settle check (simulations/chaos/settle.ts) tells a release that waits only
// on hosts killed for good, in a wave with no waitOfflineMs, from a stuck one: on the real fold
// and status, the shape of `chaos --seed 3 --hosts 6` (an overlapping release whose canary died
// before it was published, its other host moved on to a newer release) is waiting, and no host's
// decision, whatever timer ran out, moves it; the same log is stuck when the wave has a
// waitOfflineMs (an overdue entry must then come), when the offline host is alive, when it died
// mid-apply (the apply deadline then runs), or when another host of the wave failed.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { decide, planRelease, releaseStatus, type ReleaseBody } from '../../protocols/rollout/index.js'
import { waitsOnDead } from '../../simulations/chaos/settle.js'
import { ADMIN, PATH_A, StaticMembership, Writer, fold, hostIds, movedOnLog } from '../rollout/helpers.js'

const [A, B, C] = hostIds(3)
const m = StaticMembership.of([A, B, C], [ADMIN])
const NOW = 10 ** 9
const EVERY_TIMER = new Set(['r1/silent/0', 'r1/silent/1', 'r1/deadline/0/0', 'r1/deadline/0/1'])

/** the overlapping release of a chaos run: two hosts, a canary then the rest, no waitOfflineMs unless given */
function overlap (waitOfflineMs?: number): ReleaseBody {
  const gate = { healthy: 100, soakMs: 0 }
  const extra = waitOfflineMs !== undefined ? { waitOfflineMs } : {}
  return { id: 'r1', number: 1, targets: [A, B].map((host) => ({ host, path: PATH_A, sources: ['peers'] })), waves: [{ count: 1, gate, ...extra }, { percent: 100, gate, ...extra }], maxFailures: 0 }
}


describe('chaos settle: waiting on hosts killed for good vs stuck', () => {
  it('seed 3\'s shape: the release waits for its dead canary, shown offline, and no decision of any host moves it', () => {
    const body = overlap()
    const { entries, canary, other } = movedOnLog(body, m)
    const s = fold(entries)
    const status = releaseStatus(s, m, 'r1', (p) => p !== canary)
    assert.ok(status !== undefined)
    assert.equal(status.state, 'rolling')
    assert.deepEqual(status.waves.map((w) => w.hostStates.map((x) => x.state)), [['offline'], ['moved-on']])
    assert.deepEqual(waitsOnDead(status, body, new Set([canary])), [canary])
    for (const h of [A, B, C, ADMIN]) {
      const d = decide(s, m, h, NOW, { expired: EVERY_TIMER })
      assert.notEqual(d.action, 'attest', `${h} attests nothing: ${JSON.stringify(d)}`)
      assert.ok(!(d.action === 'apply' && d.release === 'r1' && h !== canary), `${h} does not apply r1`)
      assert.ok(('timer' in d ? d.timer : undefined) === undefined, `${h} runs no timer for it`)
    }
    void other
  })

  it('the same log is stuck when the wave waits a while for offline hosts: their overdue entry must come', () => {
    const body = overlap(2000)
    const { entries, canary, other } = movedOnLog(body, m)
    const s = fold(entries)
    const status = releaseStatus(s, m, 'r1', (p) => p !== canary) as NonNullable<ReturnType<typeof releaseStatus>>
    assert.equal(waitsOnDead(status, body, new Set([canary])), undefined)
    const d = decide(s, m, other, NOW, { expired: new Set(['r1/silent/0']) })
    assert.deepEqual(d.action === 'attest' && d.body, { release: 'r1', wave: 0, hosts: [canary], why: 'silent' })
  })

  it('is stuck when the offline host is alive, when the dead one started its apply, or when another host of the wave failed', () => {
    const body = overlap()
    const { entries, canary } = movedOnLog(body, m)
    const online = (p: string): boolean => p !== canary
    const s = fold(entries)
    assert.equal(waitsOnDead(releaseStatus(s, m, 'r1', online)!, body, new Set()), undefined, 'offline is not dead')
    assert.equal(waitsOnDead(releaseStatus(s, m, 'r1')!, body, new Set([canary])), undefined, 'shown pending, not offline: the operator cannot see it')

    const started = movedOnLog(body, m, (w, c) => [w.write(c, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'c1' })])
    const s2 = fold(started.entries)
    assert.equal(waitsOnDead(releaseStatus(s2, m, 'r1', online)!, body, new Set([canary])), undefined, 'applying: the apply deadline declares it')
    assert.equal(decide(s2, m, started.other, NOW, { expired: new Set(['r1/deadline/0/1']) }).action, 'attest')

  })

  it('a failed host beside the dead one leaves it waiting; an unhealthy one, which may recover, leaves it stuck', () => {
    // wave 1: two hosts, one must be healthy; one failure is within the budget
    const wide: ReleaseBody = { ...overlap(), targets: [A, B, C].map((host) => ({ host, path: PATH_A, sources: ['peers'] })), waves: [{ count: 2, gate: { healthy: 50, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 1 }
    const [dead, other] = planRelease(wide, m).waves[0]
    const online = (p: string): boolean => p !== dead
    const w = new Writer()
    const release = w.write(ADMIN, 'release', wide)
    const start = w.write(other, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'o1' })
    const failed = fold([release, start, w.write(other, 'apply-failed', { release: 'r1', path: PATH_A, reason: 'unit failed', attempt: 'o1' })])
    const st = releaseStatus(failed, m, 'r1', online)!
    assert.equal(st.state, 'rolling')
    assert.deepEqual(waitsOnDead(st, wide, new Set([dead])), [dead])

    const v = new Writer()
    const unhealthy = fold([v.write(ADMIN, 'release', wide), v.write(other, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'o1' }),
      v.write(other, 'apply-ok', { release: 'r1', path: PATH_A, healthyAt: 1, attempt: 'o1' }), v.write(other, 'health', { release: 'r1', path: PATH_A, ok: false, check: 'web', output: 'HTTP 500' })])
    const su = releaseStatus(unhealthy, m, 'r1', online)!
    assert.deepEqual([su.state, su.waves[0].hostStates.find((x) => x.host === other)?.state], ['rolling', 'unhealthy'])
    assert.equal(waitsOnDead(su, wide, new Set([dead])), undefined)
  })
})
