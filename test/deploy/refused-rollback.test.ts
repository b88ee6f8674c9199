// A rollback or a revert the engine refuses because another apply holds it (a local `fleetmesh
// apply`) or a newer release is staged for the next boot changed nothing: it is no outcome of the
// attempt. One real host (libp2p, level store, the daemon's membership and
// deploy agent) with the daemon's Nix executor on a real profile; a generation that fails its
// checks, applied locally, keeps the engine busy through its start period. A crash-loop escalation
// (failApply) during it must not write a false apply-failed ("APPLY_IN_PROGRESS"), and an
// auto-revert during it must not write `rollback ok:false`: both are tried again once the engine
// is free (the staged apply resolved), and then write the one outcome that happened.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import type { ApplyOutcome } from '../../nixos/index.js'
import { DEFAULT_DEPLOY } from '../../node/config.js'
import { DeployAgent, NixExecutor } from '../../node/deploy/index.js'
import { openDb } from '../../node/store.js'
import { createSimMesh, type SimHost } from '../../simulations/harness/sim-host.js'
import { runNix } from '../../nixos/nix.js'
import { ensureNix, fixtureHost } from '../fixtures/nix/fixtures.js'
import { until } from '../audit/helpers.js'

const WAIT_MS = 60_000
const here = fileURLToPath(new URL('.', import.meta.url))

/** A toplevel-shaped generation: one whose kernel differs from the running one's is staged for the next boot. */
async function build (version: string, mode: 'good' | 'status500', kernel = '1'): Promise<string> {
  const { stdout } = await runNix('nix-build', [join(here, 'fixtures', 'toplevel.nix'), '--no-out-link',
    '--argstr', 'version', version, '--argstr', 'mode', mode, '--argstr', 'nodeBin', process.execPath, '--argstr', 'kernel', kernel])
  return stdout.trim()
}

async function own (h: SimHost, release: string): Promise<Array<{ kind: string, body: Record<string, unknown> }>> {
  const out: Array<{ kind: string, body: Record<string, unknown> }> = []
  for await (const s of h.store.log()) {
    const body = s.entry.body as Record<string, unknown>
    if (s.entry.feed === h.peerId && body.release === release && ['apply-ok', 'apply-failed', 'rollback'].includes(s.entry.kind)) out.push({ kind: s.entry.kind, body })
  }
  return out
}

