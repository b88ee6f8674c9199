// One simulated host's deploy agent, on the simulated clock: the pure rollout decisions over its
// own fold, and the daemon's own pieces around them — LocalTimers for the local timeouts a
// decision asks for, SoakWatcher for the gate soak it measures and attests with `soaked`,
// OwnAttempts and reportOutcome for writing each attempt's outcome exactly once. The few steps
// that tie them to a decision (append an `attest`ed entry and decide again, follow the timer,
// follow the soak, apply or revert) restate node/deploy/agent.ts's private `evaluate`, which runs
// on real time. Only the executor is simulated: an apply takes simulated time, and the health
// probes of a soak pass.
import { newApplyId, type ApplyOutcome, type HealthVerdict } from '../../nixos/index.js'
import { decide, emptyState, soakWatchOf, type Decision, type MembershipView, type PlanCache, type RolloutState, type SoakWatch } from '../../protocols/rollout/index.js'
import type { StoredEntry } from '../../protocols/audit/types.js'
import type { Intent } from '../../node/deploy/index.js'
import { OwnAttempts, reportOutcome } from '../../node/deploy/report.js'
import { SoakWatcher } from '../../node/deploy/soak.js'
import { LocalTimers } from '../../node/deploy/timers.js'
import { Ev } from './events.js'
import type { Reader } from './log.js'

/** More `attest` decisions in a row than any release can ask for (two overdue kinds per wave). */
const MAX_ATTESTS = 64

/** What a host's agent uses of the simulator. */
export interface HostWorld {
  readonly membership: MembershipView
  /** the simulated time: every host's monotonic clock */
  now: () => number
  /** host h's wall clock (skewed): stamps its entries and is decide's `now` */
  wall: (h: number) => number
  /** appends an entry to host h's feed now */
  append: (h: number, kind: string, body: object) => StoredEntry
  schedule: (time: number, e: Ev, h: number, arg: number) => void
  /** the executor began host h's apply */
  applying: (h: number) => void
  /** a soak watch began (+1) or ended (-1) */
  soaking: (delta: number) => void
  /** a host's agent armed its local timers' wake-up (+1) or has none left to run (-1) */
  timing: (delta: number) => void
  /** every decision; an acting one (apply, revert, attest) goes into the run's digest */
  decided: (h: number, d: Decision) => void
  /** a failure that must end the run */
  fail: (err: Error) => void
}

export class ScaleHost implements Reader {
  readonly state: RolloutState
  have: Uint8Array
  dirty = false
  lastArrival = Number.NEGATIVE_INFINITY
  /** the apply the executor is running */
  intent: Intent | null = null
  private readonly own: OwnAttempts
  private readonly store: { append: (kind: string, body: unknown) => Promise<StoredEntry> }
  private timers!: LocalTimers
  private soak!: SoakWatcher
  /** generation of the armed alarm and of the soak watch: an older event is stale */
  private alarm = 0
  private fire: (() => void) | undefined
  private armed = false
  private watch = 0
  private soakEnd: ((v: HealthVerdict) => void) | undefined

  constructor (readonly index: number, readonly id: string, plans: PlanCache, haveBytes: number, private readonly world: HostWorld) {
    this.state = emptyState(plans)
    this.have = new Uint8Array(haveBytes)
    this.own = new OwnAttempts(id)
    this.store = {
      append: async (kind, body) => {
        const stored = world.append(index, kind, body as object)
        this.own.note(stored.entry)
        return stored
      }
    }
    this.start()
  }

  /** The daemon starts (again): a new agent process, whose timers and soak start from zero. */
  start (): void {
    const { world } = this
    this.timers = new LocalTimers(() => { this.dirty = true }, world.now, (ms, fire) => {
      this.alarm++
      this.fire = fire
      if (ms !== undefined) world.schedule(world.now() + ms, Ev.Alarm, this.index, this.alarm)
      if ((ms !== undefined) !== this.armed) {
        this.armed = !this.armed
        world.timing(this.armed ? 1 : -1)
      }
    })
    this.soak = new SoakWatcher({
      watchHealth: async (ms, signal) => await this.watchHealth(ms, signal),
      soaked: async (w) => { await this.attestSoaked(w) },
      failed: (w) => { world.fail(new Error(`${this.id}: a soak probe failed, but the simulated hosts stay healthy (${w.release})`)) },
      onError: (err) => { world.fail(err) },
      log: { info: () => {} },
      now: world.now
    })
    this.dirty = true
  }

