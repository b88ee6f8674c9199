// The local timers the rollout decisions ask for (Decision.timer): waiting for a silent wave, an
// apply deadline. Local time only starts a timeout (DESIGN §8); what it decides is written to the
// log by the decision it unlocks, so the fleet decides from that entry, not from this clock.
import { performance } from 'node:perf_hooks'
import type { Timer } from '../../protocols/rollout/index.js'

export class LocalTimers {
  /** key → when this host first saw a decision name it (monotonic ms) and for how long */
  private readonly running = new Map<string, { since: number, ms: number }>()
  private wake?: NodeJS.Timeout

  /**
   * `onExpire` runs when the earliest running timer runs out: decide again then. `alarm` arms
   * that one wake-up `ms` from now (undefined: none), replacing the last; the default is an
   * unref'd timeout, a simulator's is an event on its own clock.
   */
  constructor (private readonly onExpire: () => void, private readonly now: () => number = () => performance.now(), private readonly alarm?: (ms: number | undefined, fire: () => void) => void) {}

  /** Keys whose timer has run out, for DecideOptions.expired. */
  expired (): Set<string> {
    const now = this.now()
    const out = new Set<string>()
    for (const [key, t] of this.running) if (now - t.since >= t.ms) out.add(key)
    return out
  }

  /**
   * After a final decision: starts the timer it names (keeping the start of one already running),
   * and drops every other, since no decision names them any more.
   */
  follow (timer: Timer | undefined): void {
    for (const key of this.running.keys()) if (key !== timer?.key) this.running.delete(key)
    if (timer !== undefined) {
      const t = this.running.get(timer.key)
      this.running.set(timer.key, { since: t?.since ?? this.now(), ms: timer.ms })
    }
    this.arm()
  }

  stop (): void {
    this.running.clear()
    this.arm()
  }

  private arm (): void {
    const now = this.now()
    let next = Infinity
    for (const t of this.running.values()) if (t.since + t.ms > now) next = Math.min(next, t.since + t.ms - now)
    const ms = next === Infinity ? undefined : Math.ceil(next)
    if (this.alarm !== undefined) { this.alarm(ms, this.onExpire); return }
    clearTimeout(this.wake)
    if (ms === undefined) return
    this.wake = setTimeout(this.onExpire, ms)
    this.wake.unref()
  }
}
