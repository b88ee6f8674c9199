// The apply/rollback engine: fetch → record previous → switch → activate → verify during
// the soak → ok; on any failure, back to the exact recorded previous generation, re-activated
// and verified. Every phase is journalled before it is acted on, so recover() after a
// kill -9 knows what to finish, and nothing is reported `ok` that was not verified.
import { NixosError, type NixosErrorCode } from './errors.js'
import { checkName, validatePolicy, verify, type CheckFailure, type HealthCheck, type HealthPolicy, type ProbeReport } from './health.js'
import { newApplyId, type ApplyPhase, type ApplyRecord, type Journal } from './journal.js'
import { assertStorePath } from './nix.js'
import type { Backend, Generation } from './types.js'

interface EventBase {
  /** Unique per event: `${applyId}:${uuid}`. */
  id: string
  applyId: string
  /** The store path being applied. */
  target: string
  at: number
}

export type DeployEvent = EventBase & (
  | { kind: 'apply-start', previous: Generation | null }
  | { kind: 'switched', generation: Generation }
  | { kind: 'health-failed', generation: Generation | null, check: string, checkKind: HealthCheck['kind'], failures: number, output: string }
  | { kind: 'rollback', from: Generation | null, to: Generation, reason: string }
  | { kind: 'apply-ok', generation: Generation }
  | { kind: 'apply-failed', code: NixosErrorCode, reason: string, rollbackAttempted: boolean }
  | { kind: 'pruned', deleted: number[] }
  | { kind: 'prune-failed', reason: string }
)

/** A health probe of the generation the engine is verifying, a new one or the previous one after a rollback. */
export type EngineProbe = ProbeReport & {
  applyId: string
  generation: Generation | null
  phase: Extract<ApplyPhase, 'verifying' | 'rolling-back'>
}

export type ApplyOutcome =
  | { status: 'ok', id: string, generation: Generation }
  | { status: 'rolled-back', id: string, generation: Generation, reason: string, failedCheck: CheckFailure | null }
  | { status: 'failed', id: string, code: NixosErrorCode, reason: string }

export interface ApplyRequest {
  path: string
  /** Substituter URLs to fetch from when the path is not yet in the store. */
  sources?: string[]
  /** Caller-chosen id (e.g. derived from the release); default a time-sortable random id. */
  id?: string
  /** Overrides the engine's health policy for this apply. */
  health?: HealthPolicy
}

export interface EngineOptions {
  backend: Backend
  journal: Journal
  /** Verifies a new generation (and, on recover(), an interrupted one). */
  health: HealthPolicy
  /** Probe interval while verifying the previous generation after a rollback; default 100 ms. */
  rollbackIntervalMs?: number
  /** Soak after a rollback; default 0: the old generation already proved itself. */
  rollbackSoakMs?: number
  onEvent?: (ev: DeployEvent) => void
  /** Every health probe, kept out of onEvent because probes run many times a second. */
  onProbe?: (p: EngineProbe) => void
  /** generations kept after each apply; older ones are deleted (default: none deleted) */
  keep?: number
  now?: () => number
}

export class DeployEngine {
  private readonly opts: EngineOptions
  private readonly now: () => number
  private busy = false

  constructor (opts: EngineOptions) {
    validatePolicy(opts.health)
    this.opts = opts
    this.now = opts.now ?? Date.now
  }

  async apply (req: ApplyRequest): Promise<ApplyOutcome> {
    assertStorePath(req.path)
    const policy = validatePolicy(req.health ?? this.opts.health)
    return await this.exclusive(async () => {
      const outcome = await this.applyExclusive(req, policy)
      if (outcome.status !== 'failed') await this.prune({ id: outcome.id, target: req.path })
      return outcome
    })
  }

