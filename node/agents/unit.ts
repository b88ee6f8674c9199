// One supervised agent: its runs, one after the other, and the policy between them. A run that
// ends is seen at once (the backend's exit); one that stops being live (no heartbeat, no passing
// probe for the liveness timeout) is a hang and one whose process group grows over its memory
// ceiling a leak: both are stopped (SIGTERM, the grace, SIGKILL) and restarted. Restarts wait
// the backoff; more of them within the window than the policy allows is a crash loop, which
// either fails the generation this host applied just before (the escalation) or fails the agent.
// Every duration is measured on this process's monotonic clock.
import { probe, type HealthCheck } from '../../nixos/index.js'
import type { AgentBody, RestartReason } from '../../protocols/agents/index.js'
import type { AgentBackend, AgentExit, AgentRun } from './backend.js'
import type { RotatingLog } from './logs.js'
import type { AgentMetrics } from './metrics.js'
import type { AgentSpec } from './types.js'
import { sleepUnlessAborted } from '../sleep.js'

export type AgentState = 'starting' | 'running' | 'backoff' | 'stopping' | 'failed' | 'stopped'

export interface AgentStatus {
  name: string
  state: AgentState
  pid: number | null
  /** running and, with a liveness check, seen live within its timeout */
  live: boolean
  /** restarts since the daemon started, by reason */
  restarts: Partial<Record<RestartReason, number>>
  /** wall-clock ms of the current run's start */
  startedAt: number | null
  lastExit: { code: number | null, signal: string | null, at: number } | null
  rssBytes: number | null
  /** why the agent is failed, or why it was last restarted */
  reason: string | null
  liveness: 'heartbeat' | 'http' | 'command' | 'process'
  /** the escalation under way: the generation being rolled back */
  escalation: { release: string, attempt: string } | null
}

/** What the supervisor may ask of the deploy side when an agent crash-loops (node/deploy). */
export interface AgentEscalation {
  /** this host's newest apply-ok, when this process wrote it within `withinMs` and nothing failed it since */
  recentApply: (withinMs: number) => { release: string, attempt: string } | undefined
  /** fails that apply: rolls its generation back and writes apply-failed with `reason`; true when rolled back */
  failApply: (attempt: string, reason: string) => Promise<boolean>
}

export interface UnitComponents {
  backend: AgentBackend
  log: RotatingLog
  record: (body: AgentBody) => void
  metrics: AgentMetrics
  logger: { info: (o: object, m: string) => void, warn: (o: object, m: string) => void, error: (o: object, m: string) => void }
  env: Record<string, string>
  cwd: string
  escalation?: AgentEscalation
  now?: () => number
}

export class AgentUnit {
  private state: AgentState = 'stopped'
  private run: AgentRun | undefined
  private runStart = 0
  private startedAtWall: number | null = null
  private lastLive = 0
  private live = false
  private rss: number | null = null
  /** why the current run is being stopped by us, if it is */
  private cause: RestartReason | 'shutdown' | undefined
  private restartTimes: number[] = []
  private consecutive = 0
  private readonly restarts: Partial<Record<RestartReason, number>> = {}
  private lastExit: AgentStatus['lastExit'] = null
  private reason: string | null = null
  private escalation: AgentStatus['escalation'] = null
  private timer: NodeJS.Timeout | undefined
  private watch: AbortController | undefined
  private closed = false
  private readonly now: () => number

  constructor (readonly spec: AgentSpec, private readonly c: UnitComponents) {
    this.now = c.now ?? (() => performance.now())
  }

  start (): void {
    void this.launch(undefined)
  }

  status (): AgentStatus {
    return {
      name: this.spec.name,
      state: this.state,
      pid: this.run?.pid ?? null,
      live: this.isLive(),
      restarts: { ...this.restarts },
      startedAt: this.run !== undefined ? this.startedAtWall : null,
      lastExit: this.lastExit,
      rssBytes: this.rss,
      reason: this.reason,
      liveness: this.spec.liveness?.kind ?? 'process',
      escalation: this.escalation
    }
  }

  /** running, and live by its check: what a health check of kind "agent" asks */
  isLive (): boolean {
    return this.state === 'running' && (this.spec.liveness === undefined || this.live)
  }

  heartbeat (): void {
    if (this.state !== 'running') return
    this.lastLive = this.now()
    this.setLive(true)
  }

