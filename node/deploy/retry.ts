// Transient apply failures and their retries. A failure is transient when nothing was activated
// (a fetch failure, an apply interrupted before activation, another apply holding the lock): the
// running system is the one from before, so the same attempt is tried again after a backoff. A
// revert or a rollback the engine refused (busy) is tried again the same way.
import type { ApplyOutcome } from '../../nixos/index.js'
import type { Intent } from './executor.js'

/**
 * Up to `tries` tries in all, `backoffMs` doubling to `maxBackoffMs` between them. Only a failure
 * after activation, or the last try's, is written as apply-failed and counts against the
 * release's failure budget.
 */
export interface RetryPolicy { tries: number, backoffMs: number, maxBackoffMs: number }
export const RETRY: RetryPolicy = { tries: 5, backoffMs: 5_000, maxBackoffMs: 5 * 60_000 }

/**
 * A try of an attempt still to run (the executor runs an attempt whose last try changed nothing
 * again under the same id): resumed after a restart, or the next after a transient failure.
 * Tries are counted per daemon run: a restart starts the count again.
 */
export interface Pending {
  intent: Intent
  sources: string[]
  tryNo: number
  afterMs: number
  /** the last try's outcome is in the journal, unreported until this try begins */
  inJournal: boolean
}

/**
 * The engine refused to begin (another apply holds it, or one is staged for the next boot): it
 * journalled nothing and changed nothing, so this is no outcome of the attempt, only a wait.
 */
export function refused (o: ApplyOutcome): boolean {
  return o.status === 'failed' && o.transient === true && o.code === 'APPLY_IN_PROGRESS'
}

/**
 * A rollback of an apply whose generation no longer runs (a reboot into a staged one, a local
 * apply): the engine journalled nothing and changed nothing, and the newer generation has its own
 * outcome, so this is no outcome of the attempt either. Only for a rollback's outcome.
 */
export function superseded (o: ApplyOutcome): boolean {
  return o.status === 'failed' && o.code === 'GENERATION_NOT_FOUND'
}

/** The wait before try `tryNo + 1` of something whose try `tryNo` changed nothing. */
export function backoff (p: RetryPolicy, tryNo: number): number {
  return Math.min(p.maxBackoffMs, p.backoffMs * 2 ** (tryNo - 1))
}

/**
 * The wait before the next try of an attempt whose try `tryNo` ended in `o`; undefined: no next
 * try, `o` is its outcome. A revert is tried again only when refused: one that ran and failed
 * is reported as it ended.
 */
export function retryAfter (p: RetryPolicy, intent: Intent, o: ApplyOutcome, tryNo: number): number | undefined {
  const transient = o.status === 'failed' && o.transient === true
  if (!transient || tryNo >= p.tries || (intent.revert && !refused(o))) return undefined
  return backoff(p, tryNo)
}
