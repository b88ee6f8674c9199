// Escalation on real Nix: an agent whose command lives in the system profile crash-loops right
// after this host applied a new generation, so the watchdog fails that generation: the deploy
// engine rolls the profile back, apply-failed names the agent (it counts against the release's
// failure budget and halts it), and the agent comes back up on the generation restored. A crash
// loop with no recent apply only fails the agent (policy.test.ts). A release health check of
// kind "agent" fails a generation whose agent is not running and live, like any other check.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { rmSync } from 'node:fs'
import { pino } from 'pino'
import { MeshNode } from '../../node/mesh.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { NixProfileBackend, runNixBuild } from './nix.js'
import { runCli } from '../../simulations/harness/processes.js'
import { agentEntries, freePort, serving, startHost, waitFor, type Host } from './helpers.js'
import { ensureNix } from '../fixtures/nix/fixtures.js'
import type { AgentStatus } from '../../node/agents/index.js'
import type { EntryRow } from '../../node/routes.js'
import type { ReleaseBody, ReleaseStatus } from '../../protocols/rollout/index.js'

const here = fileURLToPath(new URL('fixtures/', import.meta.url))

async function generation (version: string, mode: 'good' | 'crash'): Promise<string> {
  return await runNixBuild(join(here, 'generation.nix'), { version, mode, nodeBin: process.execPath })
}

interface Setup {
  host: Host
  port: number
  good: string
  profileDir: string
  /** publishes `bad` to this host; the release and its entries of a kind */
  publishBad: () => Promise<{ release: ReleaseBody, entries: (kind: string) => Promise<EntryRow[]> }>
  stop: () => Promise<void>
}

/** A host whose agent `web` runs PROFILE/bin/agent (PORT in `agentExtra` is its port), the profile on a good generation; `bad` crashes at start. */
async function setup (agentExtra: Record<string, unknown>, deploy: Record<string, unknown> = {}): Promise<Setup> {
  await ensureNix()
  const stamp = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
  const [good, bad] = await Promise.all([generation(`good-${stamp}`, 'good'), generation(`bad-${stamp}`, 'crash')])
  const port = await freePort()
  const profileDir = join(await mkdtemp(join(tmpdir(), 'fleetmesh-agent-profile-')), 'system')
  await new NixProfileBackend({ profile: profileDir }).switch(good)
  const agent = {
    name: 'web',
    command: join(profileDir, 'bin', 'agent'),
    env: { PORT: String(port) },
    restart: { backoffInitialMs: 50, backoffMaxMs: 200, maxRestarts: 3, windowMs: 60_000 },
    ...JSON.parse(JSON.stringify(agentExtra).replaceAll('PORT', String(port))) as Record<string, unknown>
  }
  const host = await startHost([agent], { nix: true, tags: ['web'], deploy: { profile: profileDir, ...deploy } })
  return {
    host,
    port,
    good,
    profileDir,
    publishBad: async () => {
      const published = await runCli(['--data-dir', host.dir, 'release', 'publish', '--tag', 'web', '--path', bad, '--waves', '100%', '--json'])
      assert.equal(published.code, 0, published.stderr)
      const release = JSON.parse(published.stdout) as ReleaseBody
      const entries = async (kind: string): Promise<EntryRow[]> => (await host.client.get<EntryRow[]>(`/v1/audit/log?kind=${kind}`)).filter((e) => (e.body as { release?: string }).release === release.id)
      return { release, entries }
    },
    stop: async () => {
      await host.stop()
      await rm(dirname(profileDir), { recursive: true, force: true })
    }
  }
}

test('a crash loop right after an apply rolls the generation back and fails the release', { timeout: 10 * 60_000 }, async () => {
  const { host, port, good, profileDir, publishBad, stop } = await setup({})
  try {
    await waitFor('the agent of the good generation to serve', async () => await serving(port))
    const { release, entries } = await publishBad()
    // the activation restarts the agent on the new generation, where it crash-loops
    await waitFor('the escalation\'s apply-failed', async () => (await entries('apply-failed')).length === 1, 5 * 60_000)
    const [failed] = await entries('apply-failed')
    const attempt = (failed.body as { attempt: string }).attempt
    assert.match((failed.body as { reason: string }).reason, /agent web crash-looped: more than 3 restarts within 60000 ms/)
    assert.equal(((await entries('apply-ok'))[0].body as { attempt: string }).attempt, attempt, 'the apply that ended ok is the one failed')
    await waitFor('the rollback entry', async () => (await entries('rollback')).length === 1)
    assert.equal(((await entries('rollback'))[0].body as { to: string }).to, good)
    assert.equal((await new NixProfileBackend({ profile: profileDir }).current())?.path, good, 'the profile is back on the good generation')

    const agentLog = await agentEntries(host.node, 'web')
    assert.ok(agentLog.some((e) => e.event === 'restart' && e.reason === 'activation'), 'the activation restarted the agent')
    const escalation = agentLog.find((e) => e.event === 'escalate')
    assert.deepEqual({ release: escalation?.release, attempt: escalation?.attempt }, { release: release.id, attempt })
    assert.ok(!agentLog.some((e) => e.event === 'crash-loop'), 'escalated, not failed')

    await waitFor('the agent to serve again, on the good generation', async () => await serving(port))
    await waitFor('the agent to be running with no escalation under way', async () => {
      const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
      return s.state === 'running' && s.escalation === null
    })
    await waitFor('the release to halt on its failure', async () => (await host.client.get<ReleaseStatus>(`/v1/releases/${release.id}`)).state === 'halted')
  } finally {
    await stop()
  }
})

