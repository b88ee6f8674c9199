// The systemd backend: an agent with `backend: "systemd"` is the unit fleetmesh-agent-NAME.service
// that nixos/module.nix generates (Restart=on-failure, RestartSec=, StartLimitBurst=,
// MemoryMax=, WatchdogSec=). systemd runs, restarts and kills it; the daemon starts and stops it
// with systemctl, watches its state with `systemctl show` and adds what systemd lacks: the
// http/command liveness probes and the crash-loop escalation (the supervisor's, as for the
// process backend), the agent's token, and `agent` entries for what systemd did on its own
// (an OOM kill is a leak, a watchdog kill a hang).
//
// A run is one main process of the unit, seen as its MainPID: it ends when MainPID changes. The
// agent's token reaches it through an EnvironmentFile under /run (tmpfs, root-only), rewritten
// for every start: a token of an earlier daemon is never honoured, so a unit still running with
// one is restarted rather than adopted.
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AgentBody } from '../../protocols/agents/index.js'
import { writeFileAtomic } from '../fs-atomic.js'
import type { AgentBackend, AgentExit, AgentRun } from './backend.js'
import type { RotatingLog } from './logs.js'
import { RESERVED_ENV } from './spec.js'
import { execSystemctl, parseUnitState, SHOW_PROPERTIES, SystemdError, unitName, type SystemctlRunner, type UnitState } from './systemctl.js'
import type { AgentSpec } from './types.js'

export const RUNTIME_DIR = '/run/fleetmesh/agents'
const POLL_MS = 500
/** how many polls a started unit has to show its main process */
const START_POLLS = 40

export interface SystemdBackendOptions {
  run?: SystemctlRunner
  /** the EnvironmentFile= of each unit is NAME.env here (the module's RUNTIME_DIR) */
  runtimeDir?: string
  pollMs?: number
  /** entries for what systemd did by itself */
  record: (body: AgentBody) => void
}

/** EnvironmentFile= syntax: one KEY="value" a line, backslash and quote escaped. */
function envFile (env: Record<string, string>): string {
  return RESERVED_ENV.map((k) => `${k}="${(env[k] ?? '').replace(/[\\"]/g, '\\$&').replace(/\n/g, '')}"\n`).join('')
}

/** What systemd did to a run that ended, as an entry of its own: only what the daemon did not cause. */
export function systemdEvent (spec: AgentSpec, pid: number, s: UnitState): AgentBody | undefined {
  if (s.result === 'oom-kill') {
    return { agent: spec.name, event: 'leak', pid, ...(spec.memoryMaxBytes !== undefined ? { limitBytes: spec.memoryMaxBytes } : {}), reason: 'systemd: Result=oom-kill: the unit\'s cgroup reached MemoryMax=' }
  }
  if (s.result === 'watchdog') {
    return { agent: spec.name, event: 'hang', pid, reason: 'systemd: Result=watchdog: no WATCHDOG=1 within WatchdogSec=' }
  }
  return undefined
}

/** The log line for a run that ended, from the unit's state after it. */
export function describeEnd (s: UnitState, restartsBefore: number): string {
  const how = s.exit === null ? 'ended' : s.exit.signal !== null ? `killed by ${s.exit.signal}` : `exited ${String(s.exit.code)}`
  const by = s.nRestarts > restartsBefore ? `; systemd restarted it (NRestarts=${s.nRestarts})` : ''
  return `${how} (systemd: ${s.activeState}/${s.subState}, Result=${s.result}${by})`
}

export class SystemdBackend implements AgentBackend {
  private readonly run: SystemctlRunner
  private readonly runtimeDir: string
  private readonly pollMs: number
  /** the current main pid of each agent whose liveness is a heartbeat: the watchdog's */
  private readonly watchdogPids = new Map<string, number>()

  constructor (private readonly o: SystemdBackendOptions) {
    this.run = o.run ?? execSystemctl
    this.runtimeDir = o.runtimeDir ?? RUNTIME_DIR
    this.pollMs = o.pollMs ?? POLL_MS
  }

  async show (unit: string): Promise<UnitState> {
    return parseUnitState(await this.run(['systemctl', 'show', `--property=${SHOW_PROPERTIES.join(',')}`, unit]))
  }

