// The gate soak of this host: after its own apply-ok, it keeps probing its health for its wave's
// gate.soakMs on its own monotonic clock, then attests `soaked` in its own signed entry (DESIGN
// §8: the host that soaks measures the soak). A failing probe inside the window fails the apply.
// The soak counts from the apply-ok this process wrote; after a restart it starts again from
// zero, since a crash says nothing about how long the host stayed healthy.
import { performance } from 'node:perf_hooks'
import type { HealthVerdict } from '../../nixos/index.js'
import type { SoakWatch } from '../../protocols/rollout/index.js'

export interface SoakComponents {
  watchHealth: (soakMs: number, signal: AbortSignal) => Promise<HealthVerdict>
  /** the soak held: append `soaked` */
  soaked: (watch: SoakWatch) => Promise<void>
  /** a probe failed inside the window: roll the apply back and report it */
  failed: (watch: SoakWatch, check: string, output: string) => void
  onError: (err: Error, watch: SoakWatch) => void
  log: { info: (obj: object, msg: string) => void }
  now?: () => number
}

export class SoakWatcher {
  private readonly now: () => number
  /** attempt → when this process wrote (or first saw) its apply-ok, monotonic ms */
  private readonly okAt = new Map<string, number>()
  private current: { watch: SoakWatch, abort: AbortController } | undefined
  /** attempts whose soak ended in this process: their entry may not have come back through the fold yet */
  private readonly ended = new Set<string>()

  constructor (private readonly c: SoakComponents) {
    this.now = c.now ?? (() => performance.now())
  }

  /** The apply-ok of `attempt` was just written: its soak counts from now. */
  started (attempt: string): void {
    this.okAt.set(attempt, this.now())
  }

  /** Follows the soak the decisions say this host serves (undefined: none); a different one replaces it. */
  follow (watch: SoakWatch | undefined): void {
    if (watch !== undefined && this.current?.watch.attempt === watch.attempt) return
    this.stop()
    if (watch === undefined || this.ended.has(watch.attempt)) return
    const since = this.okAt.get(watch.attempt) ?? this.now()
    this.okAt.set(watch.attempt, since)
    const abort = new AbortController()
    const soak = { watch, abort }
    this.current = soak
    const left = Math.max(0, watch.soakMs - (this.now() - since))
    this.c.log.info({ release: watch.release, attempt: watch.attempt, leftMs: Math.round(left) }, 'deploy: soaking before attesting the gate')
    void this.c.watchHealth(left, abort.signal)
      .then(async (verdict) => {
        if (abort.signal.aborted) return
        this.ended.add(watch.attempt)
        if (verdict.ok) await this.c.soaked(watch)
        else this.c.failed(watch, verdict.failed.check, verdict.failed.output)
      })
      .catch((err: Error) => { if (!abort.signal.aborted) this.c.onError(err, watch) })
      .finally(() => { if (this.current === soak) this.current = undefined })
  }

  stop (): void {
    this.current?.abort.abort()
    this.current = undefined
  }
}
