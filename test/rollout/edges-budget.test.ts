// Ordering edges and the disruption budget of a release (issue 14 features 2 and 1): a release
// waiting for another, a wave waiting for the tagged hosts of its release, a plan whose edge can
// never be met, and at most N hosts in flight however the hosts' decisions and the entries they
// hold interleave (fast-check, through the real fold and decide).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { applyEntry, decide, edgeDeadlock, isRolloutError, parseRelease, planRelease, releaseStatus } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import type { ReleaseBody } from '../../protocols/rollout/index.js'
import { ADMIN, PATH_A, PATH_B, StaticMembership, Writer, fold, hostIds, releaseBody } from './helpers.js'

const noSoak = { healthy: 100, soakMs: 0 }
const open = { healthy: 0, soakMs: 0 }

function ok (w: Writer, host: string, release: string, path = PATH_A): Entry[] {
  const attempt = `${host}-${release}`
  return [w.write(host, 'apply-start', { release, path, wave: 0, attempt }), w.write(host, 'apply-ok', { release, path, healthyAt: 1, attempt })]
}

const reasonOf = (d: ReturnType<typeof decide>): string => 'reason' in d ? d.reason : ''

describe('edge and budget schema', () => {
  it('accepts after, wave after and one budget; refuses malformed ones with typed errors', () => {
    const b = parseRelease(releaseBody({ id: 'r2', number: 2, after: 'r1', budget: { maxInFlightPercent: 10 }, waves: [{ percent: 100, after: { tag: 'db' }, gate: noSoak }] }))
    assert.deepEqual([b.after, b.budget, b.waves[0].after], ['r1', { maxInFlightPercent: 10 }, { tag: 'db' }])
    const bad: Array<Partial<ReleaseBody>> = [
      { after: 'r1' },
      { after: 'not an id' },
      { budget: {} },
      { budget: { maxInFlight: 1, maxInFlightPercent: 5 } },
      { budget: { maxInFlight: 0 } },
      { budget: { maxInFlightPercent: 101 } },
      { budget: { maxInFlight: 1.5 } },
      { waves: [{ percent: 100, after: { tag: 'not a tag!' }, gate: noSoak }] },
      { waves: [{ percent: 100, after: 'tag:db' as unknown as { tag: string }, gate: noSoak }] }
    ]
    for (const over of bad) assert.throws(() => parseRelease(releaseBody(over)), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_INVALID'), JSON.stringify(over))
  })
})

describe('--after RELEASE', () => {
  const hosts = hostIds(6)
  const tags = Object.fromEntries(hosts.map((h, i) => [h, [i < 3 ? 'db' : 'web']]))
  const m = StaticMembership.of(hosts, [ADMIN], tags)
  const db = hosts.slice(0, 3)
  const web = hosts.slice(3)
  const r1 = releaseBody({ id: 'r1', number: 1, targets: [{ tag: 'db', path: PATH_A, sources: ['peers'] }], waves: [{ count: 1, gate: noSoak }, { percent: 100, gate: noSoak }] })
  const r2 = releaseBody({ id: 'r2', number: 2, after: 'r1', targets: [{ tag: 'web', path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: noSoak }] })

  it('waits, with the reason, until the release it follows is complete; then applies', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', r1), w.write(ADMIN, 'release', r2)])
    const d = decide(s, m, web[0], 0)
    assert.equal(d.action, 'wait')
    assert.match(reasonOf(d), /waits for release r1 to complete: its wave 1 does not meet its gate/)
    const [canary] = planRelease(r1, m).waves[0]
    applyEntry(s, w.write(canary, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'c' }))
    for (const h of db.filter(h => h !== canary)) for (const e of ok(w, h, 'r1')) applyEntry(s, e)
    assert.match(reasonOf(decide(s, m, web[0], 0)), /waits for release r1/)
    assert.match(releaseStatus(s, m, 'r2')?.reason ?? '', /^waits for release r1 to complete: its wave 1 does not meet its gate$/, 'status says what it waits for')
    applyEntry(s, w.write(canary, 'apply-ok', { release: 'r1', path: PATH_A, healthyAt: 1, attempt: 'c' }))
    assert.equal(releaseStatus(s, m, 'r1')?.state, 'done')
    for (const h of web) assert.equal(decide(s, m, h, 0).action, 'apply', h)
  })

  it('never completes after an abort or a halt: it waits with that reason', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', r1), w.write(ADMIN, 'release', r2), w.write(ADMIN, 'release-control', { release: 'r1', action: 'abort' })])
    assert.match(reasonOf(decide(s, m, web[0], 0)), /waits for release r1, which was aborted: it never completes/)
    const t = fold([w.write(ADMIN, 'release', { ...r1, maxFailures: 0 }), w.write(ADMIN, 'release', r2)])
    const [canary] = planRelease(r1, m).waves[0]
    applyEntry(t, w.write(canary, 'apply-failed', { release: 'r1', path: PATH_A, reason: 'x' }))
    assert.match(reasonOf(decide(t, m, web[0], 0)), /waits for release r1, which halted/)
    const v = fold([w.write(ADMIN, 'release', { ...r1, waves: [{ percent: 100, gate: open }] }), w.write(ADMIN, 'release', r2),
      w.write(db[0], 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'x' })])
    assert.match(reasonOf(decide(v, m, web[0], 0)), /waits for release r1 to complete: 1 of its hosts still applying or soaking/, 'every gate met is not complete while a host is in flight')
    const u = fold([w.write(ADMIN, 'release', { ...r2, after: 'r9' })])
    assert.match(reasonOf(decide(u, m, web[0], 0)), /waits for release r9, which this host does not hold/)
  })

  it('a waiting release is not active: the hosts it shares with the release it follows finish that one first', () => {
    const same = releaseBody({ id: 'r2', number: 2, after: 'r1', targets: [{ tag: 'db', path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: noSoak }] })
    const w = new Writer()
    const [canary, ...rest] = planRelease(r1, m).waves.flat()
    const s = fold([w.write(ADMIN, 'release', r1), w.write(ADMIN, 'release', same), ...ok(w, canary, 'r1')])
    for (const h of rest) {
      const d = decide(s, m, h, 0)
      assert.deepEqual(d.action === 'apply' && [d.release, d.path], ['r1', PATH_A], h)
      for (const e of ok(w, h, 'r1')) applyEntry(s, e)
    }
    for (const h of db) assert.deepEqual(decide(s, m, h, 0).release, 'r2', h)
    assert.equal(decide(s, m, db[0], 0).action, 'apply')
  })
})

