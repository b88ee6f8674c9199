// A supervised agent for a fleet host (the process backend): a real HTTP server on its own port
// whose GET /health answers 200. It runs the agent of the generation the host's profile holds
// when that generation carries one (bin/agent, agent-generation.nix), and the plain fixture
// agent otherwise, so a release can change the agent like any other part of the system.
import { fileURLToPath } from 'node:url'
import { runNix } from '../../nixos/nix.js'
import { parseAgentSpec, type AgentSpec } from '../../node/agents/spec.js'
import { ensureNix } from '../../test/fixtures/nix/fixtures.js'

const AGENT_SCRIPT = fileURLToPath(new URL('../../test/agents/fixtures/agent.mjs', import.meta.url))
const GENERATION = fileURLToPath(new URL('agent-generation.nix', import.meta.url))

export interface AgentPolicy {
  backoffInitialMs: number
  backoffMaxMs: number
  maxRestarts: number
  windowMs: number
}

/** The agent `name` of a host whose profile is `profile`, serving on `port`. */
export function generationAgent (name: string, profile: string, port: number, restart: AgentPolicy): AgentSpec {
  return parseAgentSpec('fleet harness', `agents.${name}`, {
    name,
    command: '/bin/sh',
    args: ['-c', 'if [ -x "$1/bin/agent" ]; then exec "$1/bin/agent"; fi; exec "$2" "$3"', name, profile, process.execPath, AGENT_SCRIPT],
    env: { PORT: String(port) },
    restart,
    // generous: a fresh Node process on a loaded machine takes a while to listen
    liveness: { kind: 'http', url: agentUrl(port), intervalMs: 200, timeoutMs: 20_000 },
    stopGraceMs: 2000
  })
}

export function agentUrl (port: number): string {
  return `http://127.0.0.1:${port}/health`
}

/** True when the agent on `port` answers its health endpoint with 200 within a second. */
export async function agentServing (port: number): Promise<boolean> {
  try {
    const res = await fetch(agentUrl(port), { signal: AbortSignal.timeout(1000) })
    await res.body?.cancel()
    return res.status === 200
  } catch {
    return false
  }
}

/** A fixture generation (service `mode`) whose bin/agent is the fixture agent, or one that exits at start. */
export async function buildAgentGeneration (version: string, mode: 'good' | 'crash', agentMode: 'good' | 'crash'): Promise<string> {
  await ensureNix()
  const { stdout } = await runNix('nix-build', [
    GENERATION, '--no-out-link',
    '--argstr', 'version', version, '--argstr', 'mode', mode, '--argstr', 'agentMode', agentMode, '--argstr', 'nodeBin', process.execPath
  ])
  return stdout.trim()
}

