// The daemon's executor and the operator's local commands on a real Nix profile: where a revert
// and a local rollback go, and which failures are transient.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Level } from 'level'
import { DEFAULT_DEPLOY } from '../../node/config.js'
import { LocalDeploy, NixExecutor, type Intent } from '../../node/deploy/index.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { createNodeKindRegistry, openDb } from '../../node/store.js'
import { AuditStore, auditSublevel } from '../../protocols/audit/index.js'
import { activeVersion, buildGeneration, ensureNix, fixtureHost, type FixtureHost } from '../fixtures/nix/fixtures.js'

interface Rig { host: FixtureHost, db: Level<string, Uint8Array>, libp2p: MeshLibp2p, store: AuditStore, executor: NixExecutor, local: LocalDeploy }

async function rig (): Promise<Rig> {
  const host = await fixtureHost()
  const privateKey = await generateKeyPair('Ed25519')
  const db = await openDb(join(host.dir, 'db'))
  const store = await AuditStore.open({ db: auditSublevel(db), privateKey, kinds: createNodeKindRegistry() })
  const libp2p = await createMeshLibp2p({ privateKey, listen: [] })
  const executor = new NixExecutor({
    config: {
      ...DEFAULT_DEPLOY,
      profile: host.profile,
      activationEnv: host.env,
      activationTimeoutMs: 60_000,
      healthChecks: [{ kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 10, timeoutMs: 300, startPeriodMs: 5000 }],
      soakMs: 200
    },
    db,
    libp2p,
    membership: { isMember: () => true },
    store,
    log: (await import('pino')).pino({ level: 'silent' })
  })
  return { host, db, libp2p, store, executor, local: new LocalDeploy({ nix: executor, store }) }
}

async function close (r: Rig): Promise<void> {
  await r.libp2p.stop()
  await r.db.close()
  await r.host.cleanup()
}

describe('NixExecutor and LocalDeploy on a real Nix profile', () => {
  const gens: Record<string, string> = {}
  let r: Rig
  let n = 0
  const intent = (path: string, revert = false): Intent => ({ applyId: `a${++n}`, release: `rel${n}`, path, revert })
  before(async () => {
    await ensureNix()
    for (const [v, mode] of [['x1', 'good'], ['x3', 'good'], ['x-500', 'status500']] as const) gens[v] = await buildGeneration(v, mode)
    r = await rig()
    // Generation 1 healthy; generation 2 failed its checks and was rolled back from; generation 3 healthy.
    assert.equal((await r.executor.run(intent(gens.x1 as string), [])).status, 'ok')
    assert.equal((await r.executor.run(intent(gens['x-500'] as string), [])).status, 'rolled-back')
    assert.equal((await r.executor.run(intent(gens.x3 as string), [])).status, 'ok')
    assert.deepEqual((await r.local.generations()).map((g) => [g.number, g.path, g.current]), [[1, gens.x1, false], [2, gens['x-500'], false], [3, gens.x3, true]])
  })
  after(async () => { await close(r) })

  it('a transient failure: a path no source has; nothing changed', async () => {
    const missing = '/nix/store/00000000000000000000000000000000-fleetmesh-missing'
    const x = intent(missing)
    const out = await r.executor.run(x, [])
    assert.ok(out.status === 'failed' && out.transient === true && out.code === 'PATH_NOT_FETCHED', JSON.stringify(out))
    assert.deepEqual((await r.executor.unreported()).map((u) => u.intent.applyId).filter((id) => id === x.applyId), [x.applyId])
    assert.deepEqual(await r.executor.current(), { number: 3, path: gens.x3 })
  })

  it('a transient failure: a local `fleetmesh apply` holds the engine', async () => {
    // x-500 keeps the engine busy verifying through its start period once it is switched to.
    const local = r.local.applyLocal(gens['x-500'] as string, [], false)
    while ((await r.executor.current())?.path !== gens['x-500']) await sleep(20)
    const out = await r.executor.run(intent(gens.x1 as string), [])
    assert.ok(out.status === 'failed' && out.transient === true && out.code === 'APPLY_IN_PROGRESS', JSON.stringify(out))
    assert.equal((await local).outcome?.status, 'rolled-back')
    assert.deepEqual(await r.executor.current(), { number: 3, path: gens.x3 })
  })

  it('after generation 2 was rolled back, reverting generation 3 returns to 1, not 2', async () => {
    const fresh = await rig()
    try {
      const ok1 = await fresh.executor.run(intent(gens.x1 as string), [])
      assert.equal(ok1.status, 'ok')
      assert.equal((await fresh.executor.run(intent(gens['x-500'] as string), [])).status, 'rolled-back')
      const third = await fresh.executor.run(intent(gens.x3 as string), [])
      assert.ok(third.status === 'ok' && third.generation.number === 3)
      const out = await fresh.executor.run(intent(gens.x3 as string, true), [])
      assert.ok(out.status === 'ok', JSON.stringify(out))
      assert.equal(out.generation.path, gens.x1)
      assert.equal(await activeVersion(fresh.host.stateDir), 'x1')
      assert.equal((await fetch(fresh.host.url)).status, 200)
      const u = (await fresh.executor.unreported()).at(-1)
      assert.ok(u?.intent.revert === true && u.outcome.status === 'ok')

      // Generation 5 fails and is rolled back from, 6 is x3 again: `fleetmesh rollback` goes to
      // the newest generation recorded healthy (4, x1), not to generation 6 − 1.
      assert.equal((await fresh.executor.run(intent(gens['x-500'] as string), [])).status, 'rolled-back')
      assert.deepEqual(await fresh.executor.current(), { number: 4, path: gens.x1 })
      assert.deepEqual(await fresh.executor.run(intent(gens.x3 as string), []).then((o) => o.status === 'ok' ? o.generation : o), { number: 6, path: gens.x3 })
      const rolled = await fresh.local.rollbackLocal()
      assert.equal(rolled.healthy, true)
      assert.deepEqual(rolled.generation, { number: 4, path: gens.x1 })
      assert.equal(await activeVersion(fresh.host.stateDir), 'x1')
    } finally {
      await close(fresh)
    }
  })
})
