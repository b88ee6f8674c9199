// Every host's agents as the log tells them (the fleet view): per host and agent, the state its
// newest `agent` entry leaves it in. Only the host that runs an agent writes about it, in its own
// feed, so the newest is the highest seq of that feed (DESIGN §8: order within a feed) and the
// fold gives the same answer in any delivery order; no timestamp is compared.
import { AGENT_KIND, type AgentBody, type AgentEvent } from './schema.js'

/**
 * running: started or restarted; exited: its process ended and no restart was recorded yet;
 * hung, leaking: stopped for it (a restart follows unless the policy gave up); failed: a crash
 * loop, the agent is not restarted until an operator does; escalated: its crash loop failed the
 * generation this host had just applied (rolled back).
 */
export type FleetAgentState = 'running' | 'exited' | 'hung' | 'leaking' | 'failed' | 'escalated'

export interface FleetAgent {
  host: string
  agent: string
  state: FleetAgentState
  /** the newest entry's event and seq */
  event: AgentEvent
  seq: number
  /** the host's claimed time of that entry: shown, never compared */
  ts: number
  /** restarts the host counted, as of its newest entry that said */
  restarts: number
  reason?: string
  code?: number
  signal?: string
  /** escalated: the release whose generation was failed */
  release?: string
}

/** What the fold holds per agent: its newest state-bearing entry, and the newest restart count apart (an older entry may carry it). */
interface Held { agent: FleetAgent, restartsSeq: number }

/** host → agent → what the fold holds (a `suppressed` count changes no state). */
export type AgentFleet = Map<string, Map<string, Held>>

const STATE: Record<Exclude<AgentEvent, 'suppressed'>, FleetAgentState> = {
  start: 'running', restart: 'running', exit: 'exited', hang: 'hung', leak: 'leaking', 'crash-loop': 'failed', escalate: 'escalated'
}

/** An agent needs an operator: it crash-looped (and maybe failed a generation). */
export const agentAlerting = (a: FleetAgent): boolean => a.state === 'failed' || a.state === 'escalated'

export function emptyAgentFleet (): AgentFleet {
  return new Map()
}

/** Folds one entry in (other kinds pass); the body was schema-checked when the entry was stored. */
export function foldAgent (fleet: AgentFleet, e: { kind: string, feed: string, seq: number, ts: number, body: unknown }): void {
  if (e.kind !== AGENT_KIND) return
  const b = e.body as AgentBody
  if (b.event === 'suppressed') return
  const agents = fleet.get(e.feed) ?? new Map<string, Held>()
  fleet.set(e.feed, agents)
  let held = agents.get(b.agent)
  if (held === undefined || held.agent.seq < e.seq) {
    const agent: FleetAgent = {
      host: e.feed,
      agent: b.agent,
      state: STATE[b.event],
      event: b.event,
      seq: e.seq,
      ts: e.ts,
      restarts: held?.agent.restarts ?? 0,
      ...(b.reason !== undefined ? { reason: b.reason } : {}),
      ...(b.code !== undefined ? { code: b.code } : {}),
      ...(b.signal !== undefined ? { signal: b.signal } : {}),
      ...(b.release !== undefined ? { release: b.release } : {})
    }
    held = { agent, restartsSeq: held?.restartsSeq ?? -1 }
    agents.set(b.agent, held)
  }
  if (b.restarts !== undefined && e.seq > held.restartsSeq) {
    held.agent.restarts = b.restarts
    held.restartsSeq = e.seq
  }
}

/** The agents of the hosts `keep` accepts (the members), sorted by host then agent. */
export function fleetAgents (fleet: AgentFleet, keep: (host: string) => boolean = () => true): FleetAgent[] {
  return [...fleet.entries()].filter(([host]) => keep(host))
    .flatMap(([, agents]) => [...agents.values()].map((h) => h.agent))
    .sort((x, y) => x.host.localeCompare(y.host) || x.agent.localeCompare(y.agent))
}