  /**
   * The operator's restart, or an activation's: also brings a failed agent back, with its
   * crash-loop count cleared.
   */
  async restart (reason: 'operator' | 'activation' = 'operator'): Promise<void> {
    if (this.closed || this.state === 'starting') return
    this.restartTimes = []
    this.consecutive = 0
    this.c.metrics.failed(this.spec.name, false)
    if (this.run !== undefined) {
      this.cause ??= reason
      await this.stopRun()
      return
    }
    clearTimeout(this.timer)
    this.count(reason)
    await this.launch(reason)
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    if (this.run !== undefined) {
      this.cause = 'shutdown'
      await this.stopRun()
    }
    this.state = 'stopped'
    this.c.metrics.up(this.spec.name, false)
  }

  private setLive (live: boolean): void {
    this.live = live
    this.c.metrics.up(this.spec.name, this.isLive())
  }

  private count (reason: RestartReason): void {
    this.restarts[reason] = (this.restarts[reason] ?? 0) + 1
    this.c.metrics.restarted(this.spec.name, reason)
  }

  private async launch (reason: RestartReason | undefined): Promise<void> {
    if (this.closed) return
    this.state = 'starting'
    let run: AgentRun
    try {
      run = await this.c.backend.start(this.spec, this.c.env, this.c.cwd, this.c.log)
    } catch (err) {
      this.c.log.write(Buffer.from(`--- fleetmesh: ${this.spec.name} did not start: ${(err as Error).message}\n`))
      this.c.logger.warn({ agent: this.spec.name, err }, 'agents: the agent did not start')
      this.runStart = this.now()
      this.ended({ code: null, signal: null }, undefined, (err as Error).message)
      return
    }
    if (this.closed) { await run.stop(0); return }
    this.run = run
    this.runStart = this.lastLive = this.now()
    this.startedAtWall = Date.now()
    this.state = 'running'
    this.live = false
    this.c.log.write(Buffer.from(`--- fleetmesh: ${this.spec.name} started, pid ${run.pid}${reason !== undefined ? ` (restart: ${reason})` : ''}\n`))
    this.c.record(reason === undefined
      ? { agent: this.spec.name, event: 'start', pid: run.pid }
      : { agent: this.spec.name, event: 'restart', pid: run.pid, reason, restarts: this.total() })
    this.setLive(this.spec.liveness === undefined)
    this.watchRun(run)
    void run.exited.then((exit) => { this.ended(exit, run) })
  }

  private total (): number {
    return Object.values(this.restarts).reduce((a, b) => a + b, 0)
  }

  /** The liveness deadline, the probes and the memory ceiling of one run. */
  private watchRun (run: AgentRun): void {
    const ac = new AbortController()
    this.watch = ac
    const l = this.spec.liveness
    if (l !== undefined) {
      const check = (): void => {
        if (ac.signal.aborted) return
        const silent = this.now() - this.lastLive
        if (silent >= l.timeoutMs) {
          this.stopFor('hang', { event: 'hang', pid: run.pid, reason: `${l.kind === 'heartbeat' ? 'no heartbeat' : `no passing ${l.kind} probe`} for ${Math.round(silent)} ms (timeout ${l.timeoutMs} ms)` })
          return
        }
        setTimeout(check, l.timeoutMs - silent + 1).unref()
      }
      setTimeout(check, l.timeoutMs).unref()
      if (l.kind !== 'heartbeat') void this.probeLoop(l.kind === 'http' ? { kind: 'http', url: l.url, timeoutMs: l.timeoutMs } : { kind: 'command', command: l.argv, timeoutMs: l.timeoutMs }, l.intervalMs, ac.signal)
    }
    const memory = async (): Promise<void> => {
      while (!ac.signal.aborted) {
        const rss = await run.rssBytes()
        if (ac.signal.aborted) return
        // undefined: no process of the group seen (yet: a /proc scan shared with another agent
        // may predate this run); the run's end aborts the loop, not a missed sample
        if (rss !== undefined) {
          this.rss = rss
          this.c.metrics.rss(this.spec.name, rss)
          const max = this.spec.memoryMaxBytes
          if (max !== undefined && rss > max) {
            this.stopFor('leak', { event: 'leak', pid: run.pid, rssBytes: rss, limitBytes: max })
            return
          }
        }
        await sleepUnlessAborted(this.spec.memoryIntervalMs, ac.signal)
      }
    }
    void memory()
  }

