// What the supervisor counts, on the node's registry.
import { Counter, Gauge, type Registry } from 'prom-client'
import type { RestartReason } from '../../protocols/agents/index.js'

export interface AgentMetrics {
  restarted: (agent: string, reason: RestartReason) => void
  up: (agent: string, up: boolean) => void
  rss: (agent: string, bytes: number) => void
  /** an agent that crash-looped and is not restarted any more: the alert */
  failed: (agent: string, failed: boolean) => void
}

export function agentMetrics (registry: Registry): AgentMetrics {
  const registers = [registry]
  const restarts = new Counter({ name: 'fleetmesh_agent_restarts_total', help: 'Agent restarts by agent and reason (crash, hang, leak, operator, recovery)', labelNames: ['agent', 'reason'], registers })
  const up = new Gauge({ name: 'fleetmesh_agent_up', help: 'Whether the agent runs and is live (1) or not (0)', labelNames: ['agent'], registers })
  const rss = new Gauge({ name: 'fleetmesh_agent_rss_bytes', help: 'Resident memory of the agent\'s process group', labelNames: ['agent'], registers })
  const failed = new Gauge({ name: 'fleetmesh_agent_failed', help: 'Whether the agent crash-looped and is no longer restarted (1): raise an alert on it', labelNames: ['agent'], registers })
  return {
    restarted: (agent, reason) => { restarts.inc({ agent, reason }) },
    up: (agent, v) => { up.set({ agent }, v ? 1 : 0) },
    rss: (agent, bytes) => { rss.set({ agent }, bytes) },
    failed: (agent, v) => { failed.set({ agent }, v ? 1 : 0) }
  }
}
