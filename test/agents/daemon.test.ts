// A daemon killed outright (SIGKILL: no chance to stop its agents) leaves its agents' process
// groups running; the next daemon on the data dir kills them before it starts the agents again,
// so there are never two copies of an agent (here: the new one could not even bind its port).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HostProcess } from '../../simulations/harness/processes.js'
import { initHost } from '../../node/init.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { ControlClient } from '../../node/client.js'
import { fixtureAgent, freePort, serving, waitFor } from './helpers.js'
import type { AgentStatus } from '../../node/agents/index.js'

/** running: a zombie left for an init that reaps slowly (containers) is dead */
const alive = (pid: number): boolean => {
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

test('the agents of a daemon killed outright are killed by the next daemon before it starts them again', { timeout: 5 * 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-agents-daemon-'))
  const port = await freePort()
  await initHost(dir, {})
  const config = await readConfig(dir)
  await writeConfig(dir, { ...config, deploy: { ...config.deploy, profile: join(dir, 'profile') }, agents: [fixtureAgent('web', port) as never] })
  let daemon = await HostProcess.start(dir)
  let orphan: number | undefined
  try {
    await waitFor('the agent to serve', async () => await serving(port))
    const [first] = await (await ControlClient.forDataDir(dir)).get<AgentStatus[]>('/v1/agents')
    orphan = first.pid as number
    await daemon.stop('SIGKILL')
    assert.ok(alive(orphan), 'the agent outlived the daemon killed outright')
    assert.ok(await serving(port), 'and still holds its port')

    daemon = await HostProcess.start(dir)
    const client = await ControlClient.forDataDir(dir)
    await waitFor('the new daemon\'s agent to serve', async () => {
      const [s] = await client.get<AgentStatus[]>('/v1/agents')
      return s.state === 'running' && s.pid !== orphan && await serving(port)
    })
    assert.ok(!alive(orphan), 'the orphan was killed')
    const [s] = await client.get<AgentStatus[]>('/v1/agents')
    assert.deepEqual(s.restarts, {}, 'the agent started once, cleanly, with its port free')
  } finally {
    await daemon.stop()
    if (orphan !== undefined && alive(orphan)) process.kill(-orphan, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})
