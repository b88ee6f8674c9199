// Rolling back applies that ended ok and failed later: a gate soak's health failure, an agent's
// crash-loop escalation (node/agents), an unconfirmed generation. One rollback runs per call, from
// the agent's evaluation (which owns the executor); a rollback the engine refused (busy) is tried
// again after a backoff, and one of a generation that no longer runs is dropped: neither changed
// anything, so neither is an outcome of the attempt.
import type { Logger } from 'pino'
import type { SoakWatch } from '../../protocols/rollout/index.js'
import type { Executor, Intent, Unreported } from './executor.js'
import type { OwnAttempts } from './report.js'
import { backoff, refused, superseded, type RetryPolicy } from './retry.js'

export type RollbackEnd = 'rolled-back' | 'failed' | 'refused' | 'superseded'

export interface RollbackComponents {
  executor: Pick<Executor, 'rollbackSoak'>
  own: Pick<OwnAttempts, 'has'>
  retry: RetryPolicy
  log: Pick<Logger, 'warn'>
  /** writes the rollback's outcome, the attempt's one */
  settle: (u: Unreported) => Promise<void>
  /** the attempt the executor works on now, null when done (the status's `applying`) */
  applying: (intent: Intent | null) => void
  /** asks for an evaluation: a refused rollback is queued again */
  wake: () => void
}

interface Failure { watch: SoakWatch, reason: string, done?: (rolledBack: boolean) => void, tryNo?: number }

export class Rollbacks {
  /** failed soaks and escalations, oldest first: rolled back by the next evaluation */
  private readonly failures: Failure[] = []
  /** refused tries waiting out their backoff, each with what to do if stopped first */
  private readonly waiting = new Map<NodeJS.Timeout, () => void>()

  constructor (private readonly c: RollbackComponents) {}

  /** Queues the rollback of the watched apply; `done` hears whether it was rolled back. */
  fail (watch: SoakWatch, reason: string, done?: (rolledBack: boolean) => void): void {
    this.failures.push({ watch, reason, done })
    this.c.wake()
  }

  queued (): boolean {
    return this.failures.length > 0
  }

  /** Runs the oldest queued rollback; a refused one is queued again after its backoff. */
  async runNext (): Promise<void> {
    const f = this.failures.shift()
    if (f === undefined) return
    const ended = this.c.own.has('apply-failed', f.watch.attempt)
      ? 'failed'
      : await this.attempt({ applyId: f.watch.attempt, release: f.watch.release, path: f.watch.path, revert: false }, f.reason).catch((err: Error) => { f.done?.(false); throw err })
    const tryNo = f.tryNo ?? 1
    if (ended === 'refused') this.later(tryNo, () => { this.failures.push({ ...f, tryNo: tryNo + 1 }) }, () => { f.done?.(false) })
    else f.done?.(ended === 'rolled-back')
  }

  /** `requeue` after the backoff of refused try `tryNo`; `cancel` instead if stopped first. */
  later (tryNo: number, requeue: () => void, cancel: () => void): void {
    const timer = setTimeout(() => {
      this.waiting.delete(timer)
      requeue()
      this.c.wake()
    }, backoff(this.c.retry, tryNo))
    timer.unref()
    this.waiting.set(timer, cancel)
  }

  /**
   * Rolls an apply that ended ok back to the generation recorded before it, and writes that
   * outcome. A refusal (another apply holds the engine, or a newer one is staged) rolled nothing
   * back and is no outcome: nothing is written, the caller tries again later (the apply's own
   * outcome stands meanwhile, so a crash leaves one outcome per attempt). Nor is a rollback of a
   * generation that no longer runs (a reboot into a staged one, a local apply): the apply's own
   * outcome stands, and the newer generation's is its own.
   */
  async attempt (intent: Intent, reason: string): Promise<RollbackEnd> {
    this.c.applying(intent)
    const outcome = await this.c.executor.rollbackSoak(intent, reason)
    this.c.applying(null)
    if (refused(outcome)) {
      this.c.log.warn({ release: intent.release, attempt: intent.applyId, refused: (outcome as { reason: string }).reason }, 'deploy: the engine refused the rollback (busy): nothing was rolled back; trying again later')
      return 'refused'
    }
    if (superseded(outcome)) {
      this.c.log.warn({ release: intent.release, attempt: intent.applyId, reason: (outcome as { reason: string }).reason }, 'deploy: a newer generation replaced the one to roll back: nothing was rolled back')
      return 'superseded'
    }
    await this.c.settle({ intent, outcome })
    return outcome.status === 'rolled-back' ? 'rolled-back' : 'failed'
  }

  stop (): void {
    for (const [timer, cancel] of this.waiting) { clearTimeout(timer); cancel() }
    this.waiting.clear()
  }
}
