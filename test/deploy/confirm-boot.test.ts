// Deferred activation with real processes, real libp2p and real Nix (issue 14, 6). Host b's
// boot is simulated in full: its boot id is a file (deploy.bootIdPath), its running system a
// link (deploy.currentSystem) that the fixture's `switch` points at itself, and a "reboot" stops
// the daemon, changes the boot id, brings the new generation up as a boot would, and starts the
// daemon again. A generation whose kernel link changed must be staged with
// `switch-to-configuration boot` (never `switch`), counted pending by the gate until the boot,
// then verified, confirmed by a member and written apply-ok; with `--reboot` the host runs its
// reboot command itself, once per boot (a daemon restart in that boot does not run it again). A
// newer release staged over a staged one replaces it (the older release counts the host moved on),
// and the next boot goes back to the running generation first; an auto-revert release aborted
// while only staged is unstaged the same way, and the host writes its rollback.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { ensureNix } from '../fixtures/nix/fixtures.js'
import { runNix } from '../../nixos/nix.js'
import type { EntryRow } from '../../node/routes.js'
import type { ReleaseBody, ReleaseStatus } from '../../protocols/rollout/index.js'

const run = promisify(execFile)
const here = fileURLToPath(new URL('.', import.meta.url))
const WAIT_MS = 120_000

async function build (version: string, kernel: string): Promise<string> {
  await ensureNix()
  const { stdout } = await runNix('nix-build', [join(here, 'fixtures', 'toplevel.nix'), '--no-out-link',
    '--argstr', 'version', version, '--argstr', 'mode', 'good', '--argstr', 'nodeBin', process.execPath, '--argstr', 'kernel', kernel])
  return stdout.trim()
}

async function lines (file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean)
}

/** `feed`'s entries about `release`, as `host` holds them (the control API: polled, a CLI process per poll costs seconds). */
async function entries (host: FleetHost, release: string, feed: string): Promise<EntryRow[]> {
  return (await host.get<EntryRow[]>(`/v1/audit/log?feed=${feed}`)).filter((e) => (e.body as { release?: string }).release === release)
}

