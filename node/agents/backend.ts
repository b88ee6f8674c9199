// What the supervisor asks of whatever runs its agents. The process backend (process.ts) runs
// each as a process group of this daemon; the systemd backend (systemd.ts) starts units and watches them.
// The supervisor keeps the policy (restarts, backoff, crash loops, liveness, the memory
// ceiling) above this line, so both backends heal alike.
import type { RotatingLog } from './logs.js'
import type { AgentSpec } from './types.js'

export interface AgentExit { code: number | null, signal: string | null }

/** One run of an agent. */
export interface AgentRun {
  pid: number
  /** settles once when the run has ended (never rejects) */
  exited: Promise<AgentExit>
  /** SIGTERM to everything the run started, SIGKILL after graceMs; resolves on exit */
  stop: (graceMs: number) => Promise<AgentExit>
  /** resident memory of everything the run started, in bytes; undefined once it is gone */
  rssBytes: () => Promise<number | undefined>
}

export interface AgentBackend {
  /** Starts a run; its output goes to `log`. Throws when it cannot start at all (no such command, user). */
  start: (spec: AgentSpec, env: Record<string, string>, cwd: string, log: RotatingLog) => Promise<AgentRun>
  /** an agent's heartbeat reached the daemon (systemd.ts passes it on to the unit's watchdog) */
  heartbeat?: (name: string) => Promise<void>
}
