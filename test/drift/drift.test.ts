// Drift made for real on a running daemon with real Nix: a profile switched behind its back, an
// activation link pointed elsewhere, a store path's content altered. The host finds each, writes
// one signed entry when it appears and one when it clears (never one per check), and with
// deploy.repairDrift re-activates the generation its log says it runs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readlink, symlink, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { runNix } from '../../nixos/nix.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import type { EntryRow } from '../../node/routes.js'
import type { DriftReport } from '../../node/drift/index.js'
import type { DriftBody } from '../../protocols/drift/index.js'
import type { ReleaseStatus } from '../../protocols/rollout/index.js'
import { tamper } from './helpers.js'

const WAIT_MS = 120_000

interface Check { code: number, report: DriftReport }

async function drift (h: FleetHost): Promise<Check> {
  const r = await h.cli(['drift', '--json'])
  assert.ok(r.code === 0 || r.code === 1, `fleetmesh drift exited ${r.code}: ${r.stderr}`)
  return { code: r.code, report: JSON.parse(r.stdout) as DriftReport }
}

async function driftEntries (h: FleetHost): Promise<DriftBody[]> {
  const r = await h.cli(['audit', 'log', '--kind', 'drift', '--json'])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EntryRow).filter((e) => e.feed === h.peerId).map((e) => e.body as DriftBody)
}

async function metric (h: FleetHost, line: RegExp): Promise<number> {
  const { url } = JSON.parse(await readFile(join(h.dataDir, 'api.json'), 'utf8')) as { url: string }
  const token = (await readFile(join(h.dataDir, 'api-token'), 'utf8')).trim()
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text()
  const m = text.split('\n').find((l) => line.test(l))
  return m === undefined ? NaN : Number(m.split(' ').pop())
}

async function configure (h: FleetHost, link: string, drift: { repairDrift: boolean, intervalMs: number }): Promise<void> {
  const config = await readConfig(h.dataDir)
  await writeConfig(h.dataDir, {
    ...config,
    // What NixOS activation does first: point the system link at the generation it activates.
    deploy: { ...config.deploy, currentSystem: link, repairDrift: drift.repairDrift, activation: ['/bin/sh', '-c', '/bin/ln -sfn "$0" "$1" && exec "$0/bin/switch-to-configuration" switch', '{path}', link] },
    drift: { intervalMs: drift.intervalMs }
  })
}