  /**
   * Deletes generations past `keep` after an apply that ended on a healthy generation. A failure
   * here costs disk space, never the apply's outcome.
   */
  private async prune (apply: Pick<ApplyRecord, 'id' | 'target'>): Promise<void> {
    if (this.opts.keep === undefined) return
    try {
      const deleted = await this.opts.backend.gc(this.opts.keep)
      if (deleted.length > 0) this.emit(apply, { kind: 'pruned', deleted })
    } catch (err) {
      this.emit(apply, { kind: 'prune-failed', reason: (err as Error).message })
    }
  }

  private async applyExclusive (req: ApplyRequest, policy: HealthPolicy): Promise<ApplyOutcome> {
    const pending = await this.opts.journal.active()
    if (pending !== null) throw new NixosError('APPLY_IN_PROGRESS', `apply ${pending.id} (${pending.phase}) is unfinished; run recover() first`)
    const id = req.id ?? newApplyId(this.now())
    if (await this.opts.journal.get(id) !== null) throw new NixosError('INVALID_CONFIG', `apply id ${id} was already used`)
    const t = this.now()
    let rec: ApplyRecord = { v: 1, id, target: req.path, phase: 'started', previous: null, switched: null, startedAt: t, updatedAt: t, reason: null }
    await this.opts.journal.write(rec)
    this.emit(rec, { kind: 'apply-start', previous: await this.opts.backend.current() })

    try {
      await this.opts.backend.fetch(req.path, req.sources ?? [])
    } catch (err) {
      // Nothing was switched: the running system is untouched.
      return await this.fail(rec, errorCode(err), `fetch failed: ${(err as Error).message}`, false)
    }
    rec = await this.advance(rec, 'previous-recorded', { previous: await this.opts.backend.current() })
    try {
      rec = await this.advance(rec, 'switched', { switched: await this.opts.backend.switch(req.path) })
    } catch (err) {
      return await this.rollBack(rec, `switch failed: ${(err as Error).message}`, null, policy)
    }
    this.emit(rec, { kind: 'switched', generation: rec.switched as Generation })
    try {
      await this.opts.backend.activate()
    } catch (err) {
      return await this.rollBack(rec, (err as Error).message, null, policy)
    }
    return await this.verifyAndFinish(rec, policy)
  }

  /**
   * Finishes the apply a crash interrupted: a verification in progress is run again in full;
   * anything between recording the previous generation and verification is rolled back;
   * an interrupted rollback is redone. Returns null when there was nothing to finish.
   */
  async recover (): Promise<ApplyOutcome | null> {
    return await this.exclusive(async () => {
      const rec = await this.opts.journal.active()
      if (rec === null) return null
      const policy = this.opts.health
      const reason = (phase: ApplyPhase): string => `interrupted in phase ${phase} (process restarted)`
      switch (rec.phase) {
        case 'started':
          // The previous generation is recorded before any switch, so nothing changed yet.
          return await this.fail(rec, 'APPLY_INTERRUPTED', `${reason(rec.phase)} before anything was switched`, false)
        case 'verifying':
          return await this.verifyAndFinish(rec, policy)
        case 'rolling-back':
          return await this.rollBack(rec, rec.reason ?? reason(rec.phase), null, policy)
        default:
          return await this.rollBack(rec, reason(rec.phase), null, policy)
      }
    })
  }

  private async verifyAndFinish (rec: ApplyRecord, policy: HealthPolicy): Promise<ApplyOutcome> {
    rec = await this.advance(rec, 'verifying', {})
    const verdict = await verify(policy, { now: this.now, onProbe: this.probeReporter(rec, rec.switched, 'verifying') })
    if (!verdict.ok) {
      this.emitHealthFailed(rec, rec.switched, verdict.failed)
      return await this.rollBack(rec, `health check ${verdict.failed.check} failed: ${verdict.failed.output}`, verdict.failed, policy)
    }
    rec = await this.advance(rec, 'ok', {})
    const generation = rec.switched as Generation
    this.emit(rec, { kind: 'apply-ok', generation })
    return { status: 'ok', id: rec.id, generation }
  }

