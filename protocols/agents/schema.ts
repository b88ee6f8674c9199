// The body of an `agent` entry: one thing the supervisor of this host saw or did to one of its
// agents (node/agents/). Only the host that runs the agent writes about it, in its own feed, so
// nothing here is judged across feeds: the entries are the record, not an input of a decision.
// Like the rollout parsers, the parser returns the same object typed and keeps unknown optional
// fields, so entries written by newer code keep their meaning.
import { isAgentName } from '../rooms/codec.js'
import { AgentError } from './errors.js'

export const AGENT_KIND = 'agent'

/**
 * start: the first run; restart: any later run (with why); exit: the process group's leader
 * ended (code or signal); hang: liveness lost past its timeout; leak: the group's RSS over the
 * ceiling; crash-loop: more restarts in the window than the policy allows, the agent is failed;
 * escalate: the crash loop failed the generation this host applied just before; suppressed:
 * events not written because the agent's entry budget was spent (their count).
 */
export const AGENT_EVENTS = ['start', 'restart', 'exit', 'hang', 'leak', 'crash-loop', 'escalate', 'suppressed'] as const
export type AgentEvent = typeof AGENT_EVENTS[number]

/**
 * Why a run was started again: it crashed, hung or leaked; the operator asked; a generation was
 * activated (as switch-to-configuration restarts units); or it is kept restarting while the
 * generation its crash loop failed is rolled back (recovery).
 */
export const RESTART_REASONS = ['crash', 'hang', 'leak', 'operator', 'activation', 'recovery'] as const
export type RestartReason = typeof RESTART_REASONS[number]

export interface AgentBody {
  agent: string
  event: AgentEvent
  pid?: number
  /** exit: the exit code, or the signal that ended it */
  code?: number
  signal?: string
  reason?: string
  /** restart: why; hang/leak: what was seen */
  restarts?: number
  uptimeMs?: number
  rssBytes?: number
  limitBytes?: number
  /** escalate: the release and attempt whose generation the crash loop failed */
  release?: string
  attempt?: string
  /** events left out since the last entry about this agent */
  suppressed?: number
}

export const MAX_REASON_CHARS = 512
const MAX_ID_CHARS = 128
const SIGNAL_RE = /^SIG[A-Z0-9+-]{1,12}$/
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@+-]*$/

function invalid (path: string, why: string): AgentError {
  return new AgentError('AGENT_BODY_INVALID', `${path}: ${why}`)
}

function optInt (v: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (v === undefined) return
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalid(path, 'must be an integer')
  if (v < min || v > max) throw invalid(path, `must be in ${min}..${max}`)
}

function optStr (v: unknown, path: string, max: number, re?: RegExp): void {
  if (v === undefined) return
  if (typeof v !== 'string' || v.length === 0) throw invalid(path, 'must be a non-empty string')
  if (v.length > max) throw new AgentError('AGENT_BODY_TOO_LARGE', `${path}: longer than ${max} characters`)
  if (re !== undefined && !re.test(v)) throw invalid(path, `must match ${re}`)
}

export function parseAgentBody (v: unknown): AgentBody {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw invalid('agent body', 'must be a map')
  const b = v as Record<string, unknown>
  if (!isAgentName(b.agent)) throw invalid('agent', 'must be an agent name of 1..32 letters, digits, ".", "_" or "-"')
  if (typeof b.event !== 'string' || !(AGENT_EVENTS as readonly string[]).includes(b.event)) throw invalid('event', `must be one of ${AGENT_EVENTS.join(', ')}`)
  optInt(b.pid, 'pid', 1, 2 ** 31 - 1)
  optInt(b.code, 'code', -(2 ** 31), 2 ** 31 - 1)
  optStr(b.signal, 'signal', 16, SIGNAL_RE)
  optStr(b.reason, 'reason', MAX_REASON_CHARS)
  optInt(b.restarts, 'restarts', 0)
  optInt(b.uptimeMs, 'uptimeMs', 0)
  optInt(b.rssBytes, 'rssBytes', 0)
  optInt(b.limitBytes, 'limitBytes', 1)
  optStr(b.release, 'release', MAX_ID_CHARS, ID_RE)
  optStr(b.attempt, 'attempt', MAX_ID_CHARS, /^[A-Za-z0-9._:-]{1,128}$/)
  optInt(b.suppressed, 'suppressed', 1)
  if (b.event === 'restart' && !(RESTART_REASONS as readonly string[]).includes(b.reason as string)) throw invalid('reason', `a restart's reason must be one of ${RESTART_REASONS.join(', ')}`)
  if (b.event === 'suppressed' && b.suppressed === undefined) throw invalid('suppressed', 'a suppressed entry counts what it left out')
  if (b.event === 'escalate' && (b.release === undefined || b.attempt === undefined)) throw invalid('release', 'an escalation names the release and attempt it failed')
  return b as unknown as AgentBody
}

export const agentSchemas = { [AGENT_KIND]: parseAgentBody } as const
