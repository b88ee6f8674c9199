// The supervisor of this host's agents: one AgentUnit per spec, the agent tokens they heartbeat
// with, their logs, and the entries and metrics they produce. Each agent is handed, in its
// environment, the control API's URL and a token of its own (FLEETMESH_API_URL,
// FLEETMESH_AGENT_TOKEN), valid while this daemon runs: it is never written anywhere, and a
// restarted daemon hands out new ones.
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { AgentBody } from '../../protocols/agents/index.js'
import type { Principal } from '../api.js'
import { NodeError } from '../errors.js'
import type { AgentBackend } from './backend.js'
import { RotatingLog } from './logs.js'
import type { AgentMetrics } from './metrics.js'
import { AgentRecorder } from './record.js'
import { SystemdBackend } from './systemd.js'
import type { AgentSpec } from './types.js'
import { AgentUnit, type AgentEscalation, type AgentStatus, type UnitComponents } from './unit.js'

export interface SupervisorComponents {
  specs: AgentSpec[]
  /** agents/NAME/ under it holds each agent's output (and is its default working directory) */
  dir: string
  /** runs the agents of no `backend` */
  backend: AgentBackend
  /** makes the backend of the agents of `backend: "systemd"`, handed what records their entries; by default systemctl on this host (systemd.ts) */
  systemd?: (record: (body: AgentBody) => void) => AgentBackend
  append: (kind: string, body: AgentBody) => Promise<unknown>
  metrics: AgentMetrics
  logger: UnitComponents['logger']
  apiUrl: string
  escalation?: AgentEscalation
  /** the agent entry budget (record.ts) */
  budget?: { entries: number, windowMs: number }
}

function hashOf (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export class Supervisor {
  private readonly units = new Map<string, AgentUnit>()
  private readonly logs = new Map<string, RotatingLog>()
  /** sha256 of each agent's token → the agent */
  private readonly tokens = new Map<string, string>()
  private readonly recorder: AgentRecorder
  private systemd: AgentBackend | undefined

  constructor (private readonly c: SupervisorComponents) {
    this.recorder = new AgentRecorder({
      append: c.append,
      onError: (err) => { c.logger.error({ err }, 'agents: writing an agent entry failed') },
      budget: c.budget?.entries,
      windowMs: c.budget?.windowMs
    })
  }

  start (): void {
    for (const spec of this.c.specs) {
      const dir = join(this.c.dir, spec.name)
      const log = new RotatingLog(dir, spec.logs.maxBytes, spec.logs.files)
      this.logs.set(spec.name, log)
      const token = randomBytes(32).toString('hex')
      this.tokens.set(hashOf(token), spec.name)
      const env = {
        ...(process.env.PATH !== undefined ? { PATH: process.env.PATH } : {}),
        ...(process.env.LANG !== undefined ? { LANG: process.env.LANG } : {}),
        ...spec.env,
        FLEETMESH_AGENT: spec.name,
        FLEETMESH_API_URL: this.c.apiUrl,
        FLEETMESH_AGENT_TOKEN: token
      }
      const unit = new AgentUnit(spec, {
        backend: this.backendOf(spec),
        log,
        record: (body) => { this.recorder.record(body) },
        metrics: this.c.metrics,
        logger: this.c.logger,
        env,
        cwd: spec.cwd ?? dir,
        escalation: this.c.escalation
      })
      this.units.set(spec.name, unit)
      unit.start()
    }
  }

  private backendOf (spec: AgentSpec): AgentBackend {
    if (spec.backend !== 'systemd') return this.c.backend
    const make = this.c.systemd ?? ((record) => new SystemdBackend({ record }))
    this.systemd ??= make((body) => { this.recorder.record(body) })
    return this.systemd
  }

  async stop (): Promise<void> {
    this.recorder.close()
    await Promise.all([...this.units.values()].map(async (u) => { await u.close() }))
    for (const log of this.logs.values()) log.close()
  }

  /** The principal of a supervised agent's token, for the control API's authenticator. */
  resolve (token: string): Principal | undefined {
    const agent = this.tokens.get(hashOf(token))
    return agent === undefined ? undefined : { kind: 'agent', agent }
  }

  private unit (name: string): AgentUnit {
    const u = this.units.get(name)
    if (u === undefined) throw new NodeError('API_NOT_FOUND', `no agent ${name} on this host (agents: ${[...this.units.keys()].join(', ') || 'none'})`)
    return u
  }

  list (): AgentStatus[] {
    return [...this.units.values()].map((u) => u.status())
  }

  status (name: string): AgentStatus {
    return this.unit(name).status()
  }

  /** running and live: a health check of kind "agent" */
  isLive (name: string): boolean {
    return this.units.get(name)?.isLive() ?? false
  }

  async restart (name: string): Promise<AgentStatus> {
    const u = this.unit(name)
    await u.restart()
    return u.status()
  }

  /**
   * A generation was activated: every agent is restarted (a failed one too), as
   * switch-to-configuration restarts units, so that each runs what the profile now holds.
   */
  activated (): void {
    for (const u of this.units.values()) void u.restart('activation')
  }

  heartbeat (principal: Principal, name: string): AgentStatus {
    const u = this.unit(name)
    if (principal.kind !== 'agent' || principal.agent !== name) {
      throw new NodeError('API_FORBIDDEN', `a heartbeat for agent ${name} must come with ${name}'s own agent token`)
    }
    u.heartbeat()
    void this.backendOf(u.spec).heartbeat?.(name).catch((err: Error) => { this.c.logger.warn({ agent: name, err }, 'agents: passing the heartbeat on failed') })
    return u.status()
  }

  log (name: string): RotatingLog {
    this.unit(name)
    return this.logs.get(name) as RotatingLog
  }
}
