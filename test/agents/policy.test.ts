// The restart policy and what it writes: a crash loop fails the agent and raises the alert,
// the operator brings it back, an agent that dies as fast as it can writes a bounded number of
// entries, and its output stays within its log files' bound.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { agentEntries, AGENT_SCRIPT, freePort, serving, startHost, waitFor } from './helpers.js'
import type { AgentStatus } from '../../node/agents/index.js'

const TEST_MS = 3 * 60_000

test('a crash loop fails the agent, raises the alert, and the operator\'s restart brings it back', { timeout: TEST_MS }, async () => {
  const agent = { name: 'loop', command: process.execPath, args: [AGENT_SCRIPT, '--crash-at-start'], restart: { backoffInitialMs: 20, backoffMaxMs: 40, maxRestarts: 3, windowMs: 60_000 } }
  const host = await startHost([agent])
  try {
    await waitFor('the crash-loop entry', async () => (await agentEntries(host.node, 'loop')).some((e) => e.event === 'crash-loop'))
    const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
    assert.equal(s.restarts.crash, 3, 'exactly maxRestarts restarts, then no more')
    assert.match(s.reason ?? '', /crash-looped: more than 3 restarts within 60000 ms/)
    const entries = await agentEntries(host.node, 'loop')
    assert.deepEqual(entries.map((e) => e.event), ['start', 'exit', 'restart', 'exit', 'restart', 'exit', 'restart', 'exit', 'crash-loop'])
    const metrics = await (await fetch(`${host.client.url}/metrics`, { headers: { authorization: `Bearer ${host.client.token}` } })).text()
    assert.match(metrics, /fleetmesh_agent_failed\{agent="loop"\} 1/, 'the alert')
    assert.match(metrics, /fleetmesh_agent_up\{agent="loop"\} 0/)
    // still failed a while later: nothing restarts it on its own
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal((await agentEntries(host.node, 'loop')).length, entries.length)

    const again = await host.client.post<AgentStatus>('/v1/agents/loop/restart')
    assert.notEqual(again.state, 'failed')
    await waitFor('a second crash-loop entry', async () => (await agentEntries(host.node, 'loop')).filter((e) => e.event === 'crash-loop').length === 2)
    const after = await agentEntries(host.node, 'loop')
    assert.equal(after[entries.length].event, 'restart')
    assert.equal(after[entries.length].reason, 'operator')
    assert.equal(after.at(-1)?.event, 'crash-loop')
  } finally {
    await host.stop()
  }
})

test('an agent dying as fast as it can writes a bounded number of entries, the rest counted', { timeout: TEST_MS }, async () => {
  // /bin/false dies at once; the policy allows 1000 restarts a minute 10 ms apart
  const agent = { name: 'flood', command: '/bin/false', restart: { backoffInitialMs: 10, backoffMaxMs: 10, maxRestarts: 1000, windowMs: 60_000 } }
  const host = await startHost([agent])
  try {
    await waitFor('many restarts', async () => ((await host.client.get<AgentStatus[]>('/v1/agents'))[0].restarts.crash ?? 0) >= 150)
    const [s] = await host.client.get<AgentStatus[]>('/v1/agents')
    const entries = await agentEntries(host.node, 'flood')
    assert.ok(entries.length <= 20, `at most 20 entries a minute, not ${entries.length} for ${s.restarts.crash} restarts`)
    assert.ok(entries.length >= 10, 'the budget is used, not everything dropped')
  } finally {
    await host.stop()
  }
})

test('an agent\'s output goes to bounded, private, rotating log files, readable through the API', { timeout: TEST_MS }, async () => {
  // prints 2 KiB lines as fast as it can, far past the 8 KiB × 2 files allowed
  const script = 'const l = "x".repeat(2047) + "\\n"; let n = 0; const t = setInterval(() => { for (let i = 0; i < 50; i++) process.stdout.write(`${n++} ${l}`) }, 5); setTimeout(() => { clearInterval(t); console.log("END-OF-OUTPUT") }, 500); setInterval(() => {}, 1000)'
  const agent = { name: 'chatty', command: process.execPath, args: ['-e', script], logs: { maxBytes: 8192, files: 2 } }
  const host = await startHost([agent])
  try {
    const dir = join(host.dir, 'agents', 'chatty')
    await waitFor('the agent\'s last line', async () => {
      const r = await host.client.get<{ text: string }>('/v1/agents/chatty/logs')
      return r.text.includes('END-OF-OUTPUT')
    })
    const files = readdirSync(dir).filter((f) => f.startsWith('output.log')).sort()
    assert.deepEqual(files, ['output.log', 'output.log.1'])
    for (const f of files) {
      const st = statSync(join(dir, f))
      assert.ok(st.size <= 8192, `${f} is ${st.size} bytes`)
      assert.equal(st.mode & 0o777, 0o600, `${f} is private`)
    }
    assert.equal(statSync(dir).mode & 0o777, 0o700)
    const all = await host.client.get<{ text: string, from: number, cursor: number, dropped: boolean }>('/v1/agents/chatty/logs?since=0')
    assert.equal(all.dropped, true, 'the oldest output was rotated away and the read says so')
    assert.ok(all.cursor > 16384, 'the cursor counts every byte ever written')
    const next = await host.client.get<{ text: string, cursor: number }>(`/v1/agents/chatty/logs?since=${all.cursor}`)
    assert.equal(next.text, '', 'nothing after the cursor yet')
  } finally {
    await host.stop()
  }
})

test('heartbeats are taken only with the agent\'s own token', { timeout: TEST_MS }, async () => {
  const [pa, pb] = [await freePort(), await freePort()]
  const spec = (name: string, port: number): Record<string, unknown> => ({ name, command: process.execPath, args: [AGENT_SCRIPT], env: { PORT: String(port) } })
  const host = await startHost([spec('a', pa), spec('b', pb)])
  try {
    await waitFor('both agents to serve', async () => await serving(pa) && await serving(pb))
    const { token: tokenOfB } = await host.client.post<{ token: string }>('/v1/agents', { agent: 'b' })
    const beat = async (agent: string, token: string): Promise<number> => (await fetch(`${host.client.url}/v1/agents/${agent}/heartbeat`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status
    assert.equal(await beat('a', tokenOfB), 403, 'another agent\'s token')
    assert.equal(await beat('a', host.client.token), 403, 'the operator\'s token: a heartbeat comes from the agent')
    assert.equal(await beat('a', 'f'.repeat(64)), 401, 'a made-up token')
    assert.equal(await beat('b', tokenOfB), 200, 'b\'s own token')
    assert.equal(await beat('nobody', tokenOfB), 404)
    const { RoomClient } = await import('../../node/room-client.js')
    const status = await new RoomClient({ url: host.client.url, token: tokenOfB, agent: 'b' }).heartbeat()
    assert.equal(status.name, 'b')
    await assert.rejects(new RoomClient({ url: host.client.url, token: tokenOfB, agent: 'a' }).heartbeat(), { code: 'API_FORBIDDEN' })
  } finally {
    await host.stop()
  }
})