  private async rollBack (rec: ApplyRecord, reason: string, failedCheck: CheckFailure | null, policy: HealthPolicy): Promise<ApplyOutcome> {
    rec = await this.advance(rec, 'rolling-back', { reason })
    const to = rec.previous
    if (to === null) return await this.fail(rec, 'ROLLBACK_FAILED', `${reason}; no previous generation to roll back to`, true)
    try {
      await this.opts.backend.rollback(to)
      await this.opts.backend.activate()
      const verdict = await verify(this.rollbackPolicy(policy), { now: this.now, onProbe: this.probeReporter(rec, to, 'rolling-back') })
      if (!verdict.ok) {
        this.emitHealthFailed(rec, to, verdict.failed)
        throw new NixosError('HEALTH_CHECK_FAILED', `generation ${to.number} is unhealthy after rollback: ${verdict.failed.check}: ${verdict.failed.output}`)
      }
    } catch (err) {
      return await this.fail(rec, 'ROLLBACK_FAILED', `${reason}; rollback to generation ${to.number} failed: ${(err as Error).message}`, true)
    }
    rec = await this.advance(rec, 'rolled-back', {})
    this.emit(rec, { kind: 'rollback', from: rec.switched, to, reason })
    return { status: 'rolled-back', id: rec.id, generation: to, reason, failedCheck }
  }

  private async fail (rec: ApplyRecord, code: NixosErrorCode, reason: string, rollbackAttempted: boolean): Promise<ApplyOutcome> {
    rec = await this.advance(rec, 'failed', { reason })
    this.emit(rec, { kind: 'apply-failed', code, reason, rollbackAttempted })
    return { status: 'failed', id: rec.id, code, reason }
  }

  /** The old generation is re-verified on a short interval so a host is back quickly. */
  private rollbackPolicy (policy: HealthPolicy): HealthPolicy {
    const interval = this.opts.rollbackIntervalMs ?? 100
    return {
      soakMs: this.opts.rollbackSoakMs ?? 0,
      checks: policy.checks.map(c => ({ ...c, name: checkName(c), intervalMs: Math.min(c.intervalMs ?? interval, interval) }))
    }
  }

  private async advance (rec: ApplyRecord, phase: ApplyPhase, patch: Partial<Pick<ApplyRecord, 'previous' | 'switched' | 'reason'>>): Promise<ApplyRecord> {
    const next: ApplyRecord = { ...rec, ...patch, phase, updatedAt: this.now() }
    await this.opts.journal.write(next)
    return next
  }

  private probeReporter (rec: ApplyRecord, generation: Generation | null, phase: EngineProbe['phase']): ((p: ProbeReport) => void) | undefined {
    const onProbe = this.opts.onProbe
    return onProbe === undefined ? undefined : (p) => { onProbe({ ...p, applyId: rec.id, generation, phase }) }
  }

  private emitHealthFailed (rec: ApplyRecord, generation: Generation | null, f: CheckFailure): void {
    this.emit(rec, { kind: 'health-failed', generation, check: f.check, checkKind: f.kind, failures: f.failures, output: f.output })
  }

  private emit (rec: Pick<ApplyRecord, 'id' | 'target'>, body: DistributiveOmit<DeployEvent, keyof EventBase>): void {
    const ev = { id: `${rec.id}:${crypto.randomUUID()}`, applyId: rec.id, target: rec.target, at: this.now(), ...body } as DeployEvent
    try {
      this.opts.onEvent?.(ev)
    } catch {
      // The audit sink failing must not leave a host half-deployed; the journal, not the
      // event stream, is what recover() trusts.
    }
  }

  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new NixosError('APPLY_IN_PROGRESS', 'another apply or recovery is running')
    this.busy = true
    try {
      return await fn()
    } finally {
      this.busy = false
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

function errorCode (err: unknown): NixosErrorCode {
  return err instanceof NixosError ? err.code : 'NIX_COMMAND_FAILED'
}