describe('--after tag:T', () => {
  const hosts = hostIds(8)
  const tags = Object.fromEntries(hosts.map((h, i) => [h, [i < 2 ? 'db' : 'web']]))
  const m = StaticMembership.of(hosts, [ADMIN], tags)
  const db = hosts.slice(0, 2)
  const web = hosts.slice(2)
  const body = releaseBody({ waves: [{ percent: 100, after: { tag: 'db' }, gate: { healthy: 100, soakMs: 30_000 } }], maxFailures: 8 })

  it('the wave\'s other hosts wait until every db host of this release is healthy; the db hosts do not wait', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body)])
    for (const h of db) assert.equal(decide(s, m, h, 0).action, 'apply', h)
    const d = decide(s, m, web[0], 0)
    assert.equal(d.action, 'wait')
    assert.match(reasonOf(d), /wave 1 waits for every host tagged db: 0\/2 healthy or out of the gate/)
    assert.match(releaseStatus(s, m, 'r1')?.waves[0].waits ?? '', /; wave 1 waits for every host tagged db: 0\/2/)
    for (const h of db) for (const e of ok(w, h, 'r1')) applyEntry(s, e)
    assert.match(reasonOf(decide(s, m, web[0], 0)), /0\/2/, 'applied is not healthy: the gate has a soak')
    applyEntry(s, w.write(db[0], 'soaked', { release: 'r1', path: PATH_A, attempt: `${db[0]}-r1`, soakMs: 30_000 }))
    assert.match(reasonOf(decide(s, m, web[0], 0)), /1\/2/)
    applyEntry(s, w.write(ADMIN, 'pin', { host: db[1], path: PATH_B, reason: 'x' }))
    assert.match(reasonOf(decide(s, m, web[0], 0)), /1\/2/, 'a pin does not stop a host that already started')
    applyEntry(s, w.write(db[1], 'soaked', { release: 'r1', path: PATH_A, attempt: `${db[1]}-r1`, soakMs: 30_000 }))
    for (const h of web) assert.equal(decide(s, m, h, 0).action, 'apply', h)
  })

  it('the held hosts are waiting, not silent: while the edge holds only a silent db host is declared, and then the edge lets the wave go', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', { ...body, waves: [{ ...body.waves[0], waitOfflineMs: 60_000 }] })])
    for (const e of ok(w, db[0], 'r1')) applyEntry(s, e)
    applyEntry(s, w.write(db[0], 'soaked', { release: 'r1', path: PATH_A, attempt: `${db[0]}-r1`, soakMs: 30_000 }))
    // db[1] never writes: without a declaration the edge would hold the web hosts for good
    const d = decide(s, m, web[0], 0)
    assert.equal(d.action, 'wait')
    assert.equal(d.action === 'wait' ? d.timer?.key : undefined, 'r1/silent/0/edge')
    const a = decide(s, m, web[0], 0, { expired: new Set(['r1/silent/0/edge']) })
    assert.deepEqual(a.action === 'attest' && a.body, { release: 'r1', wave: 0, hosts: [db[1]], why: 'silent' }, 'the db host only, never the web hosts the edge holds')
    applyEntry(s, w.write(web[0], 'overdue', a.action === 'attest' ? a.body : {}))
    for (const h of web) assert.equal(decide(s, m, h, 0).action, 'apply', h)
    // the web hosts' own silence is judged afresh: the edge's expired key does not declare them
    assert.equal(decide(s, m, db[0], 0, { expired: new Set(['r1/silent/0/edge']) }).action === 'attest', false)
  })

  it('a plan whose tagged hosts sit in a later wave than one its edge holds is refused', () => {
    const bad = releaseBody({ waves: [{ hosts: [web[0]], after: { tag: 'db' }, gate: noSoak }, { percent: 100, gate: open }] })
    assert.match(edgeDeadlock(planRelease(bad, m), bad) ?? '', /wave 1 waits for every host tagged db, but .* is in wave 2, which opens only after wave 1/)
    const fine = releaseBody({ waves: [{ tag: 'db', gate: noSoak }, { percent: 100, after: { tag: 'db' }, gate: open }] })
    assert.equal(edgeDeadlock(planRelease(fine, m), fine), undefined)
  })
})