test('a crash loop after the daemon restarted since the apply still rolls the generation back', { timeout: 10 * 60_000 }, async () => {
  // On NixOS an activation may restart fleetmesh itself: the new generation brings the agent,
  // the restarted daemon starts it, and it crash-loops. The apply-ok was written by the process
  // before: the escalation must find it in the log and the journal, not in memory.
  await ensureNix()
  const stamp = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
  const [good, bad] = await Promise.all([generation(`good-${stamp}`, 'good'), generation(`bad-${stamp}`, 'crash')])
  const port = await freePort()
  const profileDir = join(await mkdtemp(join(tmpdir(), 'fleetmesh-agent-profile-')), 'system')
  await new NixProfileBackend({ profile: profileDir }).switch(good)
  const host = await startHost([], { nix: true, tags: ['web'], deploy: { profile: profileDir } })
  let node = host.node
  try {
    const published = await runCli(['--data-dir', host.dir, 'release', 'publish', '--tag', 'web', '--path', bad, '--waves', '100%', '--json'])
    assert.equal(published.code, 0, published.stderr)
    const release = JSON.parse(published.stdout) as ReleaseBody
    const entries = async (kind: string): Promise<EntryRow[]> => {
      const out: EntryRow[] = []
      for await (const s of node.store.log({ kind })) if ((s.entry.body as { release?: string }).release === release.id) out.push({ kind, body: s.entry.body } as unknown as EntryRow)
      return out
    }
    await waitFor('the apply-ok', async () => (await entries('apply-ok')).length === 1, 5 * 60_000)
    const attempt = ((await entries('apply-ok'))[0].body as { attempt: string }).attempt

    await node.stop()
    const config = await readConfig(host.dir)
    const agent = { name: 'web', command: join(profileDir, 'bin', 'agent'), env: { PORT: String(port) }, restart: { backoffInitialMs: 50, backoffMaxMs: 200, maxRestarts: 3, windowMs: 60_000 } }
    await writeConfig(host.dir, { ...config, agents: [agent] as never })
    node = await MeshNode.start({ dataDir: host.dir, logger: pino({ level: 'silent' }) })

    await waitFor('the escalation\'s apply-failed', async () => (await entries('apply-failed')).length === 1, 5 * 60_000)
    const [failed] = await entries('apply-failed')
    assert.equal((failed.body as { attempt: string }).attempt, attempt, 'the apply the process before wrote ok is the one failed')
    assert.match((failed.body as { reason: string }).reason, /agent web crash-looped/)
    await waitFor('the rollback entry', async () => (await entries('rollback')).length === 1)
    assert.equal(((await entries('rollback'))[0].body as { to: string }).to, good, 'back to the generation the journal recorded before the apply')
    assert.equal((await new NixProfileBackend({ profile: profileDir }).current())?.path, good)
    await waitFor('the agent to serve again, on the good generation', async () => await serving(port))
    const agentLog = await agentEntries(node, 'web')
    assert.equal(agentLog.filter((e) => e.event === 'escalate').length, 1, 'escalated once')
    assert.ok(!agentLog.some((e) => e.event === 'crash-loop'), 'escalated, not failed')
  } finally {
    await node.stop().catch(() => {})
    rmSync(host.dir, { recursive: true, force: true })
    await rm(dirname(profileDir), { recursive: true, force: true })
  }
})

test('a release health check of kind "agent" fails a generation whose agent does not come up', { timeout: 10 * 60_000 }, async () => {
  // no escalation here: only the health check judges the generation. The agent is live once its
  // health endpoint answered, which the crashing one never does.
  const check = { kind: 'agent', name: 'web', intervalMs: 100, retries: 2, startPeriodMs: 2000 }
  const liveness = { kind: 'http', url: 'http://127.0.0.1:PORT/health', intervalMs: 100, timeoutMs: 10_000 }
  const { host, port, good, profileDir, publishBad, stop } = await setup({ escalateWithinMs: 0, liveness }, { healthChecks: [check] })
  try {
    await waitFor('the agent of the good generation to serve', async () => await serving(port))
    const { entries } = await publishBad()
    await waitFor('apply-failed', async () => (await entries('apply-failed')).length === 1, 5 * 60_000)
    const [failed] = await entries('apply-failed')
    assert.match((failed.body as { reason: string }).reason, /health check web failed: agent web is not running and live/)
    assert.equal((failed.body as { check?: string }).check, 'web')
    assert.equal(await (await entries('apply-ok')).length, 0, 'the bad generation never counted as applied')
    assert.equal((await new NixProfileBackend({ profile: profileDir }).current())?.path, good)
    // the rollback's activation brought the failed agent back on the good generation
    await waitFor('the agent to serve again', async () => await serving(port))
    const agentLog = await agentEntries(host.node, 'web')
    // whether the health check or the agent's crash-loop limit came first depends on scheduling:
    // the verdict is the check's either way, and the rollback's activation restarted the agent
    assert.equal(agentLog.at(-1)?.event, 'restart')
    assert.equal(agentLog.at(-1)?.reason, 'activation')
  } finally {
    await stop()
  }
})