test('a generation that changes the kernel is staged for the next boot, counted pending, and verified after it', { timeout: 15 * 60_000 }, async (t) => {
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b', tags: ['web'] }], soakMs: 200 })
  try {
    const [a, b] = [fleet.host('a'), fleet.host('b')]
    const bootId = join(b.dataDir, 'boot_id')
    const current = join(b.dataDir, 'current-system')
    const reboots = join(b.dataDir, 'reboots')
    const activations = join(b.serviceDir, 'activations')
    const env = { FLEETMESH_FIXTURE_STATE: b.serviceDir, FLEETMESH_FIXTURE_PORT: String(b.port), FLEETMESH_FIXTURE_CURRENT: current }
    await writeFile(bootId, 'boot-1\n')
    const config = await readConfig(b.dataDir)
    await writeConfig(b.dataDir, {
      ...config,
      deploy: { ...config.deploy, bootIdPath: bootId, currentSystem: current, rebootCommand: ['/bin/sh', '-c', `echo reboot >> ${reboots}`], activationEnv: env }
    })
    await fleet.pairAll()

    const stamp = Date.now()
    const [v1, v2, v3, v4, v5] = await Promise.all([build(`db-v1-${stamp}`, '1'), build(`db-v2-${stamp}`, '2'), build(`db-v3-${stamp}`, '3'), build(`db-v4-${stamp}`, '4'), build(`db-v5-${stamp}`, '5')])
    const status = async (id: string): Promise<ReleaseStatus> => await a.get<ReleaseStatus>(`/v1/releases/${id}`)
    const publish = async (path: string, ...flags: string[]): Promise<ReleaseBody> =>
      await a.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--waves', '100%', '--path', path, '--force', ...flags])
    const kinds = async (r: ReleaseBody, on = a): Promise<string[]> => (await entries(on, r.id, b.peerId)).map((e) => e.kind).filter((k) => k !== 'soaked')
    /** A reboot of b into `path`: the daemon goes down, a new boot id, the generation brought up as a boot does, the daemon back. */
    const rebootInto = async (path: string, id: string): Promise<void> => {
      await fleet.stop('b')
      await b.killService()
      await writeFile(bootId, `${id}\n`)
      await run(join(path, 'bin', 'switch-to-configuration'), ['switch'], { env: { ...process.env, ...env } })
      await fleet.start('b')
    }

    await t.test('a generation with the running kernel is switched to', async () => {
      const r = await publish(v1)
      await fleet.waitFor('the first release to be done', async () => (await status(r.id)).state === 'done', WAIT_MS)
      assert.deepEqual(await lines(activations), [`switch db-v1-${stamp}`])
    })

    /** Publishes `path` (its kernel changed) and checks it is staged, counted pending, and activated in no way but `boot`. */
    const staged = async (path: string, expected: { ran: string[], running: string }, flags: string[] = []): Promise<ReleaseBody> => {
      const before = (await lines(activations)).length
      const r = await publish(path, ...flags)
      await fleet.waitFor('b to stage the generation', async () => (await kinds(r)).includes('pending-reboot'), WAIT_MS)
      const [pending] = (await entries(a, r.id, b.peerId)).filter((e) => e.kind === 'pending-reboot')
      assert.deepEqual((pending.body as { changes: string[] }).changes, ['kernel', 'initrd'])
      assert.deepEqual((await lines(activations)).slice(before), expected.ran, 'switch-to-configuration boot ran, switch did not')
      assert.equal(await b.activeVersion(), expected.running, 'the running system is untouched')
      const s = await a.json<ReleaseStatus>(['release', 'status', r.id])
      assert.notEqual(s.state, 'done')
      assert.deepEqual(s.waves[0].hostStates.map((h) => [h.host, h.state]), [[b.peerId, 'pending-reboot']])
      assert.equal(s.waves[0].healthy, 0)
      assert.equal(s.waves[0].gateMet, false, 'the gate counts a host pending reboot as not healthy')
      return r
    }

    await t.test('a kernel change is staged, stays staged across a daemon restart, and is verified after the boot', async () => {
      const r = await staged(v2, { ran: [`boot db-v2-${stamp}`], running: `db-v1-${stamp}` })
      assert.deepEqual(await lines(reboots), [], 'a release without --reboot leaves the reboot to the operator')
      const ran = await lines(activations)
      await fleet.stop('b')
      await fleet.start('b')
      // the daemon settles its journal before it serves: what a restart did to the attempt is in b's feed by now
      assert.deepEqual(await kinds(r, b), ['apply-start', 'pending-reboot'], 'a restart in the same boot stays staged')
      assert.deepEqual(await lines(activations), ran, 'and activates nothing')

      await rebootInto(v2, 'boot-2')
      await fleet.waitFor('the release to be done after the boot', async () => (await status(r.id)).state === 'done', WAIT_MS)
      assert.deepEqual(await kinds(r), ['apply-start', 'pending-reboot', 'confirming', 'apply-ok'], 'verified, confirmed by a member, then apply-ok')
      const s = await status(r.id)
      assert.equal(s.waves[0].gateMet, true)
      assert.deepEqual(s.waves[0].hostStates.map((h) => [h.host, h.state]), [[b.peerId, 'healthy']])
    })

    await t.test('a newer release re-stages over a staged one; with --reboot the host runs its reboot command, once per boot', async () => {
      const r3 = await staged(v3, { ran: [`boot db-v3-${stamp}`], running: `db-v2-${stamp}` })
      const local = await b.cli(['apply', v4])
      assert.notEqual(local.code, 0, 'a local apply does not replace a staged release')
      assert.match(local.stderr, /is staged for the next boot: it ends after a reboot/)
      // the next boot goes back to the running generation first, then to the newer one
      const r4 = await staged(v4, { ran: [`boot db-v2-${stamp}`, `boot db-v4-${stamp}`], running: `db-v2-${stamp}` }, ['--reboot'])
      assert.deepEqual((await status(r3.id)).waves[0].hostStates.map((h) => [h.host, h.state]), [[b.peerId, 'moved-on']])
      assert.deepEqual(await kinds(r3), ['apply-start', 'pending-reboot'], 'the staged release is left, not failed')
      const [pending] = (await entries(a, r4.id, b.peerId)).filter((e) => e.kind === 'pending-reboot')
      assert.equal((pending.body as { reboot: boolean }).reboot, true)
      await fleet.waitFor('b to run its reboot command', async () => (await lines(reboots)).length > 0, WAIT_MS)
      // the reboot did not take yet (the command may be what stops the daemon): a restart in this boot does not run it again
      await fleet.stop('b')
      await fleet.start('b')
      assert.deepEqual(await lines(reboots), ['reboot'], 'a daemon restart in the same boot does not run the reboot command again')
      assert.deepEqual(await kinds(r4, b), ['apply-start', 'pending-reboot'], 'and stays staged')
      await rebootInto(v4, 'boot-3')
      await fleet.waitFor('the release to be done after the boot', async () => (await status(r4.id)).state === 'done', WAIT_MS)
      assert.deepEqual(await lines(reboots), ['reboot'], 'rebooted once: after the boot nothing is staged')
      assert.deepEqual(await kinds(r4), ['apply-start', 'pending-reboot', 'confirming', 'apply-ok'])
    })

    await t.test('an auto-revert release aborted while only staged is unstaged: the next boot goes back and the host writes its rollback', async () => {
      const r = await staged(v5, { ran: [`boot db-v5-${stamp}`], running: `db-v4-${stamp}` }, ['--auto-revert'])
      const ran = (await lines(activations)).length
      const abort = await a.cli(['release', 'abort', r.id])
      assert.equal(abort.code, 0, abort.stderr)
      await fleet.waitFor('b to revert the staged release', async () => (await kinds(r)).includes('rollback'), WAIT_MS)
      const [rollback] = (await entries(a, r.id, b.peerId)).filter((e) => e.kind === 'rollback')
      const { from, to, ok } = rollback.body as { from: string, to: string, ok: boolean }
      assert.deepEqual({ from, to, ok }, { from: v5, to: v4, ok: true }, 'the revert ends ok, on the generation that runs')
      assert.deepEqual(await kinds(r), ['apply-start', 'pending-reboot', 'rollback'], 'one outcome: the revert')
      assert.deepEqual((await lines(activations)).slice(ran), [`boot db-v4-${stamp}`], 'the next boot goes back to the running generation; nothing was switched')
      assert.equal(await b.activeVersion(), `db-v4-${stamp}`)
      const gens = await b.json<Array<{ path: string, current: boolean }>>(['generations'])
      assert.equal(gens.find((g) => g.current)?.path, v4, 'the profile is back on the running generation')
    })
  } finally {
    await fleet.close()
  }
})
