// How an apply's outcome and a failed health check are written into this host's feed: the
// entries every other host's decisions read. Every outcome entry names its attempt, and an entry
// this host already wrote for an attempt is never written again: a crash between the append and
// the executor's reported() leaves the outcome in the journal, and the restarted agent finds its
// entry here instead of writing a second one (exactly one outcome per attempt).
import type { ApplyOutcome } from '../../nixos/index.js'
import type { AuditStore, Entry } from '../../protocols/audit/index.js'
import type { Intent } from './executor.js'
import type { DeployMetrics } from './metrics.js'

/** Longest reason or check output written into an entry. */
export const MAX_OUTPUT_CHARS = 1_000

export type Appender = Pick<AuditStore, 'append'>

/** Kinds this host writes about one attempt of its own. */
const ATTEMPT_KINDS = new Set(['apply-start', 'apply-ok', 'apply-failed', 'rollback', 'soaked', 'confirming', 'pending-reboot'])

/**
 * Which (kind, attempt) entries this host has written about its own attempts: filled from the
 * whole log at start and from every own entry after, so the check before an append needs no scan.
 */
export class OwnAttempts {
  /** `${kind} ${attempt}` → the entry's seq */
  private readonly written = new Map<string, number>()

  constructor (readonly self: string) {}

  /** Files the entry if it is one of this host's attempt entries. */
  note (e: Pick<Entry, 'feed' | 'kind' | 'body' | 'seq'>): void {
    if (e.feed !== this.self || !ATTEMPT_KINDS.has(e.kind)) return
    const attempt = (e.body as { attempt?: unknown }).attempt
    if (typeof attempt === 'string') this.written.set(`${e.kind} ${attempt}`, e.seq)
  }

  has (kind: string, attempt: string): boolean {
    return this.written.has(`${kind} ${attempt}`)
  }

  /** The seq of this host's `kind` entry about `attempt`, if written. */
  seqOf (kind: string, attempt: string): number | undefined {
    return this.written.get(`${kind} ${attempt}`)
  }
}

interface Write { kind: 'apply-ok' | 'apply-failed' | 'rollback', body: Record<string, unknown> }

/** The entries an outcome is written as, each naming the attempt. */
function entriesOf (intent: Intent, outcome: ApplyOutcome): Write[] {
  const { release, path } = intent
  const attempt = intent.applyId
  if (intent.revert) {
    // `path` is the release's generation this host leaves; the executor chose where it went.
    const to = outcome.status === 'failed' ? path : outcome.generation.path
    return [{ kind: 'rollback', body: { release, from: path, to, ok: outcome.status !== 'failed', attempt } }]
  }
  switch (outcome.status) {
    case 'ok':
      return [{ kind: 'apply-ok', body: { release, path, healthyAt: Date.now(), attempt } }]
    case 'rolled-back':
      return [
        { kind: 'apply-failed', body: { release, path, reason: outcome.reason.slice(0, MAX_OUTPUT_CHARS), attempt, ...(outcome.failedCheck !== null ? { check: outcome.failedCheck.check.slice(0, 128) } : {}) } },
        { kind: 'rollback', body: { release, from: path, to: outcome.generation.path, ok: true, attempt } }
      ]
    case 'failed':
      return [{ kind: 'apply-failed', body: { release, path, reason: `${outcome.code}: ${outcome.reason}`.slice(0, MAX_OUTPUT_CHARS), attempt } }]
    case 'staged':
      // not an outcome yet: the agent writes pending-reboot, and the outcome after the boot
      return []
  }
}

/**
 * Writes the outcome's entries that this host has not yet written for the attempt. Returns
 * whether anything was appended. The caller then tells the executor reported().
 */
export async function reportOutcome (store: Appender, own: OwnAttempts, intent: Intent, outcome: ApplyOutcome): Promise<boolean> {
  let appended = false
  const attempt = intent.applyId
  for (const w of entriesOf(intent, outcome)) {
    if (own.has(w.kind, attempt)) continue
    const s = await store.append(w.kind, w.body)
    // Filed now, not only when the store's event comes back: a second report right after must see it.
    own.note(s.entry)
    appended = true
  }
  return appended
}

/** A failed check, counted and written as a `health` entry for every host's gate. */
export async function reportHealthFailure (store: Appender, metrics: DeployMetrics | undefined, release: string | undefined, path: string, check: string, output: string): Promise<void> {
  metrics?.healthFailed(check)
  await store.append('health', { ...(release !== undefined ? { release } : {}), path, ok: false, check: check.slice(0, 128), output: output.slice(0, MAX_OUTPUT_CHARS) })
}