  private async probeLoop (check: HealthCheck, intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = this.now()
      const r = await probe(check, signal)
      if (signal.aborted) return
      if (r.ok) {
        this.lastLive = this.now()
        if (!this.live) this.setLive(true)
      } else if (this.live) {
        this.setLive(false)
      }
      await sleepUnlessAborted(Math.max(0, intervalMs - (this.now() - started)), signal)
    }
  }

  private stopFor (cause: RestartReason, body: Omit<AgentBody, 'agent'>): void {
    if (this.cause !== undefined || this.run === undefined) return
    this.cause = cause
    this.reason = body.reason ?? `${cause}: ${body.rssBytes ?? ''} bytes resident, ceiling ${body.limitBytes ?? ''}`
    this.c.logger.warn({ agent: this.spec.name, pid: this.run.pid, reason: this.reason }, `agents: ${cause}: stopping the agent`)
    this.c.record({ agent: this.spec.name, ...body })
    void this.stopRun()
  }

  private async stopRun (): Promise<void> {
    const run = this.run
    if (run === undefined) return
    this.state = 'stopping'
    this.setLive(false)
    await run.stop(this.spec.stopGraceMs)
  }

  /** A run ended (or never began: `run` undefined): decide what comes next. */
  private ended (exit: AgentExit, run: AgentRun | undefined, why?: string): void {
    if (run !== undefined) {
      if (run !== this.run) return
      this.watch?.abort()
      this.run = undefined
      this.rss = null
      this.lastExit = { ...exit, at: Date.now() }
      this.c.record({
        agent: this.spec.name,
        event: 'exit',
        pid: run.pid,
        ...(exit.code !== null ? { code: exit.code } : {}),
        ...(exit.signal !== null ? { signal: exit.signal } : {}),
        uptimeMs: Math.round(this.now() - this.runStart)
      })
    } else {
      this.c.record({ agent: this.spec.name, event: 'exit', reason: `did not start: ${why ?? 'unknown'}`.slice(0, 512) })
    }
    this.state = 'backoff'
    this.setLive(false)
    const cause = this.cause ?? 'crash'
    this.cause = undefined
    if (this.closed || cause === 'shutdown') { this.state = 'stopped'; return }
    if (cause === 'operator' || cause === 'activation') {
      this.count(cause)
      void this.launch(cause)
      return
    }
    if (cause === 'crash') this.reason = why ?? (exit.signal !== null ? `killed by ${exit.signal}` : `exited ${String(exit.code)}`)
    this.after(cause)
  }

  /** The restart policy after a run that ended against our will. */
  private after (cause: RestartReason): void {
    const now = this.now()
    if (now - this.runStart >= this.spec.restart.backoffMaxMs) this.consecutive = 0
    const p = this.spec.restart
    if (this.escalation !== null) {
      this.schedule('recovery', p.backoffInitialMs)
      return
    }
    this.restartTimes = this.restartTimes.filter((t) => now - t < p.windowMs)
    if (this.restartTimes.length >= p.maxRestarts) {
      this.crashLoop()
      return
    }
    this.restartTimes.push(now)
    this.consecutive++
    this.schedule(cause, Math.min(p.backoffMaxMs, p.backoffInitialMs * 2 ** (this.consecutive - 1)))
  }

  private schedule (reason: RestartReason, delayMs: number): void {
    this.state = 'backoff'
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.count(reason)
      void this.launch(reason)
    }, delayMs)
  }

  private crashLoop (): void {
    const p = this.spec.restart
    const why = `agent ${this.spec.name} crash-looped: more than ${p.maxRestarts} restarts within ${p.windowMs} ms (last: ${this.reason ?? 'unknown'})`
    const recent = this.spec.escalateWithinMs > 0 ? this.c.escalation?.recentApply(this.spec.escalateWithinMs) : undefined
    if (recent === undefined) {
      this.state = 'failed'
      this.reason = why
      this.c.metrics.failed(this.spec.name, true)
      this.c.logger.error({ agent: this.spec.name, reason: why }, 'agents: ALERT: the agent crash-loops and is not restarted any more')
      this.c.record({ agent: this.spec.name, event: 'crash-loop', reason: why.slice(0, 512), restarts: this.total() })
      return
    }
    // The generation applied just before is the likeliest cause: it is rolled back, and the
    // agent is kept restarting meanwhile so that it comes up on the generation restored.
    this.escalation = recent
    this.reason = why
    this.c.logger.error({ agent: this.spec.name, release: recent.release, attempt: recent.attempt }, 'agents: crash loop after an apply: failing the generation')
    this.c.record({ agent: this.spec.name, event: 'escalate', reason: why.slice(0, 512), release: recent.release, attempt: recent.attempt })
    this.schedule('recovery', p.backoffInitialMs)
    void this.c.escalation!.failApply(recent.attempt, why).catch((err: Error) => {
      this.c.logger.error({ agent: this.spec.name, err }, 'agents: the escalation failed')
      return false
    }).then(() => {
      this.escalation = null
      this.restartTimes = []
      this.consecutive = 0
    })
  }
}