describe('--max-in-flight', () => {
  const hosts = hostIds(5)
  const m = StaticMembership.of(hosts, [ADMIN])
  const body = releaseBody({ budget: { maxInFlight: 1 }, waves: [{ percent: 100, gate: open }], maxFailures: 10, quarantineAfter: 10 })
  const order = planRelease(body, m).waves[0]

  it('a host waits for its slot: the next in plan order starts once the one before finished', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', body)])
    assert.equal(decide(s, m, order[0], 0).action, 'apply')
    for (const h of order.slice(1)) assert.match(reasonOf(decide(s, m, h, 0)), /budget: 1 hosts before this one in the plan may be in flight, at most 1 at once/)
    applyEntry(s, w.write(order[0], 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'a' }))
    assert.deepEqual(releaseStatus(s, m, 'r1')?.budget, { inFlight: 1, max: 1 })
    applyEntry(s, w.write(order[0], 'apply-ok', { release: 'r1', path: PATH_A, healthyAt: 1, attempt: 'a' }))
    assert.deepEqual(releaseStatus(s, m, 'r1')?.budget, { inFlight: 0, max: 1 })
    assert.equal(decide(s, m, order[1], 0).action, 'apply')
    assert.equal(decide(s, m, order[2], 0).action, 'wait')
  })

  it('an edge and a budget in one wave never wait on each other: the tagged hosts take the first slots', () => {
    const ids = hostIds(6)
    const rel = releaseBody({ budget: { maxInFlight: 1 }, waves: [{ percent: 100, after: { tag: 'db' }, gate: noSoak }], maxFailures: 0 })
    // the db hosts are not first in plan order (tags do not move a host in a percent wave)
    const planned = planRelease(rel, StaticMembership.of(ids, [ADMIN])).waves[0]
    const view = StaticMembership.of(ids, [ADMIN], Object.fromEntries(planned.map((h, i) => [h, [i === 2 || i === 4 ? 'db' : 'web']])))
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', rel)])
    const done: string[] = []
    for (let round = 0; round < 10 && done.length < 7; round++) {
      const starting = [...ids, ADMIN].filter(h => decide(s, view, h, 0).action === 'apply')
      assert.ok(starting.length <= 1, `${starting.length} start at once`)
      for (const h of starting) { for (const e of ok(w, h, 'r1')) applyEntry(s, e); done.push(h) }
    }
    assert.equal(done.length, 7, 'every host applied it, one at a time')
    assert.deepEqual(done.slice(0, 2).map(h => view.tagsOf(h)), [['db'], ['db']], 'the db hosts first')
  })

  it('a percentage is of the plan\'s hosts, rounded up', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'release', { ...body, budget: { maxInFlightPercent: 30 } })])
    // 30 % of 6 plan hosts (the admin is a member too): 2
    assert.deepEqual(order.map(h => decide(s, m, h, 0).action), ['apply', 'apply', 'wait', 'wait', 'wait', 'wait'])
  })

  /**
   * Hosts decide in any order, each on any subset of the log (its own feed always whole, as the
   * store keeps it), and any host in flight may finish (ok, soaked or failed) at any point: the
   * number in flight in the whole log never exceeds N.
   */
  it('never more than N in flight, whatever order hosts decide in and whatever entries each holds (fast-check)', () => {
    const step = fc.record({ host: fc.nat(), finish: fc.boolean(), how: fc.nat(2), held: fc.array(fc.boolean(), { maxLength: 64 }) })
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 7 }), fc.boolean(), fc.array(step, { minLength: 1, maxLength: 60 }), (n, size, soak, steps) => {
      const ids = hostIds(size)
      const view = StaticMembership.of(ids, [ADMIN])
      const rel = releaseBody({ budget: { maxInFlight: n }, waves: [{ count: 1, gate: { healthy: 0, soakMs: soak ? 1000 : 0 } }, { percent: 100, gate: { healthy: 0, soakMs: soak ? 1000 : 0 } }], maxFailures: 100, quarantineAfter: 100 })
      const w = new Writer()
      const log: Entry[] = [w.write(ADMIN, 'release', rel)]
      // host → its attempt in flight, and whether its apply-ok is written (soaking)
      const flying = new Map<string, { attempt: string, soaking: boolean }>()
      for (const st of steps) {
        const h = ids[st.host % size]
        const f = flying.get(h)
        if (st.finish && f !== undefined) {
          const { attempt } = f
          if (st.how === 0) {
            log.push(w.write(h, 'apply-failed', { release: 'r1', path: PATH_A, reason: 'x', attempt }), w.write(h, 'rollback', { release: 'r1', from: PATH_A, to: PATH_B, ok: true, attempt }))
            flying.delete(h)
          } else if (f.soaking) {
            log.push(w.write(h, 'soaked', { release: 'r1', path: PATH_A, attempt, soakMs: 1000 }))
            flying.delete(h)
          } else {
            log.push(w.write(h, 'apply-ok', { release: 'r1', path: PATH_A, healthyAt: 1, attempt }))
            if (soak) f.soaking = true
            else flying.delete(h)
          }
          continue
        }
        const seen = log.filter((e, i) => i === 0 || e.feed === h || st.held[i % Math.max(1, st.held.length)] === true)
        const d = decide(fold(seen), view, h, 0)
        if (d.action !== 'apply') continue
        const attempt = `${h}-${log.length}`
        log.push(w.write(h, 'apply-start', { release: 'r1', path: PATH_A, wave: d.wave, attempt }))
        flying.set(h, { attempt, soaking: false })
        assert.ok(flying.size <= n, `${flying.size} in flight, budget ${n}`)
      }
    }), { numRuns: 300 })
  })
})
