// Deferred activation in the engine, on a real Nix profile with real activation scripts and a real
// level journal (issue 14, 6): a host that boots back into the system it ran before, not into the
// staged generation (the old entry chosen at the boot menu, or fallen back to), has the staged
// apply rolled back by recover(), as `reverted-by-reboot`, and its profile back on that system. A
// revert of a generation only staged (an auto-revert release halted before the reboot) unstages it:
// the profile and the next boot go back, and the revert ends ok in the same journal batch. The
// reboot command is asked for at most once per boot, across engines (daemon restarts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { DeployEngine, Journal, NixProfileBackend, bootInfo, type ApplyOutcome, type HealthPolicy } from '../../nixos/index.js'
import { runNix } from '../../nixos/nix.js'
import { ensureNix, fixtureHost } from '../fixtures/nix/fixtures.js'

const here = fileURLToPath(new URL('.', import.meta.url))

async function build (version: string, kernel: string): Promise<string> {
  const { stdout } = await runNix('nix-build', [join(here, 'fixtures', 'toplevel.nix'), '--no-out-link',
    '--argstr', 'version', version, '--argstr', 'mode', 'good', '--argstr', 'nodeBin', process.execPath, '--argstr', 'kernel', kernel])
  return stdout.trim()
}

/** A fixture host on boot `boot-1` with a real journal; `engine()` is a fresh engine over it, as after a daemon restart. */
async function bootHost (): Promise<{ host: Awaited<ReturnType<typeof fixtureHost>>, db: Level<string, string>, bootIdPath: string, backend: NixProfileBackend, journal: Journal, engine: () => DeployEngine }> {
  const host = await fixtureHost()
  const db = new Level<string, string>(join(host.dir, 'db'))
  const bootIdPath = join(host.dir, 'boot_id')
  const currentSystem = join(host.dir, 'current-system')
  await writeFile(bootIdPath, 'boot-1\n')
  const backend = new NixProfileBackend({ profile: host.profile, activation: { env: { ...host.env, FLEETMESH_FIXTURE_CURRENT: currentSystem }, timeoutMs: 30_000 } })
  const policy: HealthPolicy = { soakMs: 0, checks: [{ kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 10, timeoutMs: 300, startPeriodMs: 5000 }] }
  const journal = new Journal(db.sublevel('deploy'))
  const engine = (): DeployEngine => new DeployEngine({ backend, journal, health: policy, boot: bootInfo({ bootIdPath, currentSystem }) })
  return { host, db, bootIdPath, backend, journal, engine }
}

test('a host that boots back into the system it ran is reverted by the reboot', { timeout: 5 * 60_000 }, async () => {
  await ensureNix()
  const stamp = Date.now()
  const [v1, v2] = await Promise.all([build(`eb-v1-${stamp}`, '1'), build(`eb-v2-${stamp}`, '2')])
  const { host, db, bootIdPath, backend, engine } = await bootHost()
  try {

    assert.equal((await engine().apply({ path: v1, tag: 'v1' })).status, 'ok')
    const staged = await engine().apply({ path: v2, tag: 'v2' })
    assert.equal(staged.status, 'staged')
    assert.deepEqual((staged as { changes: string[] }).changes, ['kernel', 'initrd'])
    assert.equal((await engine().recover())?.status, 'staged', 'in the same boot it stays staged')
    assert.equal(await engine().requestReboot(staged.id), true, 'the reboot is asked for')
    assert.equal(await engine().requestReboot(staged.id), false, 'a restarted engine in the same boot does not ask again')

    // the boot: a new boot id, and the old system came up (the current-system link still points at v1)
    await writeFile(bootIdPath, 'boot-2\n')
    assert.equal(await engine().requestReboot(staged.id), true, 'a new boot with the generation still staged may ask again')
    const out = await engine().recover()
    assert.equal(out?.status, 'rolled-back')
    assert.match((out as { reason: string }).reason, /^reverted-by-reboot: the host booted .*eb-v1/)
    assert.equal((await backend.current())?.path, v1, 'the profile is back on the system that runs')
    const ran = (await readFile(join(host.stateDir, 'activations'), 'utf8')).trim().split('\n')
    assert.deepEqual(ran, [`switch eb-v1-${stamp}`, `boot eb-v2-${stamp}`, `switch eb-v1-${stamp}`], 'staged with boot, never switched to; the rollback re-activates the old system')
  } finally {
    await db.close()
    await host.cleanup()
  }
})

test('a revert of a generation only staged unstages it: the profile and the next boot go back, and the revert ends ok', { timeout: 5 * 60_000 }, async () => {
  await ensureNix()
  const stamp = Date.now()
  const [v0, v1, v2] = await Promise.all([build(`er-v0-${stamp}`, '1'), build(`er-v1-${stamp}`, '1'), build(`er-v2-${stamp}`, '2')])
  const { host, db, bootIdPath, backend, journal, engine } = await bootHost()
  try {

    assert.equal((await engine().apply({ path: v0 })).status, 'ok')
    const applied = await engine().apply({ path: v1, tag: 'v1' })
    assert.equal(applied.status, 'ok')
    await engine().markReported(applied.id)
    const before = (applied as { generation: { number: number, path: string } }).generation
    const staged = await engine().apply({ path: v2, tag: 'v2' })
    assert.equal(staged.status, 'staged')

    const out = await engine().revert({ leaving: v2, id: 'revert-1', tag: 'revert' })
    assert.deepEqual(out, { status: 'ok', id: 'revert-1', generation: before } satisfies ApplyOutcome, 'the revert ends ok on the generation that runs')
    assert.deepEqual(await backend.current(), before, 'the profile is back on it')
    const ran = (await readFile(join(host.stateDir, 'activations'), 'utf8')).trim().split('\n')
    assert.deepEqual(ran, [`switch er-v0-${stamp}`, `switch er-v1-${stamp}`, `boot er-v2-${stamp}`, `boot er-v1-${stamp}`], 'the next boot goes back to it; nothing was switched')
    assert.equal(await journal.active(), null, 'nothing is staged any more')
    assert.deepEqual((await engine().unreported()).map((u) => [u.record.id, u.outcome.status]), [['revert-1', 'ok']], 'one outcome to report: the revert; the staged apply ended with it')
    assert.equal((await journal.get(staged.id))?.phase, 'failed')

    await engine().markReported('revert-1')

    // the next boot brings up the running generation: nothing is left to recover
    await writeFile(bootIdPath, 'boot-2\n')
    assert.equal(await engine().recover(), null)
    // a revert of v1 goes back to what was recorded before v1 was applied, not to the unstaged v2
    const back = await engine().revert({ leaving: v1, id: 'revert-2' })
    assert.equal(back.status, 'ok')
    assert.equal((back as { generation: { path: string } }).generation.path, v0)
  } finally {
    await db.close()
    await host.cleanup()
  }
})
