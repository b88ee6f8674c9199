// A real host (MeshNode: libp2p, LevelDB, the control API) supervising real agent processes,
// for the tests of node/agents.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { MeshNode } from '../../node/mesh.js'
import { initHost } from '../../node/init.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { ControlClient } from '../../node/client.js'
import type { AgentBody } from '../../protocols/agents/index.js'
import { freePort } from '../fixtures/nix/fixtures.js'

export { freePort }
export const AGENT_SCRIPT = fileURLToPath(new URL('fixtures/agent.mjs', import.meta.url))
export const WAIT_MS = 60_000

export interface Host {
  dir: string
  node: MeshNode
  client: ControlClient
  stop: () => Promise<void>
}

/** An agent spec running the fixture agent on `port`. */
export function fixtureAgent (name: string, port: number, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): Record<string, unknown> {
  return { name, command: process.execPath, args: [AGENT_SCRIPT], env: { PORT: String(port), ...env }, ...extra }
}

/** A founded one-host mesh whose config.json lists `agents`; `nix: false` starts it without its deploy agent. */
export async function startHost (agents: unknown[], opts: { nix?: boolean, deploy?: Record<string, unknown>, tags?: string[] } = {}): Promise<Host> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-agents-'))
  await initHost(dir, { mesh: 'agents', tags: opts.tags })
  const config = await readConfig(dir)
  await writeConfig(dir, { ...config, deploy: { ...config.deploy, ...opts.deploy }, agents: agents as never })
  const path = process.env.PATH
  if (opts.nix !== true) process.env.PATH = ''
  const node = await MeshNode.start({ dataDir: dir, logger: pino({ level: 'silent' }) }).finally(() => { process.env.PATH = path })
  const client = await ControlClient.forDataDir(dir)
  return {
    dir,
    node,
    client,
    stop: async () => {
      await node.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** This host's `agent` entries, in feed order. */
export async function agentEntries (node: MeshNode, agent?: string): Promise<AgentBody[]> {
  const out: AgentBody[] = []
  for await (const s of node.store.log({ kind: 'agent' })) {
    const b = s.entry.body as unknown as AgentBody
    if (agent === undefined || b.agent === agent) out.push(b)
  }
  return out
}

export async function waitFor (what: string, cond: () => Promise<boolean> | boolean, ms = WAIT_MS): Promise<void> {
  const until = Date.now() + ms
  while (!await cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** GET /health of the fixture agent: true when it answers 200 within a second. */
export async function serving (port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) })
    return res.status === 200
  } catch {
    return false
  }
}

export async function poke (port: number, what: 'crash' | 'hang' | 'leak'): Promise<void> {
  await fetch(`http://127.0.0.1:${port}/${what}`, { method: 'POST' }).then(async (r) => { await r.text() }, () => {})
}