  /** The daemon stops (the host goes down): its timers and soak watch end with it. */
  stop (): void {
    this.timers.stop()
    this.soak.stop()
  }

  /** Ev.Alarm: the local timer armed as generation `gen` ran out. */
  alarmRang (gen: number): void {
    if (gen === this.alarm) this.fire?.()
  }

  /** Ev.SoakDone: the health watch `gen` ended with every probe passing; false when it was stale. */
  soakEnded (gen: number): boolean {
    if (gen !== this.watch || this.soakEnd === undefined) return false
    const resolve = this.soakEnd
    this.soakEnd = undefined
    this.world.soaking(-1)
    resolve({ ok: true, probes: {} })
    return true
  }

  /** Decides, and does what the decision says, as the agent's evaluate does. */
  async act (): Promise<void> {
    this.dirty = false
    // the agent runs one apply at a time and decides again when it ends
    if (this.intent !== null) return
    let d = this.decide()
    for (let i = 0; d.action === 'attest'; i++) {
      if (i === MAX_ATTESTS) throw new Error(`${this.id}: more than ${MAX_ATTESTS} attest decisions in a row`)
      await this.store.append(d.kind, d.body)
      d = this.decide()
    }
    this.timers.follow(d.action === 'wait' || d.action === 'none' ? d.timer : undefined)
    if (d.action !== 'apply' && d.action !== 'revert') this.soak.follow(soakWatchOf(this.state, this.world.membership, this.id))
    if (d.action === 'apply') {
      this.soak.stop()
      this.intent = { applyId: newApplyId(this.world.wall(this.index)), release: d.release, path: d.path, revert: false }
      await this.store.append('apply-start', { release: d.release, path: d.path, wave: d.wave, attempt: this.intent.applyId })
      this.world.applying(this.index)
    } else if (d.action === 'revert') {
      this.soak.stop()
      const intent: Intent = { applyId: newApplyId(this.world.wall(this.index)), release: d.release, path: d.path, revert: true }
      // the executor goes back to the generation it recorded before the apply, at once
      await reportOutcome(this.store, this.own, intent, { status: 'ok', id: intent.applyId, generation: { number: 1, path: previous(d.path) } })
    }
  }

  /** Ev.ApplyDone: the executor's outcome, written as the agent writes it; `fail`: the new generation's health check failed. */
  async applied (fail: boolean): Promise<void> {
    const intent = this.intent as Intent
    this.intent = null
    const outcome: ApplyOutcome = fail
      ? { status: 'rolled-back', id: intent.applyId, generation: { number: 1, path: previous(intent.path) }, reason: 'health check failed: unit fleet-agent.service', failedCheck: { check: 'fleet-agent', kind: 'systemd', failures: 3, output: 'fleet-agent.service: failed' } }
      : { status: 'ok', id: intent.applyId, generation: { number: 2, path: intent.path } }
    if (outcome.status === 'ok') this.soak.started(intent.applyId)
    await reportOutcome(this.store, this.own, intent, outcome)
  }

  private decide (): Decision {
    const d = decide(this.state, this.world.membership, this.id, this.world.wall(this.index), { trace: false, expired: this.timers.expired() })
    this.world.decided(this.index, d)
    return d
  }

  /** The executor's health watch: it ends at Ev.SoakDone, or never when aborted first. */
  private async watchHealth (ms: number, signal: AbortSignal): Promise<HealthVerdict> {
    const gen = ++this.watch
    this.world.soaking(1)
    this.world.schedule(this.world.now() + ms, Ev.SoakDone, this.index, gen)
    return await new Promise<HealthVerdict>((resolve) => {
      this.soakEnd = resolve
      signal.addEventListener('abort', () => {
        if (this.watch !== gen || this.soakEnd === undefined) return
        this.soakEnd = undefined
        this.world.soaking(-1)
      }, { once: true })
    })
  }

  private async attestSoaked (w: SoakWatch): Promise<void> {
    if (this.own.has('soaked', w.attempt)) return
    await this.store.append('soaked', { release: w.release, path: w.path, attempt: w.attempt, soakMs: w.soakMs })
  }
}

/** The generation a simulated host ran before `path`. */
function previous (path: string): string {
  return path.replace(/-[^-/]+$/, '-previous')
}
