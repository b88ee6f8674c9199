// Confirm-or-revert with real processes, real libp2p and real Nix (issue 14, 5). Host b runs in
// its own network namespace, reached from host a over a veth pair; a generation whose activation
// takes b's link down really cuts it off the mesh. b must see a member hold its `confirming`
// entry within its window or roll back by itself; the rollback's activation brings the link back,
// b reconnects, and the fleet learns the outcome once. One fleet serves every case.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { Netns, NsDaemon } from '../../simulations/harness/netns.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { ensureNix } from '../fixtures/nix/fixtures.js'
import { runNix } from '../../nixos/nix.js'
import type { EntryRow } from '../../node/routes.js'
import type { ReleaseBody, ReleaseStatus } from '../../protocols/rollout/index.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const WAIT_MS = 120_000
const WINDOW_MS = 6_000

async function build (version: string, network: 'up' | 'down'): Promise<string> {
  await ensureNix()
  const { stdout } = await runNix('nix-build', [join(here, 'fixtures', 'toplevel.nix'), '--no-out-link',
    '--argstr', 'version', version, '--argstr', 'mode', 'good', '--argstr', 'nodeBin', process.execPath, '--argstr', 'network', network])
  return stdout.trim()
}

async function entries (host: FleetHost, release: string, feed: string): Promise<EntryRow[]> {
  const r = await host.cli(['audit', 'log', '--json'])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EntryRow)
    .filter((e) => e.feed === feed && (e.body as { release?: string }).release === release)
}

test('confirm or revert, with a host in its own network namespace', { timeout: 15 * 60_000 }, async (t) => {
  const ns = new Netns('fmc', 200)
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b', tags: ['web'] }], soakMs: 200 })
  let b: NsDaemon | undefined
  try {
    await ns.create()
    const [a, hb] = [fleet.host('a'), fleet.host('b')]
    for (const [h, ip] of [[a, ns.outsideIp], [hb, ns.insideIp]] as const) {
      const config = await readConfig(h.dataDir)
      await writeConfig(h.dataDir, {
        ...config,
        listen: [`/ip4/${ip}/tcp/0`],
        deploy: { ...config.deploy, confirmWindowMs: WINDOW_MS, activationEnv: { ...config.deploy.activationEnv, ...(h === hb ? { FLEETMESH_FIXTURE_LINK: ns.veth[1] } : {}) } }
      })
    }
    await fleet.start('a')
    b = await NsDaemon.start(ns, hb, a.address)
    const inv = await a.json<{ code: string }>(['invite', '--role', 'host', '--tag', 'web'])
    const joined = await ns.cli(hb, ['join', inv.code, '--json'])
    assert.equal(joined.code, 0, joined.stderr)
    await fleet.waitFor('a to see b', async () => (await a.json<Array<{ peerId: string }>>(['members'])).length === 2, WAIT_MS)

    const stamp = Date.now()
    const [v1, cut, cut2] = await Promise.all([build(`cf-v1-${stamp}`, 'up'), build(`cf-cut-${stamp}`, 'down'), build(`cf-cut2-${stamp}`, 'down')])
    const status = async (id: string): Promise<ReleaseStatus> => await a.json<ReleaseStatus>(['release', 'status', id])
    const publish = async (path: string): Promise<ReleaseBody> => await a.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--waves', '100%', '--max-failures', '1', '--path', path, '--force'])
    const daemon = (): NsDaemon => b as NsDaemon

    await t.test('a healthy activation is confirmed by a member and stays', async () => {
      const r = await publish(v1)
      await fleet.waitFor('the release to be done', async () => (await status(r.id)).state === 'done', WAIT_MS)
      const kinds = (await entries(a, r.id, hb.peerId)).map((e) => e.kind)
      assert.deepEqual(kinds.filter((k) => k !== 'soaked'), ['apply-start', 'confirming', 'apply-ok'], 'confirming, then apply-ok once a member held it')
      assert.equal(daemon().lines('deploy: confirmed').length, 1)
      assert.equal(await hb.activeVersion(), `cf-v1-${stamp}`)
    })

    await t.test('an activation that cuts the host off the mesh is rolled back by itself within the window', async () => {
      const r = await publish(cut)
      await fleet.waitFor('a to learn b\'s outcome', async () => (await entries(a, r.id, hb.peerId)).some((e) => e.kind === 'rollback'), WAIT_MS)
      const written = await entries(a, r.id, hb.peerId)
      const failed = written.filter((e) => e.kind === 'apply-failed')
      assert.equal(failed.length, 1, 'the outcome is learnt once')
      assert.match((failed[0].body as { reason: string }).reason, /^unconfirmed: /)
      assert.equal(written.filter((e) => e.kind === 'rollback').length, 1)
      assert.equal(daemon().lines('deploy: unconfirmed').length, 1)
      assert.equal(await hb.activeVersion(), `cf-v1-${stamp}`, 'back on the generation before')
      const s = await status(r.id)
      assert.deepEqual(s.failedHosts, [hb.peerId])
    })

    await t.test('a daemon restart inside the window resumes the wait with the time left', async () => {
      const r = await publish(cut2)
      await fleet.waitFor('b to start confirming', async () => daemon().lines('deploy: confirming').length > 2, WAIT_MS)
      await daemon().stop('SIGKILL')
      b = await NsDaemon.start(ns, hb, a.address)
      await fleet.waitFor('the restarted b to roll back', async () => daemon().lines('deploy: unconfirmed').length === 1, WAIT_MS)
      const resumed = daemon().lines('deploy: confirming')
      assert.equal(resumed.length, 1)
      assert.ok((resumed[0].leftMs as number) < WINDOW_MS, `the wait resumed with the time left, not a new window (${String(resumed[0].leftMs)} ms)`)
      await fleet.waitFor('a to learn b\'s outcome', async () => (await entries(a, r.id, hb.peerId)).some((e) => e.kind === 'rollback'), WAIT_MS)
      const written = await entries(a, r.id, hb.peerId)
      assert.equal(written.filter((e) => e.kind === 'confirming').length, 1, 'confirming is written once across the restart')
      assert.equal(written.filter((e) => e.kind === 'apply-failed').length, 1)
      assert.equal(await hb.activeVersion(), `cf-v1-${stamp}`)
    })
  } finally {
    await b?.stop().catch(() => {})
    await fleet.close()
    await ns.remove()
  }
})
