// `release plan`'s closure changes with real Nix (issue 14 feature 9): a real diff-closures
// summary where this store holds both closures, and, rather than a guess, "closure not in the
// local store" for a host whose current path it lacks, and a note for a host with no known current.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NixProfileBackend } from '../../nixos/index.js'
import { planReport } from '../../node/deploy/plan.js'
import { buildGeneration, ensureNix } from '../fixtures/nix/fixtures.js'
import { ADMIN, StaticMembership, Writer, fold, hostIds } from '../rollout/helpers.js'

test('each host\'s closure change: real where this store has both, said so where it has not', { timeout: 5 * 60_000 }, async () => {
  await ensureNix()
  const stamp = Date.now()
  const [v0, v1] = await Promise.all([buildGeneration(`c-v0-${stamp}`, 'good'), buildGeneration(`c-v1-${stamp}`, 'good')])
  const absent = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-not-here'
  const hosts = hostIds(3)
  const view = Object.assign(StaticMembership.of(hosts, [ADMIN]), { basis: () => ({}) })
  const w = new Writer()
  const state = fold([
    w.write(hosts[0], 'apply-ok', { release: 'r0', path: v0, healthyAt: 1 }),
    w.write(hosts[1], 'apply-ok', { release: 'r0', path: absent, healthyAt: 1 })
  ])
  const nix = new NixProfileBackend()
  const r = await planReport({ desk: { self: ADMIN, state, view }, online: () => true, nix: { current: async () => v0, diff: async (a, b) => await nix.diff(a, b) } }, {
    targets: [{ path: v1, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0
  })
  const change = new Map(r.waves[0].hosts.map((h) => [h.host, h.change]))
  assert.deepEqual(change.get(ADMIN)?.from, v0, 'this host: its profile\'s current')
  assert.ok((change.get(ADMIN)?.changed ?? 0) > 0 && change.get(ADMIN)?.names?.includes('fleetmesh-fixture-system-c-v1'), JSON.stringify(change.get(ADMIN)))
  assert.deepEqual(change.get(hosts[0]), change.get(ADMIN), 'another host on v0, by its own outcome entry: the same diff')
  assert.deepEqual(change.get(hosts[1]), { from: absent, to: v1, note: 'closure not in the local store' })
  assert.match(change.get(hosts[2])?.note ?? '', /no current generation known/)
})