test('a rollback or revert refused by a busy engine writes no outcome and is tried again', { timeout: 5 * 60_000 }, async (t) => {
  await ensureNix()
  const stamp = Date.now()
  const [v0, v1, v2, v3, v4, bad, v5, v6] = await Promise.all([
    build(`rr-v0-${stamp}`, 'good'), build(`rr-v1-${stamp}`, 'good'), build(`rr-v2-${stamp}`, 'good'), build(`rr-v3-${stamp}`, 'good'),
    build(`rr-v4-${stamp}`, 'good', '2'), build(`rr-bad-${stamp}`, 'status500'), build(`rr-v5-${stamp}`, 'good'), build(`rr-v6-${stamp}`, 'good', '3')
  ])
  const host = await fixtureHost()
  const bootIdPath = join(host.dir, 'boot_id')
  const currentSystem = join(host.dir, 'current-system')
  await writeFile(bootIdPath, 'boot-1\n')
  const db = await openDb(join(host.dir, 'db'))
  const mesh = await createSimMesh(1)
  try {
    const h = mesh.founder
    const log = pino({ level: 'silent' })
    const executor = new NixExecutor({
      config: {
        ...DEFAULT_DEPLOY,
        profile: host.profile,
        activationEnv: { ...host.env, FLEETMESH_FIXTURE_CURRENT: currentSystem },
        bootIdPath,
        currentSystem,
        activationTimeoutMs: 60_000,
        healthChecks: [{ kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 10, timeoutMs: 300, startPeriodMs: 1500 }],
        soakMs: 0
      },
      db,
      libp2p: h.libp2p,
      membership: { isMember: () => true },
      store: h.store,
      log
    })
    await h.agent.stop()
    h.agent = new DeployAgent(
      { self: h.peerId, store: h.store, catchUp: h.sync, peers: { connected: () => h.libp2p.getPeers().map(String) }, membership: h.membership, executor, log },
      { catchUpGraceMs: 0, retry: { tries: 20, backoffMs: 300, maxBackoffMs: 1_000 } }
    )
    await h.agent.start()
    assert.equal((await executor.engine.apply({ path: v0 })).status, 'ok')
    const publish = async (path: string, autoRevert: boolean): Promise<string> => (await h.agent.publish({
      targets: [{ tag: 'web', path, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }], maxFailures: 1, autoRevert
    })).id
    const applied = async (release: string): Promise<string> => {
      await until(async () => (await own(h, release)).some((e) => e.kind === 'apply-ok'), `${release} to be applied`, WAIT_MS)
      return (await own(h, release)).find((e) => e.kind === 'apply-ok')?.body.attempt as string
    }
    /** A local apply of a generation that fails its checks: the engine is busy until it is rolled back. */
    const holdEngine = async (): Promise<{ local: Promise<ApplyOutcome> }> => {
      const local = executor.engine.apply({ path: bad })
      while ((await executor.current())?.path !== bad) await sleep(20)
      return { local }
    }

    await t.test('a crash-loop escalation while the engine is busy rolls back once it is free, and says why', async () => {
      const r1 = await publish(v1, false)
      const attempt = await applied(r1)
      const { local } = await holdEngine()
      const rolledBack = await h.agent.failApply(attempt, 'agent web crash-looped')
      assert.equal((await local).status, 'rolled-back')
      const entries = await own(h, r1)
      assert.deepEqual(entries.filter((e) => e.kind === 'apply-failed').map((e) => e.body.reason), ['agent web crash-looped'], 'one apply-failed, for the crash loop, not for the refusal')
      assert.deepEqual(entries.filter((e) => e.kind === 'rollback').map((e) => [e.body.ok, e.body.to]), [[true, v0]])
      assert.equal(rolledBack, true)
      assert.equal((await executor.current())?.path, v0)
    })

    await t.test('an auto-revert refused by a busy engine is tried again, and written once, ok', async () => {
      const r2 = await publish(v2, true)
      await applied(r2)
      const { local } = await holdEngine()
      await h.agent.control(r2, 'abort')
      await until(async () => (await own(h, r2)).some((e) => e.kind === 'rollback'), 'the revert to be written', WAIT_MS)
      await local
      assert.deepEqual((await own(h, r2)).filter((e) => e.kind === 'rollback').map((e) => [e.body.ok, e.body.to]), [[true, v0]])
      assert.equal((await executor.current())?.path, v0)
    })

    await t.test('a crash-loop escalation while a newer release is staged writes nothing until the staged apply is reverted', async () => {
      const r3 = await publish(v3, false)
      const attempt = await applied(r3)
      const r4 = await publish(v4, true)
      await until(async () => (await executor.unreported()).some((u) => u.outcome.status === 'staged'), `${r4} to be staged`, WAIT_MS)
      let rolledBack: boolean | undefined
      const escalation = h.agent.failApply(attempt, 'agent web crash-looped').then((b) => { rolledBack = b })
      // several refused tries go by
      await sleep(2_000)
      assert.deepEqual((await own(h, r3)).map((e) => e.kind), ['apply-ok'], 'nothing was rolled back, and nothing says so')
      assert.equal(rolledBack, undefined)
      assert.equal(await executor.boots.running(), v3, 'the older release still runs')

      await h.agent.control(r4, 'abort')
      await escalation
      assert.deepEqual((await own(h, r4)).map((e) => [e.kind, e.body.ok]), [['rollback', true]], 'the staged release is unstaged by its revert')
      const entries = await own(h, r3)
      assert.deepEqual(entries.filter((e) => e.kind === 'apply-failed').map((e) => e.body.reason), ['agent web crash-looped'])
      assert.deepEqual(entries.filter((e) => e.kind === 'rollback').map((e) => [e.body.ok, e.body.to]), [[true, v0]])
      assert.equal(rolledBack, true)
      assert.equal((await executor.current())?.path, v0)
    })

    await t.test('a refused rollback whose generation a reboot replaced writes nothing: the apply-ok stands, the newer generation is its own outcome', async () => {
      const r5 = await publish(v5, false)
      const attempt = await applied(r5)
      const r6 = await publish(v6, false)
      await until(async () => (await executor.unreported()).some((u) => u.outcome.status === 'staged'), `${r6} to be staged`, WAIT_MS)
      let rolledBack: boolean | undefined
      const escalation = h.agent.failApply(attempt, 'agent web crash-looped').then((b) => { rolledBack = b })
      await sleep(1_000)
      // the reboot into the staged generation; its recovery verifies it and ends it ok
      await writeFile(bootIdPath, 'boot-2\n')
      await rm(currentSystem, { force: true })
      await symlink(v6, currentSystem)
      await until(async () => (await executor.unreported()).some((u) => u.intent.release === r6 && u.outcome.status === 'ok'), `${r6} to be verified after the boot`, WAIT_MS)
      await escalation
      assert.equal(rolledBack, false, 'nothing was rolled back')
      assert.deepEqual((await own(h, r5)).map((e) => e.kind), ['apply-ok'], 'no apply-failed for a rollback that changed nothing')
      assert.equal((await executor.current())?.path, v6)
    })
  } finally {
    await mesh.close()
    await db.close()
    await host.cleanup()
  }
})
