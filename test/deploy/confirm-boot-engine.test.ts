// Deferred activation in the engine, on a real Nix profile with real activation scripts and a real
// level journal (issue 14, 6): a host that boots back into the system it ran before, not into the
// staged generation (the old entry chosen at the boot menu, or fallen back to), has the staged
// apply rolled back by recover(), as `reverted-by-reboot`, and its profile back on that system.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { DeployEngine, Journal, NixProfileBackend, bootInfo, type HealthPolicy } from '../../nixos/index.js'
import { runNix } from '../../nixos/nix.js'
import { ensureNix, fixtureHost } from '../fixtures/nix/fixtures.js'

const here = fileURLToPath(new URL('.', import.meta.url))

async function build (version: string, kernel: string): Promise<string> {
  const { stdout } = await runNix('nix-build', [join(here, 'fixtures', 'toplevel.nix'), '--no-out-link',
    '--argstr', 'version', version, '--argstr', 'mode', 'good', '--argstr', 'nodeBin', process.execPath, '--argstr', 'kernel', kernel])
  return stdout.trim()
}

test('a host that boots back into the system it ran is reverted by the reboot', { timeout: 5 * 60_000 }, async () => {
  await ensureNix()
  const stamp = Date.now()
  const [v1, v2] = await Promise.all([build(`eb-v1-${stamp}`, '1'), build(`eb-v2-${stamp}`, '2')])
  const host = await fixtureHost()
  const db = new Level<string, string>(join(host.dir, 'db'))
  try {
    const bootIdPath = join(host.dir, 'boot_id')
    const currentSystem = join(host.dir, 'current-system')
    await writeFile(bootIdPath, 'boot-1\n')
    const backend = new NixProfileBackend({ profile: host.profile, activation: { env: { ...host.env, FLEETMESH_FIXTURE_CURRENT: currentSystem }, timeoutMs: 30_000 } })
    const policy: HealthPolicy = { soakMs: 0, checks: [{ kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 10, timeoutMs: 300, startPeriodMs: 5000 }] }
    const engine = (): DeployEngine => new DeployEngine({ backend, journal: new Journal(db.sublevel('deploy')), health: policy, boot: bootInfo({ bootIdPath, currentSystem }) })

    assert.equal((await engine().apply({ path: v1, tag: 'v1' })).status, 'ok')
    const staged = await engine().apply({ path: v2, tag: 'v2' })
    assert.equal(staged.status, 'staged')
    assert.deepEqual((staged as { changes: string[] }).changes, ['kernel', 'initrd'])
    assert.equal((await engine().recover())?.status, 'staged', 'in the same boot it stays staged')

    // the boot: a new boot id, and the old system came up (the current-system link still points at v1)
    await writeFile(bootIdPath, 'boot-2\n')
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
