// The public surface of node/agents: startAgents composes the supervisor over the process
// backend, its routes and its metrics; mesh.ts calls it once. The CLI commands (cli.ts) are
// imported on their own by the CLI.
import { join } from 'node:path'
import type { Registry } from 'prom-client'
import type { AgentBody } from '../../protocols/agents/index.js'
import type { ApiServer, Authenticator } from '../api.js'
import { agentMetrics } from './metrics.js'
import { ProcessBackend } from './process.js'
import { registerAgentRoutes } from './routes.js'
import { Supervisor, type SupervisorComponents } from './supervisor.js'
import type { AgentSpec } from './types.js'

export type { AgentSpec, Liveness, RestartPolicy } from './types.js'
export type { AgentStatus, AgentEscalation, AgentState } from './unit.js'
export type { AgentBackend, AgentRun, AgentExit } from './backend.js'
export { Supervisor } from './supervisor.js'

export interface AgentsComponents {
  specs: AgentSpec[]
  dataDir: string
  store: { append: (kind: string, body: AgentBody) => Promise<unknown> }
  metrics: { registry: Registry }
  log: SupervisorComponents['logger']
  api: ApiServer
  apiUrl: string
  /** resolves the tokens that are not a supervised agent's (the rooms' agent tokens) */
  otherTokens: Authenticator
  escalation?: SupervisorComponents['escalation']
}

export function startAgents (c: AgentsComponents): Supervisor {
  const supervisor = new Supervisor({
    specs: c.specs,
    dir: join(c.dataDir, 'agents'),
    backend: new ProcessBackend(),
    append: async (kind, body) => await c.store.append(kind, body),
    metrics: agentMetrics(c.metrics.registry),
    logger: c.log,
    apiUrl: c.apiUrl,
    escalation: c.escalation
  })
  c.api.setAuthenticator(async (token) => supervisor.resolve(token) ?? await c.otherTokens(token))
  registerAgentRoutes(c.api, supervisor)
  supervisor.start()
  return supervisor
}
