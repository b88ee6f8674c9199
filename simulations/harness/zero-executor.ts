// The simulator's executor: a host applies a generation in zero time, keeps its generations in
// memory and stays healthy through every soak. It writes nothing: the deploy agent writes the
// outcome into the host's feed exactly as on a daemon.
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApplyOutcome, Generation, HealthVerdict } from '../../nixos/index.js'
import type { Executor, Intent } from '../../node/deploy/index.js'

export class ZeroTimeExecutor implements Executor {
  private readonly generations: Generation[] = []

  /** `failApply` is asked at every apply: a scenario may turn a host bad after the mesh formed. */
  constructor (private readonly failApply: () => boolean) {}

  async run (intent: Intent): Promise<ApplyOutcome> {
    if (this.failApply()) return { status: 'failed', id: intent.applyId, code: 'ACTIVATION_FAILED', reason: 'simulated failure' }
    const generation = { number: (this.generations.at(-1)?.number ?? 0) + 1, path: intent.path }
    this.generations.push(generation)
    return { status: 'ok', id: intent.applyId, generation }
  }

  /** A simulated host never restarts, so no apply of it is ever interrupted. */
  async recover (): Promise<null> {
    return null
  }

  async current (): Promise<Generation | null> {
    return this.generations.at(-1) ?? null
  }

  async generationBefore (path: string): Promise<Generation | null> {
    const i = this.generations.findLastIndex((g) => g.path === path)
    return i > 0 ? this.generations[i - 1] : null
  }

  async watchHealth (soakMs: number, signal: AbortSignal): Promise<HealthVerdict> {
    await sleep(soakMs, undefined, { signal })
    return { ok: true, probes: {} }
  }
}
