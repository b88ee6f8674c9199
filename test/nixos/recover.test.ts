// kill -9 of the process running the engine, then recover() in a fresh process: the
// journal finishes what the crash interrupted, and nothing unverified is reported ok.
// (crash.test.ts kills the daemon's executor at every phase.)
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { Level } from 'level'
import { DeployEngine, Journal, NixProfileBackend, type DeployEvent, type HealthPolicy } from '../../nixos/index.js'
import { activeVersion, buildGeneration, ensureNix, fixtureHost, type FixtureHost } from '../fixtures/nix/fixtures.js'

const child = fileURLToPath(new URL('./engine-child.ts', import.meta.url))

interface ChildRun { signal: NodeJS.Signals | null, events: DeployEvent[] }

async function runChild (host: FixtureHost, path: string, policy: HealthPolicy, killAt: string | null): Promise<ChildRun> {
  const args = { profile: host.profile, db: join(host.dir, 'db'), path, env: host.env, policy, killAt }
  return await new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', child], { env: { ...process.env, ENGINE_CHILD_ARGS: JSON.stringify(args) } }, (err, stdout) => {
      const events = stdout.split('\n').filter(l => l.startsWith('{"id"')).map(l => JSON.parse(l) as DeployEvent)
      resolve({ signal: (err as { signal?: NodeJS.Signals } | null)?.signal ?? null, events })
    })
  })
}

function httpPolicy (host: FixtureHost): HealthPolicy {
  return { soakMs: 200, checks: [{ kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 10, timeoutMs: 300, startPeriodMs: 5000 }] }
}

async function withEngine<T> (host: FixtureHost, policy: HealthPolicy, fn: (e: DeployEngine, j: Journal, events: DeployEvent[]) => Promise<T>): Promise<T> {
  const db = new Level<string, string>(join(host.dir, 'db'))
  const journal = new Journal(db.sublevel('deploy'))
  const events: DeployEvent[] = []
  const engine = new DeployEngine({
    backend: new NixProfileBackend({ profile: host.profile, activation: { env: host.env } }),
    journal,
    health: policy,
    onEvent: (e) => { events.push(e) }
  })
  try {
    return await fn(engine, journal, events)
  } finally {
    await db.close()
  }
}

describe('recover() after kill -9', () => {
  const gens: Record<string, string> = {}
  const hosts: FixtureHost[] = []
  before(async () => {
    await ensureNix()
    gens.r1 = await buildGeneration('r1', 'good')
    gens.r2 = await buildGeneration('r2', 'good')
  })
  after(async () => { for (const h of hosts) await h.cleanup() })

  it('between switch and activation: the profile is reset to the recorded generation, a transient failure', async () => {
    const host = await fixtureHost()
    hosts.push(host)
    const policy = httpPolicy(host)
    const first = await runChild(host, gens.r1 as string, policy, null)
    assert.equal(first.signal, null)
    assert.deepEqual(first.events.map(e => e.kind), ['apply-start', 'switched', 'apply-ok'])

    const crashed = await runChild(host, gens.r2 as string, policy, 'switched')
    assert.equal(crashed.signal, 'SIGKILL')
    assert.deepEqual(crashed.events.map(e => e.kind), ['apply-start', 'switched'])

    await withEngine(host, policy, async (engine, journal, events) => {
      const pending = await journal.active()
      assert.equal(pending?.phase, 'switched')
      assert.deepEqual(pending?.switched, { number: 2, path: gens.r2 })
      await assert.rejects(engine.apply({ path: gens.r2 as string }), { code: 'APPLY_IN_PROGRESS' })

      const out = await engine.recover()
      assert.ok(out?.status === 'failed' && out.transient === true && out.code === 'APPLY_INTERRUPTED', JSON.stringify(out))
      assert.deepEqual(events.map(e => e.kind), ['apply-failed'])
      assert.equal(await journal.active(), null)
      assert.equal((await journal.get(pending?.id ?? ''))?.phase, 'failed')
      assert.equal(await engine.recover(), null)
      assert.deepEqual(await new NixProfileBackend({ profile: host.profile }).current(), { number: 1, path: gens.r1 })
    })
    // Never activated: the service of r1 kept running throughout.
    assert.equal(await activeVersion(host.stateDir), 'r1')
    assert.equal((await fetch(host.url)).status, 200)
  })

  it('a version-1 record (from before detached activation) in phase switched: rolled back in full', async () => {
    // Written by the previous release of this engine, which activated right after `switched`
    // without journalling it: the activation may have run, so the old generation is re-activated.
    const host = await fixtureHost()
    hosts.push(host)
    const policy = httpPolicy(host)
    assert.equal((await runChild(host, gens.r1 as string, policy, null)).signal, null)
    const backend = new NixProfileBackend({ profile: host.profile, activation: { env: host.env } })
    const switched = await backend.switch(gens.r2 as string)
    await withEngine(host, policy, async (engine, journal) => {
      const t = Date.now()
      await journal.write({ v: 1, id: 'legacy-1', target: gens.r2 as string, phase: 'switched', previous: { number: 1, path: gens.r1 as string }, switched, startedAt: t, updatedAt: t, reason: null, tag: null, outcome: null, reported: true })
      const out = await engine.recover()
      assert.ok(out?.status === 'rolled-back', JSON.stringify(out))
      assert.deepEqual(out.generation, { number: 1, path: gens.r1 })
    })
    assert.equal(await activeVersion(host.stateDir), 'r1')
  })

  it('during verification: verifies again and only then reports ok', async () => {
    const host = await fixtureHost()
    hosts.push(host)
    const policy = httpPolicy(host)
    assert.equal((await runChild(host, gens.r1 as string, policy, null)).signal, null)
    // The first probe of this check kills the engine's process mid-verification.
    const killer: HealthPolicy = { soakMs: 60_000, checks: [{ kind: 'command', name: 'killer', command: 'kill -9 $PPID', intervalMs: 50 }] }
    const crashed = await runChild(host, gens.r2 as string, killer, null)
    assert.equal(crashed.signal, 'SIGKILL')
    assert.ok(!crashed.events.some(e => e.kind === 'apply-ok'))

    await withEngine(host, policy, async (engine, journal, events) => {
      assert.equal((await journal.active())?.phase, 'verifying')
      const out = await engine.recover()
      assert.equal(out?.status, 'ok')
      assert.deepEqual(out?.status === 'ok' ? out.generation : null, { number: 2, path: gens.r2 })
      assert.deepEqual(events.map(e => e.kind), ['apply-ok'])
    })
    assert.equal(await activeVersion(host.stateDir), 'r2')
  })
})
