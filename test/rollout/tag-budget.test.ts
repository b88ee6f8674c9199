// Per-tag budgets across releases (issue 14 feature 1, second half): the `budget` entry and who
// may change it, the slot order across concurrent releases (no deadlock when a newer release
// supersedes an older one), the apply deadline freeing a slot held by a host that went silent,
// and at most N hosts of the tag in flight whatever order hosts decide in and whatever entries
// each holds (fast-check, through the real fold and decide).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { applyEntry, budgetLifts, decide, isRolloutError, parseBudget, planRelease, releaseStatus, tagBudgets } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { ADMIN, ADMIN2, PATH_A, PATH_B, StaticMembership, Writer, fold, hostIds, releaseBody } from './helpers.js'

const open = { healthy: 0, soakMs: 0 }
const reasonOf = (d: ReturnType<typeof decide>): string => 'reason' in d ? d.reason : ''

function ok (w: Writer, host: string, release: string, path = PATH_A): Entry[] {
  const attempt = `${host}-${release}`
  return [w.write(host, 'apply-start', { release, path, wave: 0, attempt }), w.write(host, 'apply-ok', { release, path, healthyAt: 1, attempt })]
}

describe('budget entries', () => {
  it('the schema takes a tag selector, a max of at least 1, and named entries; refuses the rest with typed errors', () => {
    assert.deepEqual(parseBudget({ selector: 'tag:db', max: 1 }), { selector: 'tag:db', max: 1 })
    assert.deepEqual(parseBudget({ selector: 'tag:db', lifts: ['AdminA:3'] }), { selector: 'tag:db', lifts: ['AdminA:3'] })
    for (const bad of [{ selector: 'db', max: 1 }, { selector: 'tag:DB!', max: 1 }, { selector: 'tag:db', max: 0 }, { selector: 'tag:db', max: 1.5 }, { selector: 'tag:db', lifts: ['nope'] }, { max: 1 }]) {
      assert.throws(() => parseBudget(bad), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_INVALID'), JSON.stringify(bad))
    }
  })

  it('admins only; a later entry of the same feed replaces, another admin\'s only by naming; of those standing the smallest wins', () => {
    const m = StaticMembership.of(hostIds(2), [ADMIN, ADMIN2])
    const w = new Writer()
    const s = fold([w.write('Host1', 'budget', { selector: 'tag:db', max: 1 }), w.write(ADMIN, 'budget', { selector: 'tag:db', max: 3 })])
    assert.deepEqual(tagBudgets(s.budgets, m).map(b => [b.selector, b.max]), [['tag:db', 3]], 'a member that is not an admin sets nothing')
    applyEntry(s, w.write(ADMIN2, 'budget', { selector: 'tag:db', max: 2 }))
    assert.equal(tagBudgets(s.budgets, m)[0].max, 2, 'two admins disagreeing: the tighter holds')
    applyEntry(s, w.write(ADMIN, 'budget', { selector: 'tag:db', max: 5 }))
    assert.equal(tagBudgets(s.budgets, m)[0].max, 2, 'an admin raising its own does not lift another admin\'s')
    applyEntry(s, w.write(ADMIN, 'budget', { selector: 'tag:db', max: 4, lifts: budgetLifts(s.budgets, m, 'tag:db') }))
    assert.equal(tagBudgets(s.budgets, m)[0].max, 4, 'naming what it saw replaces it')
    applyEntry(s, w.write(ADMIN2, 'budget', { selector: 'tag:db', lifts: budgetLifts(s.budgets, m, 'tag:db') }))
    assert.deepEqual(tagBudgets(s.budgets, m), [], 'a clear naming them all')
  })
})

describe('a tag budget across releases', () => {
  const hosts = hostIds(6)
  const tags = Object.fromEntries(hosts.map((h, i) => [h, [i < 4 ? 'db' : 'web']]))
  const m = StaticMembership.of(hosts, [ADMIN], tags)
  const db = hosts.slice(0, 4)
  const r1 = releaseBody({ id: 'r1', number: 1, targets: [{ tag: 'db', path: PATH_A, sources: ['peers'] }], waves: [{ percent: 100, gate: open }], maxFailures: 10 })
  const r2 = releaseBody({ id: 'r2', number: 2, targets: [{ path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: open }], maxFailures: 10 })

  it('one db host in flight fleet-wide, and a newer release that supersedes an older one mid-way never deadlocks', () => {
    const w = new Writer()
    const s = fold([w.write(ADMIN, 'budget', { selector: 'tag:db', max: 1 }), w.write(ADMIN, 'release', r1)])
    const [first] = planRelease(r1, m).slots
    const starting = db.filter(h => decide(s, m, h, 0).action === 'apply')
    assert.deepEqual(starting, [first], 'one db host starts r1')
    for (const e of ok(w, first, 'r1')) applyEntry(s, e)
    applyEntry(s, w.write(ADMIN, 'release', r2))
    const done = new Set<string>()
    for (let round = 0; round < 20; round++) {
      const go = [...hosts, ADMIN].filter(h => !done.has(h) && decide(s, m, h, 0).action === 'apply')
      assert.ok(go.filter(h => db.includes(h)).length <= 1, `${go.length} db hosts start at once`)
      if (go.length === 0) break
      for (const h of go) {
        const d = decide(s, m, h, 0)
        if (d.action === 'apply') for (const e of ok(w, h, d.release, d.path)) applyEntry(s, e)
        if (d.action === 'apply' && d.release === 'r2') done.add(h)
      }
    }
    assert.deepEqual([...done].sort(), [...hosts, ADMIN].sort(), 'every host reached r2')
    const lead = planRelease(r2, m).slots.find(h => db.includes(h)) as string
    const waiting = fold([w.write(ADMIN, 'budget', { selector: 'tag:db', max: 1 }), w.write(ADMIN, 'release', r2), w.write(lead, 'apply-start', { release: 'r2', path: PATH_B, wave: 0, attempt: 'a' })])
    for (const h of db.filter(h => h !== lead)) assert.match(reasonOf(decide(waiting, m, h, 0)), /^budget tag:db: 1 other host\(s\) tagged db ahead of this one may be in flight \(.*\), at most 1 at once fleet-wide$/)
    for (const h of hosts.slice(4)) assert.equal(decide(waiting, m, h, 0).action, 'apply', 'web hosts are not held')
    assert.deepEqual(releaseStatus(waiting, m, 'r2')?.budgets?.map(b => [b.selector, b.max, b.inFlight]), [['tag:db', 1, [lead]]])
  })

  it('a host that started and went silent holds the slot only until it is declared past the apply deadline', () => {
    const w = new Writer()
    const [first, second] = planRelease(r1, m).slots
    const s = fold([w.write(ADMIN, 'budget', { selector: 'tag:db', max: 1 }), w.write(ADMIN, 'release', r1), w.write(first, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'a' })])
    assert.equal(decide(s, m, second, 0).action, 'wait')
    applyEntry(s, w.write(ADMIN, 'overdue', { release: 'r1', wave: 0, hosts: [first], why: 'deadline' }))
    assert.equal(decide(s, m, second, 0).action, 'apply')
  })

  it('the same holds for a release\'s own --max-in-flight', () => {
    const w = new Writer()
    const body = { ...r1, budget: { maxInFlight: 1 } }
    const [first, second] = planRelease(body, m).slots
    const s = fold([w.write(ADMIN, 'release', body), w.write(first, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'a' })])
    assert.match(reasonOf(decide(s, m, second, 0)), /^budget: 1 hosts before this one/)
    applyEntry(s, w.write(ADMIN, 'overdue', { release: 'r1', wave: 0, hosts: [first], why: 'deadline' }))
    assert.equal(decide(s, m, second, 0).action, 'apply')
  })

  /**
   * Two releases (the second published at any point), a budget of N on tag db; hosts decide in
   * any order, each on any subset of the log (the releases, the budget and its own feed always
   * held), a host in flight only finishes (ok, soaked or failed) and never starts another apply
   * meanwhile, as its agent does: the db hosts in flight in the whole log never exceed N.
   */
  it('never more than N db hosts in flight across two concurrent releases (fast-check)', () => {
    const step = fc.record({ host: fc.nat(), finish: fc.boolean(), how: fc.nat(2), held: fc.array(fc.boolean(), { maxLength: 64 }) })
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 3, max: 8 }), fc.boolean(), fc.nat(40), fc.boolean(), fc.array(step, { minLength: 1, maxLength: 80 }), (n, size, soak, publishAt, overlap, steps) => {
      const ids = hostIds(size)
      const tagsOf = Object.fromEntries(ids.map((h, i) => [h, [i % 3 === 2 ? 'web' : 'db']]))
      const view = StaticMembership.of(ids, [ADMIN], tagsOf)
      const gate = { healthy: 0, soakMs: soak ? 1000 : 0 }
      const a = releaseBody({ id: 'r1', number: 1, targets: [{ tag: 'db', path: PATH_A, sources: ['peers'] }], waves: [{ count: 1, gate }, { percent: 100, gate }], maxFailures: 100, quarantineAfter: 100 })
      const b = releaseBody({ id: 'r2', number: 2, targets: [{ ...(overlap ? {} : { host: ids[0] }), path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate }], maxFailures: 100, quarantineAfter: 100 })
      const w = new Writer()
      const log: Entry[] = [w.write(ADMIN, 'budget', { selector: 'tag:db', max: n }), w.write(ADMIN, 'release', a)]
      const flying = new Map<string, { release: string, path: string, attempt: string, soaking: boolean }>()
      steps.forEach((st, i) => {
        if (i === publishAt) log.push(w.write(ADMIN, 'release', b))
        const h = ids[st.host % size]
        const f = flying.get(h)
        if (f !== undefined) {
          if (!st.finish) return
          const { release, path, attempt } = f
          if (st.how === 0) {
            log.push(w.write(h, 'apply-failed', { release, path, reason: 'x', attempt }), w.write(h, 'rollback', { release, from: path, to: PATH_B, ok: true, attempt }))
            flying.delete(h)
          } else if (f.soaking) {
            log.push(w.write(h, 'soaked', { release, path, attempt, soakMs: 1000 }))
            flying.delete(h)
          } else {
            log.push(w.write(h, 'apply-ok', { release, path, healthyAt: 1, attempt }))
            if (soak) f.soaking = true
            else flying.delete(h)
          }
          return
        }
        const seen = log.filter((e, j) => e.feed === ADMIN || e.feed === h || st.held[j % Math.max(1, st.held.length)] === true)
        const d = decide(fold(seen), view, h, 0)
        if (d.action !== 'apply') return
        const attempt = `${h}-${log.length}`
        log.push(w.write(h, 'apply-start', { release: d.release, path: d.path, wave: d.wave, attempt }))
        flying.set(h, { release: d.release, path: d.path, attempt, soaking: false })
        const db = [...flying.keys()].filter(x => tagsOf[x].includes('db'))
        assert.ok(db.length <= n, `${db.length} db hosts in flight, budget ${n}`)
      })
    }), { numRuns: 300 })
  })
})
