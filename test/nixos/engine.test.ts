// The engine against real Nix: real profiles, real activation scripts starting real HTTP
// services, a real level journal.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Level } from 'level'
import { DeployEngine, Journal, NixProfileBackend, verify, type DeployEvent, type HealthPolicy } from '../../nixos/index.js'
import { activeVersion, buildGeneration, ensureNix, fixtureHost, type FixtureHost } from '../fixtures/nix/fixtures.js'

interface Rig {
  host: FixtureHost
  db: Level<string, string>
  backend: NixProfileBackend
  engine: DeployEngine
  events: DeployEvent[]
  policy: HealthPolicy
  close: () => Promise<void>
}

async function rig (keep?: number): Promise<Rig> {
  const host = await fixtureHost()
  const db = new Level<string, string>(join(host.dir, 'db'))
  const backend = new NixProfileBackend({ profile: host.profile, activation: { env: host.env, timeoutMs: 30_000 } })
  const events: DeployEvent[] = []
  const policy: HealthPolicy = { soakMs: 300, checks: [{ kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 10, timeoutMs: 300 }] }
  const engine = new DeployEngine({ backend, journal: new Journal(db.sublevel('deploy')), health: policy, keep, onEvent: (e) => { events.push(e) } })
  return { host, db, backend, engine, events, policy, close: async () => { await db.close(); await host.cleanup() } }
}

const gens: Record<string, string> = {}

before(async () => {
  await ensureNix()
  const specs = [['e1', 'good'], ['e2', 'good'], ['e-crash', 'crash'], ['e-500', 'status500'], ['e-hang', 'hang']] as const
  for (const [v, mode] of specs) gens[v] = await buildGeneration(v, mode)
})

function gen (v: string): string {
  const p = gens[v]
  assert.ok(p !== undefined)
  return p
}

describe('DeployEngine on a real Nix profile', () => {
  let r: Rig
  before(async () => { r = await rig() })
  after(async () => { await r.close() })

  it('applies a good generation and verifies it healthy', async () => {
    const out = await r.engine.apply({ path: gen('e1') })
    assert.equal(out.status, 'ok')
    assert.deepEqual(await r.backend.current(), { number: 1, path: gen('e1') })
    assert.equal(await activeVersion(r.host.stateDir), 'e1')
    assert.equal((await fetch(r.host.url)).status, 200)
    assert.deepEqual(r.events.map(e => e.kind), ['apply-start', 'switched', 'apply-ok'])
    const second = await r.engine.apply({ path: gen('e2') })
    assert.equal(second.status, 'ok')
    assert.deepEqual(await r.backend.current(), { number: 2, path: gen('e2') })
  })

  for (const [bad, expectOutput] of [['e-crash', /ECONNREFUSED|fetch failed/], ['e-500', /HTTP 500/], ['e-hang', /no answer within 300 ms/]] as const) {
    it(`rolls back ${bad} to the exact previous generation, healthy again`, async () => {
      const before = await r.backend.current()
      assert.ok(before !== null)
      r.events.length = 0
      const out = await r.engine.apply({ path: gen(bad) })
      assert.equal(out.status, 'rolled-back')
      assert.ok(out.status === 'rolled-back')
      assert.deepEqual(out.generation, before)
      assert.equal(out.failedCheck?.check, 'web')
      assert.match(out.failedCheck?.output ?? '', expectOutput)
      assert.deepEqual(await r.backend.current(), before)
      assert.equal(await activeVersion(r.host.stateDir), 'e2')
      assert.equal((await fetch(r.host.url)).status, 200)
      assert.deepEqual(r.events.map(e => e.kind), ['apply-start', 'switched', 'health-failed', 'rollback'])
      const failed = r.events[2]
      assert.ok(failed?.kind === 'health-failed')
      assert.equal(failed.check, 'web')
      assert.equal(failed.generation?.path, gen(bad))
      const rb = r.events[3]
      assert.ok(rb?.kind === 'rollback')
      assert.deepEqual(rb.to, before)
      assert.ok(r.events.every(e => e.applyId === out.id && typeof e.at === 'number' && e.id.startsWith(out.id)))
    })
  }

  it('rolls back when activation itself fails', async () => {
    const prev = await r.backend.current()
    await writeFile(join(r.host.stateDir, 'fail-activation-e1'), '')
    const out = await r.engine.apply({ path: gen('e1') })
    assert.equal(out.status, 'rolled-back')
    assert.ok(out.status === 'rolled-back')
    assert.match(out.reason, /activation of generation \d+ .* exited 1/)
    assert.deepEqual(await r.backend.current(), prev)
    assert.equal((await fetch(r.host.url)).status, 200)
  })

  it('refuses a second apply while one runs', async () => {
    const first = r.engine.apply({ path: gen('e2') })
    await assert.rejects(r.engine.apply({ path: gen('e2') }), { code: 'APPLY_IN_PROGRESS' })
    assert.equal((await first).status, 'ok')
  })
})

