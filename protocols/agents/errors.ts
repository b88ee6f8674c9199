// Typed errors of the agent entry kind. `code` is stable: the audit codec reports it (as
// BODY_INVALID with this message), tests branch on it, never on the message.

export type AgentErrorCode =
  /** an `agent` body that breaks its schema (missing field, wrong type, out of range) */
  | 'AGENT_BODY_INVALID'
  /** an `agent` body over one of its size bounds */
  | 'AGENT_BODY_TOO_LARGE'

export class AgentError extends Error {
  override readonly name = 'AgentError'
  constructor (readonly code: AgentErrorCode, message: string) {
    super(message)
  }
}
