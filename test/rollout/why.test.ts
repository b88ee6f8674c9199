// `release why` (issue 14 feature 10) and the pure part of `release plan` (feature 9): why()
// gives decide()'s own decision with every reason it rests on, for random logs (fast-check); the
// cited entries name what holds a host; the plan preview shows what the decisions then do.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { applyEntry, currentPaths, decide, planRelease, previewRelease, why } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { summariseDiff } from '../../node/deploy/plan.js'
import { ADMIN, PATH_A, PATH_B, StaticMembership, Writer, fold, hostIds, releaseBody } from './helpers.js'

const hosts = hostIds(6)
const tags = Object.fromEntries(hosts.map((h, i) => [h, [i < 3 ? 'db' : 'web']]))
const m = StaticMembership.of(hosts, [ADMIN], tags)
const open = { healthy: 0, soakMs: 0 }

describe('release why', () => {
  /** Random logs of two releases with budgets, edges, pins, quarantines, controls and outcomes. */
  it('gives decide()\'s decision for every host of random logs, and every reason it gives is one of its causes (fast-check)', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('out' as const), h: fc.nat(5), r: fc.nat(1), kind: fc.constantFrom('apply-start', 'apply-ok', 'apply-failed', 'soaked', 'rollback') }),
      fc.record({ k: fc.constant('pin' as const), h: fc.nat(5), lift: fc.boolean() }),
      fc.record({ k: fc.constant('quarantine' as const), path: fc.boolean() }),
      fc.record({ k: fc.constant('budget' as const), max: fc.integer({ min: 1, max: 2 }) }),
      fc.record({ k: fc.constant('ctl' as const), r: fc.nat(1), action: fc.constantFrom('pause', 'resume', 'abort') }),
      fc.record({ k: fc.constant('overdue' as const), h: fc.nat(5), r: fc.nat(1), why: fc.constantFrom('silent', 'deadline') })
    )
    fc.assert(fc.property(fc.boolean(), fc.boolean(), fc.nat(2), fc.array(op, { maxLength: 30 }), (after, edge, soak, ops) => {
      const gate = { healthy: 100, soakMs: soak * 1000 }
      const r1 = releaseBody({ id: 'r1', number: 1, budget: { maxInFlight: 2 }, waves: [{ count: 1, gate }, { percent: 100, gate, ...(edge ? { after: { tag: 'db' } } : {}) }], maxFailures: 3 })
      const r2 = releaseBody({ id: 'r2', number: 2, targets: [{ tag: 'web', path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: open }], maxFailures: 3, ...(after ? { after: 'r1' } : {}) })
      const w = new Writer()
      const log: Entry[] = [w.write(ADMIN, 'release', r1), w.write(ADMIN, 'release', r2)]
      for (const o of ops) {
        const rel = ['r1', 'r2'][('r' in o ? o.r : 0)]
        const path = rel === 'r1' ? PATH_A : PATH_B
        if (o.k === 'out') {
          const h = hosts[o.h]
          const body = o.kind === 'rollback' ? { release: rel, from: path, to: PATH_A, ok: true, attempt: 'a' } : o.kind === 'apply-start' ? { release: rel, path, wave: 0, attempt: 'a' } : o.kind === 'apply-ok' ? { release: rel, path, healthyAt: 1, attempt: 'a' } : o.kind === 'soaked' ? { release: rel, path, attempt: 'a', soakMs: 1000 } : { release: rel, path, reason: 'x', attempt: 'a' }
          log.push(w.write(h, o.kind, body))
        } else if (o.k === 'pin') log.push(o.lift ? w.write(ADMIN, 'unpin', { host: hosts[o.h] }) : w.write(ADMIN, 'pin', { host: hosts[o.h], path: PATH_B, reason: 'hold' }))
        else if (o.k === 'quarantine') log.push(w.write(ADMIN, 'quarantine', { path: o.path ? PATH_A : PATH_B, reason: 'bad' }))
        else if (o.k === 'budget') log.push(w.write(ADMIN, 'budget', { selector: 'tag:db', max: o.max }))
        else if (o.k === 'ctl') log.push(w.write(ADMIN, 'release-control', { release: rel, action: o.action }))
        else log.push(w.write(ADMIN, 'overdue', { release: rel, wave: 0, hosts: [hosts[o.h]], why: o.why }))
      }
      const s = fold(log)
      for (const h of [...hosts, ADMIN]) {
        const d = decide(s, m, h, 0)
        for (const rel of ['r1', 'r2']) {
          const y = why(s, m, h, rel, 0)
          assert.deepEqual(y.decision, d, h)
          if ('reason' in d) assert.ok(y.causes.some(c => c.text === d.reason), `${d.reason} is cited: ${JSON.stringify(y.causes)}`)
          assert.ok(y.causes.length > 0)
        }
      }
    }), { numRuns: 200 })
  })

  it('names what holds a host, with the entries it rests on: a pin, a tag budget, a gate', () => {
    const w = new Writer()
    const body = releaseBody({ waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: open }] })
    const plan = planRelease(body, m)
    const [canary] = plan.waves[0]
    const later = plan.waves[1]
    const pin = w.write(ADMIN, 'pin', { host: later[0], path: PATH_B, reason: 'db migration' })
    const s = fold([w.write(ADMIN, 'release', body), pin])
    const pinned = why(s, m, later[0], 'r1', 0)
    assert.equal(pinned.decision.action, 'none')
    assert.deepEqual(pinned.causes.find(c => c.what === 'pin')?.entries, [{ feed: ADMIN, seq: pin.seq, kind: 'pin' }])
    assert.deepEqual(pinned.standing, { wave: 1, cls: 'pinned', path: PATH_A })
    const gated = why(s, m, later[1], 'r1', 0)
    assert.match(gated.causes.find(c => c.what === 'gate')?.text ?? '', /^wave 2 waits: wave 1 has 0\/1 healthy/)
    const budget = w.write(ADMIN, 'budget', { selector: 'tag:db', max: 1 })
    const db = [canary, ...later].filter(h => tags[h]?.includes('db'))
    const start = w.write(db[0], 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'a' })
    const t = fold([w.write(ADMIN, 'release', { ...body, waves: [{ percent: 100, gate: open }] }), budget, start])
    const held = why(t, m, db[1], 'r1', 0)
    assert.equal(held.decision.action, 'wait')
    const cause = held.causes.find(c => c.what === 'tag-budget')
    assert.deepEqual(cause?.entries, [{ feed: ADMIN, seq: budget.seq, kind: 'budget' }, { feed: db[0], seq: start.seq, kind: 'apply-start' }])
    assert.equal(why(t, m, db[1], 'r9', 0).causes.at(-1)?.text, 'this host holds no counted release r9')
  })
})