describe('retention', () => {
  it('keeps the last N generations after each apply that ends healthy, the current one among them', async () => {
    const r = await rig(2)
    try {
      for (const v of ['e1', 'e2', 'e1']) assert.equal((await r.engine.apply({ path: gen(v) })).status, 'ok')
      assert.deepEqual((await r.backend.list()).map(g => g.number), [2, 3])
      const pruned = r.events.filter(e => e.kind === 'pruned')
      assert.deepEqual(pruned.map(e => e.kind === 'pruned' ? e.deleted : []), [[1]])
      // After a rollback Nix counts back from the current generation and never deletes the
      // failed newer one; the next apply's new generation replaces it as the newest.
      assert.equal((await r.engine.apply({ path: gen('e-crash') })).status, 'rolled-back')
      assert.deepEqual(await r.backend.current(), { number: 3, path: gen('e1') })
      assert.deepEqual((await r.backend.list()).map(g => g.number), [2, 3, 4])
      assert.equal((await r.engine.apply({ path: gen('e2') })).status, 'ok')
      assert.deepEqual((await r.backend.list()).map(g => g.number), [4, 5])
    } finally {
      await r.close()
    }
  })
})

describe('a rollback that fails', () => {
  let r: Rig
  before(async () => { r = await rig() })
  after(async () => { await r.close() })

  it('is reported failed, loudly, never as rolled back', async () => {
    assert.equal((await r.engine.apply({ path: gen('e2') })).status, 'ok')
    // The previous generation can no longer activate: the rollback cannot complete.
    await writeFile(join(r.host.stateDir, 'fail-activation-e2'), '')
    r.events.length = 0
    const out = await r.engine.apply({ path: gen('e-500') })
    assert.equal(out.status, 'failed')
    assert.ok(out.status === 'failed')
    assert.equal(out.code, 'ROLLBACK_FAILED')
    assert.match(out.reason, /health check web failed.*rollback to generation 1 failed/s)
    const kinds = r.events.map(e => e.kind)
    assert.deepEqual(kinds, ['apply-start', 'switched', 'health-failed', 'apply-failed'])
    assert.ok(!kinds.includes('rollback'))
    const last = r.events.at(-1)
    assert.ok(last?.kind === 'apply-failed' && last.rollbackAttempted)
    // The journal agrees, and holds no unfinished apply.
    const journal = new Journal(r.db.sublevel('deploy'))
    assert.equal((await journal.get(out.id))?.phase, 'failed')
    assert.equal(await journal.active(), null)
  })

  it('a rollback whose old generation is unhealthy is failed too', async () => {
    const policy: HealthPolicy = { soakMs: 0, checks: [{ kind: 'command', name: 'never', command: 'exit 1', intervalMs: 20, retries: 2 }] }
    const verdict = await verify(policy)
    assert.equal(verdict.ok, false)
    await writeFile(join(r.host.stateDir, 'fail-activation-e2'), '')
    const out = await r.engine.apply({ path: gen('e1'), health: policy })
    assert.equal(out.status, 'failed')
    assert.ok(out.status === 'failed')
    assert.equal(out.code, 'ROLLBACK_FAILED')
  })
})
