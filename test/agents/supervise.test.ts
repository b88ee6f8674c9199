// The process backend end to end: a real host supervises real agent processes (the fixture
// agent, a node HTTP server) and heals them: a crash is restarted at once, a hang (heartbeats or
// health probes stop) is stopped and restarted, a leak over the memory ceiling is restarted, and
// every step is a signed `agent` entry in the host's feed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { agentEntries, fixtureAgent, freePort, poke, serving, startHost, waitFor } from './helpers.js'
import type { AgentStatus } from '../../node/agents/index.js'

const TEST_MS = 3 * 60_000

test('a crashed agent is restarted, and its exit and restart are signed entries', { timeout: TEST_MS }, async () => {
  const port = await freePort()
  const host = await startHost([fixtureAgent('web', port)])
  try {
    await waitFor('the agent to serve', async () => await serving(port))
    const [before] = await host.client.get<AgentStatus[]>('/v1/agents')
    assert.equal(before.state, 'running')
    await poke(port, 'crash')
    await waitFor('the agent to be restarted', async () => {
      const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
      return s.pid !== null && s.pid !== before.pid && s.state === 'running'
    })
    await waitFor('the restarted agent to serve', async () => await serving(port))
    const entries = await agentEntries(host.node, 'web')
    const events = entries.map((e) => e.event)
    assert.deepEqual(events.slice(0, 3), ['start', 'exit', 'restart'])
    assert.equal(entries[1].code, 3, 'the exit entry carries the exit code')
    assert.equal(entries[1].pid, before.pid)
    assert.equal(entries[2].reason, 'crash')
    const [after] = await host.client.get<AgentStatus[]>('/v1/agents')
    assert.equal(after.restarts.crash, 1)
    assert.equal(after.lastExit?.code, 3)
    const metrics = await (await fetch(`${host.client.url}/metrics`, { headers: { authorization: `Bearer ${host.client.token}` } })).text()
    assert.match(metrics, /fleetmesh_agent_restarts_total\{agent="web",reason="crash"\} 1/)
    assert.match(metrics, /fleetmesh_agent_up\{agent="web"\} 1/)
    assert.match(metrics, /fleetmesh_agent_rss_bytes\{agent="web"\} [1-9]/)
  } finally {
    await host.stop()
  }
})

test('an agent whose heartbeats stop is stopped and restarted (hang)', { timeout: TEST_MS }, async () => {
  const port = await freePort()
  const host = await startHost([fixtureAgent('beat', port, { liveness: { kind: 'heartbeat', timeoutMs: 1500 }, stopGraceMs: 500 }, { HEARTBEAT_MS: '200' })])
  try {
    await waitFor('the agent to be live', async () => (await host.client.get<AgentStatus[]>('/v1/agents'))[0].live)
    const [before] = await host.client.get<AgentStatus[]>('/v1/agents')
    await poke(port, 'hang')
    await waitFor('the hung agent to be restarted', async () => {
      const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
      return s.pid !== before.pid && s.live
    })
    const events = (await agentEntries(host.node, 'beat')).map((e) => `${e.event}${e.reason === 'hang' ? ':hang' : ''}`)
    assert.deepEqual(events.slice(0, 4), ['start', 'hang', 'exit', 'restart:hang'])
    const [after] = await host.client.get<AgentStatus[]>('/v1/agents')
    assert.equal(after.restarts.hang, 1)
    assert.equal(after.lastExit?.signal, 'SIGTERM', 'the hung agent was asked to stop first')
  } finally {
    await host.stop()
  }
})