describe('release plan (pure part)', () => {
  it('shows the waves the release will have and what holds each host: pin, quarantine, offline, budgets, edge', () => {
    const w = new Writer()
    const s = fold([
      w.write(ADMIN, 'pin', { host: hosts[3], path: PATH_A, reason: 'kept' }),
      w.write(ADMIN, 'budget', { selector: 'tag:db', max: 1 }),
      w.write(ADMIN, 'quarantine', { path: PATH_B, reason: 'bad' })
    ])
    const body = releaseBody({ id: 'r5-abcdef', number: 5, targets: [{ tag: 'db', path: PATH_A, sources: ['peers'] }, { path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: open, after: { tag: 'db' } }], budget: { maxInFlight: 2 } })
    const p = previewRelease(s, m, body, h => h !== hosts[4])
    const plan = planRelease(body, m)
    assert.deepEqual(p.waves.map(x => x.hosts.map(h => h.host)), plan.waves, 'the waves every host will compute')
    const holds = new Map(p.waves[0].hosts.map(h => [h.host, h.holds.join(' | ')]))
    assert.match(holds.get(hosts[3]) ?? '', /pinned by AdminA: kept/)
    assert.match(holds.get(hosts[3]) ?? '', /path quarantined by AdminA: bad/)
    assert.match(holds.get(hosts[4]) ?? '', /offline/)
    assert.match(holds.get(hosts[5]) ?? '', /edge: waits until every host tagged db of this release is healthy/)
    const db = plan.slots.filter(h => tags[h]?.includes('db'))
    assert.doesNotMatch(holds.get(db[0]) ?? '', /budget/, 'the first db host in slot order starts')
    for (const h of db.slice(1)) assert.match(holds.get(h) ?? '', /budget tag:db: waits for 1 host\(s\) tagged db ahead of it/)
    for (const h of plan.slots.slice(2)) assert.match(holds.get(h) ?? '', /budget: starts once fewer than 2 of the/)
  })

  it('knows each host\'s current path from its own newest outcome', () => {
    const w = new Writer()
    const s = fold([
      w.write(hosts[0], 'apply-ok', { release: 'r1', path: PATH_A, healthyAt: 1 }),
      w.write(hosts[1], 'apply-ok', { release: 'r1', path: PATH_B, healthyAt: 1 }),
      w.write(hosts[1], 'rollback', { release: 'r2', from: PATH_B, to: PATH_A, ok: true }),
      w.write(hosts[2], 'apply-start', { release: 'r1', path: PATH_A, wave: 0 })
    ])
    assert.deepEqual([...currentPaths(s)].map(([h, c]) => [h, c.path]), [[hosts[0], PATH_A], [hosts[1], PATH_A]])
    applyEntry(s, w.write(hosts[0], 'soaked', { release: 'r2', path: PATH_B, attempt: 'x', soakMs: 1 }))
    assert.equal(currentPaths(s).get(hosts[0])?.path, PATH_B)
  })

  it('summarises nix store diff-closures output', () => {
    const text = 'fleetmesh-fixture: ∅ → 1.0, +1.2 KiB\nhello: 2.10 → 2.12.1, -3.5 KiB\nlibfoo: +2.0 MiB\n'
    assert.deepEqual(summariseDiff(text), { changed: 3, bytes: Math.round(1.2 * 1024 - 3.5 * 1024 + 2 * 1024 * 1024), names: ['fleetmesh-fixture', 'hello', 'libfoo'] })
    assert.deepEqual(summariseDiff(''), { changed: 0, bytes: 0, names: [] })
  })
})
