// `fleetmesh agents`, `agents restart NAME`, `agents logs NAME [--follow]`: the real CLI against
// a real host supervising the fixture agent.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cliArgv, runCli } from '../../simulations/harness/processes.js'
import { fixtureAgent, freePort, poke, serving, startHost, waitFor } from './helpers.js'
import type { AgentStatus } from '../../node/agents/index.js'


test('fleetmesh agents lists, restarts and shows the logs of supervised agents', { timeout: 3 * 60_000 }, async () => {
  const port = await freePort()
  const host = await startHost([fixtureAgent('web', port)])
  const cli = async (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => await runCli(['--data-dir', host.dir, ...args])
  try {
    await waitFor('the agent to serve', async () => await serving(port))
    const list = await cli('agents', '--json')
    assert.equal(list.code, 0, list.stderr)
    const [s] = JSON.parse(list.stdout) as AgentStatus[]
    assert.equal(s.name, 'web')
    assert.equal(s.state, 'running')
    const human = await cli('agents')
    assert.match(human.stdout, /^web\s+running\s+pid \d+/m)

    const restarted = await cli('agents', 'restart', 'web', '--json')
    assert.equal(restarted.code, 0, restarted.stderr)
    await waitFor('the restarted agent', async () => {
      const [n] = await host.client.get<AgentStatus[]>('/v1/agents')
      return n.pid !== s.pid && n.state === 'running' && n.restarts.operator === 1
    })
    const unknown = await cli('agents', 'restart', 'nope')
    assert.notEqual(unknown.code, 0)
    assert.match(unknown.stderr, /no agent nope/)

    await waitFor('the restarted agent to serve', async () => await serving(port))
    const logs = await cli('agents', 'logs', 'web')
    assert.equal(logs.code, 0, logs.stderr)
    assert.match(logs.stdout, /agent web serving on \d+/)
    assert.match(logs.stdout, /started, pid \d+ \(restart: operator\)/)

    // --follow prints what the agent writes after it started following
    const follow = spawn(process.execPath, [...cliArgv(), '--data-dir', host.dir, 'agents', 'logs', 'web', '--follow'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let followed = ''
    follow.stdout.setEncoding('utf8').on('data', (d: string) => { followed += d })
    try {
      await waitFor('follow to print the current output', () => followed.includes('serving on'))
      await poke(port, 'crash')
      await waitFor('follow to print the restart', () => /restart: crash/.test(followed))
    } finally {
      follow.kill('SIGKILL')
    }
  } finally {
    await host.stop()
  }
})
