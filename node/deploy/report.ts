// How an apply's outcome and a failed health check are written into this host's feed: the
// entries every other host's decisions read.
import type { ApplyOutcome } from '../../nixos/index.js'
import type { AuditStore } from '../../protocols/audit/index.js'
import type { Intent } from './executor.js'
import type { DeployMetrics } from './metrics.js'

/** Longest reason or check output written into an entry. */
export const MAX_OUTPUT_CHARS = 1_000

export type Appender = Pick<AuditStore, 'append'>

/** Writes an apply's outcome as this host's signed entries; `leaving` is the path a revert leaves. */
export async function reportOutcome (store: Appender, intent: Intent, outcome: ApplyOutcome, leaving?: string): Promise<void> {
  const { release, path } = intent
  if (intent.revert) {
    await store.append('rollback', { release, from: leaving ?? path, to: path, ok: outcome.status === 'ok' })
    return
  }
  switch (outcome.status) {
    case 'ok':
      await store.append('apply-ok', { release, path, healthyAt: Date.now() })
      break
    case 'rolled-back':
      await store.append('apply-failed', { release, path, reason: outcome.reason.slice(0, MAX_OUTPUT_CHARS), ...(outcome.failedCheck !== null ? { check: outcome.failedCheck.check.slice(0, 128) } : {}) })
      await store.append('rollback', { release, from: path, to: outcome.generation.path, ok: true })
      break
    case 'failed':
      await store.append('apply-failed', { release, path, reason: `${outcome.code}: ${outcome.reason}`.slice(0, MAX_OUTPUT_CHARS) })
      break
  }
}

/** A failed check, counted and written as a `health` entry for every host's gate. */
export async function reportHealthFailure (store: Appender, metrics: DeployMetrics | undefined, release: string | undefined, path: string, check: string, output: string): Promise<void> {
  metrics?.healthFailed(check)
  await store.append('health', { ...(release !== undefined ? { release } : {}), path, ok: false, check: check.slice(0, 128), output: output.slice(0, MAX_OUTPUT_CHARS) })
}
