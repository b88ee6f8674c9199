// An agent as config.json declares it (parsed in spec.ts). Kept apart from the parser so that
// node/config.ts can name the type without importing what imports it.

/** When the agent counts as alive. Without one, an agent is alive while its process runs. */
export type Liveness =
  /** the agent POSTs /v1/agents/NAME/heartbeat with its own token at least every timeoutMs */
  | { kind: 'heartbeat', timeoutMs: number }
  /** GET url answers 200; no passing probe for timeoutMs is a hang */
  | { kind: 'http', url: string, intervalMs: number, timeoutMs: number }
  /** argv exits 0; no passing run for timeoutMs is a hang */
  | { kind: 'command', argv: string[], intervalMs: number, timeoutMs: number }

/**
 * Restarts wait backoffInitialMs, doubling to backoffMaxMs while the runs keep ending sooner
 * than backoffMaxMs after they began. More than maxRestarts restarts within windowMs is a crash
 * loop: the agent is failed and not restarted again until the operator restarts it.
 */
export interface RestartPolicy {
  backoffInitialMs: number
  backoffMaxMs: number
  maxRestarts: number
  windowMs: number
}

export interface AgentSpec {
  /** 1..32 letters, digits, ".", "_" or "-": the name its agent token speaks for */
  name: string
  /**
   * Who runs it: absent, this daemon (the process backend); "systemd", the unit
   * fleetmesh-agent-NAME.service that nixos/module.nix generates (systemd.ts).
   */
  backend?: 'systemd'
  command: string
  args: string[]
  env: Record<string, string>
  /** absolute; default the data dir's agents/NAME */
  cwd?: string
  /** run as this user (the daemon must be root) */
  user?: string
  restart: RestartPolicy
  /** a ceiling on the RSS of the agent's whole process group, checked every memoryIntervalMs */
  memoryMaxBytes?: number
  memoryIntervalMs: number
  liveness?: Liveness
  /** after SIGTERM, how long the group has before SIGKILL */
  stopGraceMs: number
  /** a crash loop within this long after this host applied a generation fails that generation (0: never) */
  escalateWithinMs: number
  /** stdout and stderr: one file of at most maxBytes, and files - 1 older ones */
  logs: { maxBytes: number, files: number }
}
