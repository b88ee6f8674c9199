// The simulator's executor: a host applies a generation in zero time, keeps its generations and
// its journal in memory and stays healthy through every soak. It writes nothing: the deploy agent
// writes the outcome into the host's feed exactly as on a daemon. The object outlives an agent
// restart the way a host's disk does, so an outcome not yet reported is returned again.
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApplyOutcome, Generation, HealthVerdict } from '../../nixos/index.js'
import type { Executor, Intent, Unreported } from '../../node/deploy/index.js'

interface Attempt { intent: Intent, outcome: ApplyOutcome, previous: Generation | null, reported: boolean }

export class ZeroTimeExecutor implements Executor {
  private readonly generations: Generation[] = []
  private readonly attempts = new Map<string, Attempt>()

  /** `failApply` is asked at every apply: a scenario may turn a host bad after the mesh formed. */
  constructor (private readonly failApply: () => boolean) {}

  async run (intent: Intent): Promise<ApplyOutcome> {
    const previous = this.generations.at(-1) ?? null
    const to = intent.revert ? this.recordedBefore(intent.path) : intent.path
    let outcome: ApplyOutcome
    if (to === null) {
      outcome = { status: 'failed', id: intent.applyId, code: 'GENERATION_NOT_FOUND', reason: `cannot leave ${intent.path}: nothing recorded before it` }
    } else if (this.failApply()) {
      outcome = { status: 'failed', id: intent.applyId, code: 'ACTIVATION_FAILED', reason: 'simulated failure' }
    } else {
      outcome = { status: 'ok', id: intent.applyId, generation: this.push(to) }
    }
    this.attempts.set(intent.applyId, { intent, outcome, previous, reported: false })
    return outcome
  }

  async rollbackSoak (intent: Intent, reason: string): Promise<ApplyOutcome> {
    const a = this.attempts.get(intent.applyId)
    if (a?.outcome.status !== 'ok') return { status: 'failed', id: intent.applyId, code: 'INVALID_CONFIG', reason: `apply ${intent.applyId} did not end ok` }
    a.outcome = a.previous === null
      ? { status: 'failed', id: intent.applyId, code: 'ROLLBACK_FAILED', reason: `${reason}; no previous generation to roll back to` }
      : { status: 'rolled-back', id: intent.applyId, generation: this.push(a.previous.path), reason, failedCheck: null }
    a.reported = false
    return a.outcome
  }

  async unreported (): Promise<Unreported[]> {
    return [...this.attempts.values()].filter((a) => !a.reported).map(({ intent, outcome }) => ({ intent, outcome }))
  }

  async reported (applyId: string): Promise<void> {
    const a = this.attempts.get(applyId)
    if (a !== undefined) a.reported = true
  }

  async current (): Promise<Generation | null> {
    return this.generations.at(-1) ?? null
  }

  async watchHealth (soakMs: number, signal: AbortSignal): Promise<HealthVerdict> {
    await sleep(soakMs, undefined, { signal })
    return { ok: true, probes: {} }
  }

  private push (path: string): Generation {
    const generation = { number: (this.generations.at(-1)?.number ?? 0) + 1, path }
    this.generations.push(generation)
    return generation
  }

  /** The generation recorded before the newest successful apply of `path`. */
  private recordedBefore (path: string): string | null {
    const applied = [...this.attempts.values()].reverse().find((a) => !a.intent.revert && a.intent.path === path && a.outcome.status === 'ok')
    return applied?.previous?.path ?? null
  }
}