test('an agent whose health endpoint stops answering is restarted, and SIGKILLed past its grace', { timeout: TEST_MS }, async () => {
  const port = await freePort()
  const liveness = { kind: 'http', url: `http://127.0.0.1:${port}/health`, intervalMs: 100, timeoutMs: 1500 }
  const host = await startHost([fixtureAgent('probe', port, { liveness, stopGraceMs: 300 }, { IGNORE_TERM: '1' })])
  try {
    await waitFor('the agent to be live', async () => (await host.client.get<AgentStatus[]>('/v1/agents'))[0].live)
    const [before] = await host.client.get<AgentStatus[]>('/v1/agents')
    await poke(port, 'hang')
    await waitFor('the hung agent to be restarted and live', async () => {
      const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
      return s.pid !== before.pid && s.live
    })
    const [after] = await host.client.get<AgentStatus[]>('/v1/agents')
    assert.equal(after.lastExit?.signal, 'SIGKILL', 'an agent that ignores SIGTERM is killed after the grace')
    const hang = (await agentEntries(host.node, 'probe')).find((e) => e.event === 'hang')
    assert.match(hang?.reason ?? '', /no passing http probe/)
  } finally {
    await host.stop()
  }
})

test('an agent whose process group grows over its memory ceiling is restarted (leak)', { timeout: TEST_MS }, async () => {
  const port = await freePort()
  const ceiling = 200 * 1024 * 1024
  const host = await startHost([fixtureAgent('leaky', port, { memoryMaxBytes: ceiling, memoryIntervalMs: 100 })])
  try {
    await waitFor('the agent to serve', async () => await serving(port))
    const [before] = await host.client.get<AgentStatus[]>('/v1/agents')
    await poke(port, 'leak')
    await waitFor('the leaking agent to be restarted', async () => {
      const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
      return s.pid !== before.pid && s.state === 'running'
    })
    await waitFor('the restarted agent to serve', async () => await serving(port))
    const leak = (await agentEntries(host.node, 'leaky')).find((e) => e.event === 'leak')
    assert.ok(leak !== undefined, 'a leak entry')
    assert.ok((leak.rssBytes ?? 0) > ceiling, `the entry shows the RSS over the ceiling: ${leak.rssBytes}`)
    assert.equal(leak.limitBytes, ceiling)
    assert.equal((await host.client.get<AgentStatus[]>('/v1/agents'))[0].restarts.leak, 1)
  } finally {
    await host.stop()
  }
})

test('an agent whose liveness command fails past its timeout is restarted', { timeout: TEST_MS }, async () => {
  const flag = join(mkdtempSync(join(tmpdir(), 'fleetmesh-agent-flag-')), 'well')
  writeFileSync(flag, '')
  const port = await freePort()
  const liveness = { kind: 'command', argv: ['/bin/sh', '-c', `test -e ${flag}`], intervalMs: 100, timeoutMs: 1000 }
  const host = await startHost([fixtureAgent('cmd', port, { liveness, stopGraceMs: 500 })])
  try {
    await waitFor('the agent to be live', async () => (await host.client.get<AgentStatus[]>('/v1/agents'))[0].live)
    const [before] = await host.client.get<AgentStatus[]>('/v1/agents')
    rmSync(flag)
    await waitFor('the hang entry', async () => (await agentEntries(host.node, 'cmd')).some((e) => e.event === 'hang'))
    writeFileSync(flag, '')
    await waitFor('the agent restarted and live', async () => {
      const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
      return s.pid !== before.pid && s.live
    })
    const hang = (await agentEntries(host.node, 'cmd')).find((e) => e.event === 'hang')
    assert.match(hang?.reason ?? '', /no passing command probe for \d+ ms \(timeout 1000 ms\)/)
  } finally {
    await host.stop()
    rmSync(dirname(flag), { recursive: true, force: true })
  }
})

test('an agent with a user runs as that user (the daemon is root)', { timeout: TEST_MS }, async (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root'); return }
  const nobody = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))?.split(':')
  assert.ok(nobody !== undefined, 'this machine has a nobody user')
  const agent = { name: 'unpriv', command: '/bin/sleep', args: ['600'], user: 'nobody', cwd: '/' }
  const host = await startHost([agent])
  try {
    await waitFor('the agent to run', async () => (await host.client.get<AgentStatus[]>('/v1/agents'))[0].state === 'running')
    const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${s.pid}/status`, 'utf8'))?.[1]
    assert.equal(uid, nobody[2])
  } finally {
    await host.stop()
  }
})
