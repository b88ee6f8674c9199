// A host that moved on to a newer release keeps its place in line for the older one's overdue
// entries (overdue.ts: every plan host that is not declared has one). Found reading the chaos
// trail of `--seed 3 --hosts 6`: a two-host release whose canary died before it held it, its other
// host taken by a newer release. With a waitOfflineMs (or an apply deadline for a canary that died
// mid-apply) the release's own rules say the canary is declared and the release ends; but the only
// host left to declare it decided on the newer release alone and never did, so it rolled for good.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { applyEntry, decide, releaseStatus, type ReleaseBody } from '../../protocols/rollout/index.js'
import { ADMIN, PATH_A, StaticMembership, fold, hostIds, movedOnLog } from './helpers.js'

const [A, B, C] = hostIds(3)
const m = StaticMembership.of([A, B, C], [ADMIN])
const gate = { healthy: 100, soakMs: 0 }

function two (over: Partial<ReleaseBody> = {}): ReleaseBody {
  return { id: 'r1', number: 1, targets: [A, B].map((host) => ({ host, path: PATH_A, sources: ['peers'] })), waves: [{ count: 1, gate, waitOfflineMs: 2000 }, { percent: 100, gate, waitOfflineMs: 2000 }], maxFailures: 0, ...over }
}


describe('overdue entries for a release its other hosts moved on from', () => {
  it('a moved-on host runs the wave\'s silent timer and declares the dead canary; the release is then done', () => {
    const { w, entries, canary, other } = movedOnLog(two(), m)
    const s = fold(entries)
    assert.equal(releaseStatus(s, m, 'r1', (p) => p !== canary)?.state, 'rolling')
    const d = decide(s, m, other, 0)
    assert.equal(d.release, 'r2', 'it decides on the newer release')
    assert.deepEqual('timer' in d ? d.timer : undefined, { key: 'r1/silent/0', ms: 5000 })
    const a = decide(s, m, other, 0, { expired: new Set(['r1/silent/0']) })
    assert.deepEqual(a.action === 'attest' && a.body, { release: 'r1', wave: 0, hosts: [canary], why: 'silent' })
    if (a.action === 'attest') applyEntry(s, w.write(other, 'overdue', a.body))
    assert.equal(releaseStatus(s, m, 'r1', (p) => p !== canary)?.state, 'done')
    const after = decide(s, m, other, 0)
    assert.equal('timer' in after ? after.timer : undefined, undefined, 'nothing left to tend')
  })

  it('a moved-on host declares a canary that died mid-apply past the deadline; the release halts', () => {
    const { w, entries, canary, other } = movedOnLog(two({ applyDeadlineMs: 60_000 }), m, (x, c) => [x.write(c, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'c1' })])
    const s = fold(entries)
    const a = decide(s, m, other, 0, { expired: new Set(['r1/deadline/0/1']) })
    assert.deepEqual(a.action === 'attest' && a.body, { release: 'r1', wave: 0, hosts: [canary], why: 'deadline' })
    if (a.action === 'attest') applyEntry(s, w.write(other, 'overdue', a.body))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'halted')
  })

  it('without a waitOfflineMs the wave waits for its silent canary: no host declares it', () => {
    const { entries, canary } = movedOnLog(two({ waves: [{ count: 1, gate }, { percent: 100, gate }] }), m)
    const s = fold(entries)
    for (const h of [A, B, C, ADMIN]) {
      const d = decide(s, m, h, 0, { expired: new Set(['r1/silent/0', 'r1/silent/1']) })
      assert.notEqual(d.action, 'attest', h)
      assert.equal('timer' in d ? d.timer : undefined, undefined, h)
    }
    assert.equal(releaseStatus(s, m, 'r1', (p) => p !== canary)?.waves[0].hostStates[0].state, 'offline')
  })
})