test('drift: found when it appears, logged once, cleared, and repaired through the apply path', { timeout: 15 * 60_000 }, async (t) => {
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin', tags: ['web'] }], soakMs: 300 })
  const a = fleet.founder
  const link = join(a.dataDir, 'current-system')
  const profile = join(a.dataDir, 'nix', 'profiles', 'system')
  const stamp = Date.now()
  const restores: Array<() => Promise<void>> = []
  try {
    await configure(a, link, { repairDrift: false, intervalMs: 0 })
    await fleet.pairAll()
    const [v1, v2] = await Promise.all([buildGeneration(`drift-v1-${stamp}`, 'good'), buildGeneration(`drift-v2-${stamp}`, 'good')])
    const rel = await a.json<{ id: string }>(['release', 'publish', '--tag', 'web', '--path', v1, '--waves', '100%'])
    await fleet.waitFor('the release to be done', async () => (await a.json<ReleaseStatus>(['release', 'status', rel.id])).state === 'done', WAIT_MS)
    assert.equal(await readlink(link), v1)
    const v1Link = await readlink(profile)

    await t.test('a host that runs what its log says finds nothing, however often it looks', async () => {
      for (let i = 0; i < 3; i++) {
        const { code, report } = await drift(a)
        assert.equal(code, 0)
        assert.deepEqual(report.what, [])
        assert.equal(report.activated, v1)
        assert.equal(report.profile?.path, v1)
        assert.equal(report.desired?.path, v1)
        assert.equal(report.desired?.kind, 'apply-ok')
        assert.ok(report.store !== null && report.store.paths >= 2 && report.store.modifiedCount === 0, JSON.stringify(report.store))
        assert.deepEqual(report.wrote, [])
      }
      assert.deepEqual(await driftEntries(a), [])
      assert.equal(await metric(a, /^fleetmesh_drift_checks_total\{result="clean"\}/), 3)
    })

    await t.test('a profile switched by hand behind the daemon\'s back: one entry when it appears, one when it clears', async () => {
      await runNix('nix-env', ['-p', profile, '--set', v2])
      const first = await drift(a)
      assert.equal(first.code, 1, 'exit 1 on drift')
      assert.deepEqual(first.report.what, ['profile'])
      assert.equal(first.report.profile?.path, v2)
      assert.deepEqual(first.report.wrote, ['detected'])
      const again = await drift(a)
      assert.equal(again.code, 1)
      assert.deepEqual(again.report.wrote, [], 'the same drift is not written again')
      assert.equal(await metric(a, /^fleetmesh_drift_detected\{what="profile"\}/), 1)
      const entries = await driftEntries(a)
      assert.equal(entries.length, 1)
      assert.deepEqual({ state: entries[0].state, what: entries[0].what, profile: entries[0].profile, desired: entries[0].desired }, { state: 'detected', what: ['profile'], profile: v2, desired: v1 })

      await runNix('nix-env', ['-p', profile, '--switch-generation', /-(\d+)-link$/.exec(v1Link)![1]])
      const cleared = await drift(a)
      assert.equal(cleared.code, 0)
      assert.deepEqual(cleared.report.wrote, ['cleared'])
      assert.equal(await metric(a, /^fleetmesh_drift_detected\{what="profile"\}/), 0)
      assert.deepEqual((await driftEntries(a)).map((e) => e.state), ['detected', 'cleared'])
    })

    await t.test('an activation link pointing elsewhere is drift of the activated system', async () => {
      await rm(link)
      await symlink(v2, link)
      const { code, report } = await drift(a)
      assert.equal(code, 1)
      assert.deepEqual(report.what, ['activation'])
      assert.equal(report.activated, v2)
      await rm(link)
      await symlink(v1, link)
      assert.deepEqual((await drift(a)).report.wrote, ['cleared'])
    })

    await t.test('a store path of the running closure altered on disk is found by Nix\'s verification', async () => {
      // v1 is this test's own generation: its activation script is no other test's file.
      const restore = await tamper(join(v1, 'bin', 'switch-to-configuration'), '# altered behind the daemon\'s back\n')
      restores.push(restore)
      const { code, report } = await drift(a)
      assert.equal(code, 1)
      assert.deepEqual(report.what, ['store'])
      assert.deepEqual(report.store?.modified, [v1])
      const entry = (await driftEntries(a)).pop()!
      assert.deepEqual({ state: entry.state, what: entry.what, modified: entry.modified, modifiedCount: entry.modifiedCount }, { state: 'detected', what: ['store'], modified: [v1], modifiedCount: 1 })
      await restore()
      restores.pop()
      assert.deepEqual((await drift(a)).report.wrote, ['cleared'])
    })

    await t.test('with deploy.repairDrift, the periodic check re-activates the desired generation and the drift clears', async () => {
      const before = (await driftEntries(a)).length
      await fleet.stop('a')
      await configure(a, link, { repairDrift: true, intervalMs: 1000 })
      // Both sides of the drift change while the daemon is down: a check between the two writes
      // would see the profile's drift alone (CI caught one, 1 s apart).
      await runNix('nix-env', ['-p', profile, '--set', v2])
      await rm(link)
      await symlink(v2, link)
      await fleet.start('a')
      await fleet.waitFor('the drift to be repaired and cleared', async () => (await driftEntries(a)).length >= before + 3, WAIT_MS)
      const entries = (await driftEntries(a)).slice(before)
      assert.deepEqual(entries.map((e) => e.state), ['detected', 'repair', 'cleared'])
      assert.deepEqual(entries[0].what, ['activation', 'profile'])
      assert.equal(entries[1].outcome, 'ok')
      assert.equal(await readlink(link), v1, 're-activated: the system link is back on the desired generation')
      assert.equal(basename(await readlink(join(profile, '..', await readlink(profile)))), basename(v1))
      assert.equal(await a.activeVersion(), `drift-v1-${stamp}`, 'the desired generation\'s service runs again')
      assert.equal(await metric(a, /^fleetmesh_drift_repairs_total\{outcome="ok"\}/), 1)

      // Settled again: the periodic checks keep looking and write nothing more.
      const clean = await metric(a, /^fleetmesh_drift_checks_total\{result="clean"\}/)
      await fleet.waitFor('three more clean checks', async () => await metric(a, /^fleetmesh_drift_checks_total\{result="clean"\}/) >= clean + 3, WAIT_MS)
      assert.equal((await driftEntries(a)).length, before + 3)
    })
  } finally {
    for (const restore of restores) await restore()
    await fleet.close()
  }
})
