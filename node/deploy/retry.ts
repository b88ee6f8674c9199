// Transient apply failures and their retries. A failure is transient when nothing was activated
// (a fetch failure, an apply interrupted before activation, another apply holding the lock): the
// running system is the one from before, so the same attempt is tried again after a backoff.
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

/** The wait before the next try of an attempt whose try `tryNo` ended in `o`; undefined: no next try, `o` is its outcome. */
export function retryAfter (p: RetryPolicy, intent: Intent, o: ApplyOutcome, tryNo: number): number | undefined {
  const transient = o.status === 'failed' && o.transient === true
  if (intent.revert || !transient || tryNo >= p.tries) return undefined
  return Math.min(p.maxBackoffMs, p.backoffMs * 2 ** (tryNo - 1))
}
