// Public surface of the agent entry kind: its body schema, registered with the audit codec.
export { AgentError, type AgentErrorCode } from './errors.js'
export { AGENT_KIND, AGENT_EVENTS, RESTART_REASONS, MAX_REASON_CHARS, agentSchemas, parseAgentBody, type AgentBody, type AgentEvent, type RestartReason } from './schema.js'
export { agentAlerting, emptyAgentFleet, fleetAgents, foldAgent, type AgentFleet, type FleetAgent, type FleetAgentState } from './fleet.js'