  /** Writes the agent's environment file; true when it changed (a new token). */
  private async writeEnv (name: string, env: Record<string, string>): Promise<boolean> {
    const file = join(this.runtimeDir, `${name}.env`)
    const text = envFile(env)
    if (await readFile(file, 'utf8').catch(() => undefined) === text) return false
    await mkdir(this.runtimeDir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(file, text, 0o600)
    return true
  }

  async start (spec: AgentSpec, env: Record<string, string>, _cwd: string, log: RotatingLog): Promise<AgentRun> {
    const unit = unitName(spec.name)
    const changed = await this.writeEnv(spec.name, env)
    let s = await this.show(unit)
    if (s.loadState !== 'loaded') throw new SystemdError('SYSTEMCTL_FAILED', `${unit} is ${s.loadState}: declare the agent in services.fleetmesh.agents`)
    if (s.mainPid === 0 || changed) {
      // a unit failed by its start limit starts again only once that is reset: the supervisor,
      // which asks for this start, keeps the policy
      if (s.activeState === 'failed') await this.run(['systemctl', 'reset-failed', unit])
      await this.run(['systemctl', s.mainPid === 0 ? 'start' : 'restart', unit])
      s = await this.started(unit)
    } else {
      log.write(Buffer.from(`--- fleetmesh: ${unit} already runs (pid ${s.mainPid}): watching it\n`))
    }
    return this.watch(spec, s, log)
  }

  private async started (unit: string): Promise<UnitState> {
    for (let i = 0; ; i++) {
      const s = await this.show(unit)
      if (s.mainPid !== 0) return s
      if (s.activeState === 'failed' || i >= START_POLLS) throw new SystemdError('SYSTEMCTL_FAILED', `${unit} did not start: ${s.activeState}/${s.subState}, Result=${s.result}`)
      await new Promise((resolve) => setTimeout(resolve, this.pollMs))
    }
  }

  /** One run: polls the unit until its main process is another. */
  private watch (spec: AgentSpec, first: UnitState, log: RotatingLog): AgentRun {
    const unit = unitName(spec.name)
    const pid = first.mainPid
    if (spec.liveness?.kind === 'heartbeat') this.watchdogPids.set(spec.name, pid)
    let last: UnitState = first
    let wake: (() => void) | undefined
    let stopping: Promise<AgentExit> | undefined
    const exited = (async (): Promise<AgentExit> => {
      for (;;) {
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, this.pollMs).unref()
        })
        let s: UnitState
        try {
          s = await this.show(unit)
        } catch (err) {
          log.write(Buffer.from(`--- fleetmesh: ${unit}: ${(err as Error).message}\n`))
          // asked to stop and unable to see the unit (systemd gone): the run is over for us
          if (stopping !== undefined) return { code: null, signal: null }
          continue
        }
        last = s
        if (s.mainPid === pid) continue
        if (this.watchdogPids.get(spec.name) === pid) this.watchdogPids.delete(spec.name)
        log.write(Buffer.from(`--- fleetmesh: ${unit} pid ${pid} ${describeEnd(s, first.nRestarts)}\n`))
        const event = systemdEvent(spec, pid, s)
        if (event !== undefined) this.o.record(event)
        // the exit status is this run's only while systemd has not started another main process
        return s.execMainPid === pid && s.exit !== null ? s.exit : { code: null, signal: null }
      }
    })()
    return {
      pid,
      exited,
      // the grace is the unit's TimeoutStopSec= (the module sets it from stopGraceMs)
      stop: async () => {
        stopping ??= (async () => {
          await this.run(['systemctl', 'stop', unit]).catch((err: Error) => { log.write(Buffer.from(`--- fleetmesh: ${err.message}\n`)) })
          wake?.()
          return await exited
        })()
        return await stopping
      },
      rssBytes: async () => last.mainPid === pid ? last.memoryBytes : undefined
    }
  }

  /**
   * A heartbeat through the control API, passed on to the unit's WatchdogSec= (the module sets
   * NotifyAccess=all): systemd-notify, as root, speaks for the main process.
   */
  async heartbeat (name: string): Promise<void> {
    const pid = this.watchdogPids.get(name)
    if (pid === undefined) return
    await this.run(['systemd-notify', `--pid=${pid}`, 'WATCHDOG=1'])
  }
}
