// `release plan`, `release why`, `release diff` and a per-tag budget with real daemon processes,
// real libp2p and real Nix (issue 14 features 1, 9 and 10). One fleet of three: the admin (web)
// and two db hosts. The plan is made with the flags of the publish that follows, and then
// matched with what happens: the same id and waves, the pinned host skipped, the db host the
// plan shows held by `budget tag:db 1` waiting while the other is in flight — which `release
// why` names, as it names the pin.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fleet } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import { releaseStatus } from '../../simulations/harness/queries.js'
import type { ReleaseBody, Why } from '../../protocols/rollout/index.js'
import type { DiffRow, PlanReport } from '../../node/deploy/plan.js'

const WAIT_MS = 120_000

test('release plan, then publish: the plan matches what happens; release why names the pin and the tag budget', { timeout: 15 * 60_000 }, async (t) => {
  const fleet = await Fleet.create({
    hosts: [
      { name: 'a', role: 'admin', tags: ['web'] },
      { name: 'b', tags: ['db'] },
      { name: 'c', tags: ['db'] }
    ],
    soakMs: 300
  })
  const stamp = Date.now()
  const [a, b, c] = ['a', 'b', 'c'].map((n) => fleet.host(n))
  try {
    await fleet.pairAll()
    const [v0, v1, held] = await Promise.all([
      buildGeneration(`p-v0-${stamp}`, 'good'),
      buildGeneration(`p-v1-${stamp}`, 'good'),
      buildGeneration(`p-held-${stamp}`, 'good')
    ])
    const r0 = await a.json<ReleaseBody>(['release', 'publish', '--path', v0, '--waves', '100%'])
    await fleet.waitFor('every host on v0', async () => (await releaseStatus(a, r0.id)).state === 'done', WAIT_MS)

    assert.notEqual((await b.cli(['budget', 'set', 'tag:db', '1'])).code, 0, 'only admins set budgets')
    assert.equal((await a.cli(['budget', 'set', 'db', '1'])).code, 2, 'a selector is tag:T')
    await a.json(['budget', 'set', 'tag:db', '1'])
    await a.json(['pin', a.peerId, '--path', held, '--reason', 'kernel test'])
    await fleet.waitFor('every host to see the budget and the pin', async () => {
      for (const h of fleet.hosts) {
        if ((await h.get<{ budgets: unknown[] }>('/v1/budgets')).budgets.length !== 1) return false
        if ((await h.get<{ pins: unknown[] }>('/v1/pins')).pins.length !== 1) return false
      }
      return true
    }, WAIT_MS)
    assert.deepEqual((await b.json<{ budgets: Array<{ selector: string, max: number }> }>(['budget', 'list'])).budgets.map((x) => [x.selector, x.max]), [['tag:db', 1]])

    const flags = ['--path', v1, '--waves', '100%', '--gate', 'healthy=100%,soak=20s']
    const plan = await a.json<PlanReport>(['release', 'plan', ...flags])
    t.diagnostic((await a.cli(['release', 'plan', ...flags])).stdout)
    assert.equal(plan.waves.length, 1)
    const holds = new Map(plan.waves[0].hosts.map((h) => [h.host, h.holds]))
    assert.deepEqual([...holds.keys()].sort(), [a.peerId, b.peerId, c.peerId].sort())
    assert.match(holds.get(a.peerId)?.join(' | ') ?? '', /pinned by .*: kernel test/)
    const heldDb = [b, c].filter((h) => (holds.get(h.peerId) ?? []).some((x) => /^budget tag:db: waits for 1 host\(s\) tagged db ahead of it/.test(x)))
    assert.equal(heldDb.length, 1, 'the plan shows one db host held by the budget')
    const firstDb = heldDb[0] === b ? c : b
    for (const h of plan.waves[0].hosts) {
      assert.equal(h.change.from, v0, 'each host\'s current generation: v0')
      assert.ok((h.change.changed ?? 0) > 0, `a real closure diff v0 → v1: ${JSON.stringify(h.change)}`)
    }

    const r = await a.json<ReleaseBody>(['release', 'publish', ...flags])
    assert.equal(r.id, plan.id, 'publishing with the same flags gives the planned release')
    await fleet.waitFor('release why to name the tag budget holding the db host the plan named', async () => {
      const w = await a.json<Why>(['release', 'why', r.id, heldDb[0].peerId])
      return w.decision.action === 'wait' && w.causes.some((x) => x.what === 'tag-budget')
    }, WAIT_MS)
    const inFlight = (await releaseStatus(a, r.id)).waves[0].hostStates.find((h) => h.host === firstDb.peerId)?.state
    assert.ok(inFlight === 'applying' || inFlight === 'confirming' || inFlight === 'soaking', `the other db host is in flight (${inFlight})`)
    const why = await a.cli(['release', 'why', r.id, heldDb[0].peerId])
    t.diagnostic(why.stdout)
    assert.match(why.stdout, /\[tag-budget\] budget tag:db: 1 other host\(s\) tagged db ahead of this one may be in flight/)
    assert.match(why.stdout, /rests on: budget .*:\d+, (apply-start|apply-ok) /)
    const pinned = await a.json<Why>(['release', 'why', r.id])
    assert.equal(pinned.host, a.peerId, 'the local host by default')
    assert.equal(pinned.decision.action, 'none')
    assert.ok(pinned.causes.some((x) => x.what === 'pin' && x.entries[0]?.kind === 'pin'), JSON.stringify(pinned.causes))

    await fleet.waitFor('the release to be done', async () => (await releaseStatus(a, r.id)).state === 'done', WAIT_MS)
    const s = await releaseStatus(a, r.id)
    assert.deepEqual(s.waves.map((w) => w.hostStates.map((h) => h.host).sort()), plan.waves.map((w) => w.hosts.map((h) => h.host).sort()), 'the planned waves')
    assert.deepEqual(s.pinnedHosts, [a.peerId], 'the planned pin')
    for (const h of [b, c]) assert.equal(await h.activeVersion(), `p-v1-${stamp}`)

    const diff = await a.json<{ hosts: DiffRow[] }>(['release', 'diff', r0.id, r.id])
    assert.deepEqual(diff.hosts.map((h) => [h.a, h.b]), [[v0, v1], [v0, v1], [v0, v1]])
    for (const h of diff.hosts) assert.ok((h.change?.changed ?? 0) > 0)
  } finally {
    await fleet.close()
  }
})
