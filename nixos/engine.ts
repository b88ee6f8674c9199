// The apply/rollback engine: fetch → record previous → switch → activate → verify during
// the soak → ok; on any failure, back to the exact recorded previous generation, re-activated
// and verified. Every phase is journalled before it is acted on, so recover() after a
// kill -9 knows what to finish, and nothing is reported `ok` that was not verified.
import { NixosError, type NixosErrorCode } from './errors.js'
import { DEFAULT_START_PERIOD_MS, checkName, validatePolicy, verify, type CheckFailure, type HealthCheck, type HealthPolicy, type ProbeReport } from './health.js'
import { bootChanges, monotonicMs, type BootInfo } from './boot.js'
import { TERMINAL_PHASES, newApplyId, type ApplyHold, type ApplyPhase, type ApplyRecord, type Journal } from './journal.js'
import { assertStorePath } from './nix.js'
import type { ApplyOutcome, Backend, Generation } from './types.js'

export type { ApplyOutcome }

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
  | { kind: 'staged', generation: Generation, changes: string[] }
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

export interface ApplyRequest {
  path: string
  /** Substituter URLs to fetch from when the path is not yet in the store. */
  sources?: string[]
  /** Caller-chosen id (e.g. derived from the release); default a time-sortable random id. */
  id?: string
  /** Overrides the engine's health policy for this apply. */
  health?: HealthPolicy
  /** The caller's description of the apply: with one, its outcome stays unreported until markReported(). */
  tag?: string
  /** replaces an apply staged in this boot (a newer release's); without it the apply is refused while one is staged */
  supersede?: boolean
}

export interface RevertRequest {
  /** The store path to leave. */
  leaving: string
  id?: string
  tag?: string
}

/** How far back the journal is read for verdicts and reverts. */
const HISTORY_SCAN = 1000

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
  /**
   * With it, a generation that changes the kernel, initrd or systemd of the running system is
   * staged for the next boot (`switch-to-configuration boot`) and verified after it.
   */
  boot?: BootInfo
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
      if (req.supersede === true) await this.unstage(req.id ?? req.path)
      const rec = await this.begin(req.id, req.path, req.tag)
      return await this.pruneAfter(rec, await this.applyFrom(rec, req.sources ?? [], policy))
    })
  }

  /**
   * Leaves `leaving` for the generation this engine recorded before it applied `leaving` (not
   * whatever the profile lists next to it: that may be a generation already rolled back from),
   * applied and verified like any other apply.
   */
  async revert (req: RevertRequest): Promise<ApplyOutcome> {
    assertStorePath(req.leaving)
    return await this.exclusive(async () => {
      const current = await this.opts.backend.current()
      const applied = current?.path === req.leaving ? await this.lastOk((r) => r.target === req.leaving && r.switched?.number === current.number) : null
      const to = applied?.previous ?? null
      const rec = await this.begin(req.id, to?.path ?? req.leaving, req.tag)
      if (to === null) {
        const why = current?.path === req.leaving ? 'no generation was recorded before it was applied' : `this host runs ${current?.path ?? 'nothing'}`
        return await this.fail(rec, 'GENERATION_NOT_FOUND', `cannot leave ${req.leaving}: ${why}`, false)
      }
      return await this.pruneAfter(rec, await this.applyFrom(rec, [], this.opts.health))
    })
  }

  /**
   * Rolls back apply `id`, which ended ok, to the generation recorded before it: its generation
   * failed later (a gate's soak). The new outcome replaces the old one and is unreported again.
   */
  async rollbackApply (id: string, reason: string): Promise<ApplyOutcome> {
    return await this.exclusive(async () => {
      await this.requireIdle()
      const rec = await this.opts.journal.get(id)
      if (rec?.phase !== 'ok') throw new NixosError('INVALID_CONFIG', `apply ${id} did not end ok (${rec?.phase ?? 'unknown'}): nothing to roll back`)
      const current = await this.opts.backend.current()
      if (current?.number !== rec.switched?.number || current?.path !== rec.switched?.path) {
        throw new NixosError('GENERATION_NOT_FOUND', `apply ${id} is no longer the running generation (now ${current?.number ?? 'none'})`)
      }
      const reopened: ApplyRecord = { ...rec, outcome: null, reported: rec.tag === null }
      return await this.rollBack(reopened, reason, null, this.opts.health)
    })
  }

  /**
   * Every tagged apply whose outcome its caller has not yet reported, oldest first; an apply a
   * crash interrupted is finished first (unless one is running in this process right now).
   */
  async unreported (): Promise<Array<{ record: ApplyRecord, outcome: ApplyOutcome }>> {
    if (!this.busy) await this.recover()
    const out: Array<{ record: ApplyRecord, outcome: ApplyOutcome }> = []
    for (const record of await this.opts.journal.unreported()) {
      if (record.outcome !== null) out.push({ record, outcome: record.outcome })
      else if (record.phase === 'staged') out.push({ record, outcome: stagedOutcome(record) })
    }
    return out
  }

  /**
   * Apply `id` ended ok and now waits for its host to confirm it still belongs to the mesh:
   * the window opens now, on this boot, and survives a restart of the caller (the journal).
   */
  async holdConfirm (id: string, windowMs: number): Promise<ApplyHold> {
    const rec = await this.opts.journal.get(id)
    if (rec?.phase !== 'ok' || rec.reported) throw new NixosError('INVALID_CONFIG', `apply ${id} did not end ok unreported: nothing to confirm`)
    if (rec.hold != null) return rec.hold
    const hold: ApplyHold = { kind: 'confirm', bootId: await this.bootId(), windowMs, sinceMs: monotonicMs() }
    await this.opts.journal.write({ ...rec, hold, updatedAt: this.now() })
    return hold
  }

  /** The running boot's id (the journal binds holds to it). */
  async bootId (): Promise<string> {
    if (this.opts.boot === undefined) throw new NixosError('INVALID_CONFIG', 'this engine knows no boot id')
    return await this.opts.boot.id()
  }

  /** The store path of the running system, when the host has one. */
  async running (): Promise<string | null> {
    return await this.opts.boot?.running() ?? null
  }

  /** The caller durably reported apply `id`'s outcome; unknown ids were never journalled. */
  async markReported (id: string): Promise<void> {
    const rec = await this.opts.journal.get(id)
    if (rec === null || rec.reported) return
    if (rec.outcome === null) throw new NixosError('INVALID_CONFIG', `apply ${id} has not ended (${rec.phase}): its outcome cannot have been reported`)
    await this.opts.journal.write({ ...rec, reported: true, hold: null })
  }

  /**
   * What this engine saw of each generation: healthy (an apply of it ended ok, or a rollback
   * verified it) or failed (an apply of it was rolled back or failed after it was switched to).
   * The latest verdict of a generation wins.
   */
  async verdicts (): Promise<Map<string, 'healthy' | 'failed'>> {
    const verdicts = new Map<string, 'healthy' | 'failed'>()
    const key = (g: Generation): string => `${g.number}:${g.path}`
    for (const r of await this.records()) {
      if (r.switched === null || !TERMINAL_PHASES.has(r.phase)) continue
      if (r.phase === 'ok') verdicts.set(key(r.switched), 'healthy')
      else verdicts.set(key(r.switched), 'failed')
      if (r.outcome?.status === 'rolled-back') verdicts.set(key(r.outcome.generation), 'healthy')
    }
    return verdicts
  }

  /**
   * Deletes generations past `keep` after an apply that ended on a healthy generation. A failure
   * here costs disk space, never the apply's outcome.
   */
  private async pruneAfter (rec: Pick<ApplyRecord, 'id' | 'target'>, outcome: ApplyOutcome): Promise<ApplyOutcome> {
    if (this.opts.keep === undefined || outcome.status === 'failed') return outcome
    try {
      const deleted = await this.opts.backend.gc(this.opts.keep)
      if (deleted.length > 0) this.emit(rec, { kind: 'pruned', deleted })
    } catch (err) {
      this.emit(rec, { kind: 'prune-failed', reason: (err as Error).message })
    }
    return outcome
  }

  /** Journals a new apply; an id whose earlier run changed nothing (a transient failure) is run again. */
  private async begin (reqId: string | undefined, path: string, tag: string | undefined): Promise<ApplyRecord> {
    await this.requireIdle()
    const id = reqId ?? newApplyId(this.now())
    const earlier = await this.opts.journal.get(id)
    if (earlier !== null && !(earlier.outcome?.status === 'failed' && earlier.outcome.transient === true)) {
      throw new NixosError('INVALID_CONFIG', `apply id ${id} was already used`)
    }
    const t = this.now()
    const rec: ApplyRecord = { v: 2, id, target: path, phase: 'started', previous: null, switched: null, startedAt: t, updatedAt: t, reason: null, tag: tag ?? null, outcome: null, reported: tag === undefined }
    await this.opts.journal.write(rec)
    this.emit(rec, { kind: 'apply-start', previous: await this.opts.backend.current() })
    return rec
  }

  /**
   * An apply that supersedes (the deploy agent's, for a newer release) replaces one staged in this
   * boot (a staged one from an earlier boot is judged by recover() first): the profile and the next boot go back to the generation recorded before
   * it, so the new apply records that one as its previous, and the staged one ends as a failure
   * that changed nothing (transient), reported at once: its caller moved on to the newer apply.
   */
  private async unstage (by: string): Promise<void> {
    const rec = await this.opts.journal.active()
    if (rec?.phase !== 'staged' || rec.hold?.bootId !== await this.bootId()) return
    const to = rec.previous
    if (to !== null) {
      await this.opts.backend.rollback(to)
      await this.opts.backend.activate(`${rec.id}.unstage`, 'boot')
    }
    const reason = `superseded by apply ${by} before the reboot: nothing was activated`
    const outcome: ApplyOutcome = { status: 'failed', id: rec.id, code: 'APPLY_SUPERSEDED', reason, transient: true }
    await this.opts.journal.write({ ...rec, hold: null, phase: 'failed', reason, outcome, reported: true, updatedAt: this.now() })
    this.emit(rec, { kind: 'apply-failed', code: 'APPLY_SUPERSEDED', reason, rollbackAttempted: false })
  }

  private async requireIdle (): Promise<void> {
    const pending = await this.opts.journal.active()
    if (pending?.phase === 'staged') throw new NixosError('APPLY_IN_PROGRESS', `apply ${pending.id} is staged for the next boot: it ends after a reboot`)
    if (pending !== null) throw new NixosError('APPLY_IN_PROGRESS', `apply ${pending.id} (${pending.phase}) is unfinished; run recover() first`)
  }

  private async applyFrom (rec: ApplyRecord, sources: string[], policy: HealthPolicy): Promise<ApplyOutcome> {
    try {
      await this.opts.backend.fetch(rec.target, sources)
    } catch (err) {
      // Nothing was switched: the running system is untouched.
      return await this.fail(rec, errorCode(err), `fetch failed: ${(err as Error).message}`, false, true)
    }
    rec = await this.advance(rec, 'previous-recorded', { previous: await this.opts.backend.current() })
    try {
      rec = await this.advance(rec, 'switched', { switched: await this.opts.backend.switch(rec.target) })
    } catch (err) {
      return await this.rollBack(rec, `switch failed: ${(err as Error).message}`, null, policy)
    }
    this.emit(rec, { kind: 'switched', generation: rec.switched as Generation })
    const changes = await this.bootChangesOf(rec)
    if (changes.length > 0) return await this.stage(await this.advance(rec, 'activating', {}), changes, policy)
    return await this.activateAndVerify(await this.advance(rec, 'activating', {}), policy)
  }

  /** What of the running system (or the recorded previous one) only a reboot would change. */
  private async bootChangesOf (rec: ApplyRecord): Promise<string[]> {
    if (this.opts.boot === undefined) return []
    const from = await this.opts.boot.running() ?? rec.previous?.path
    return from === undefined ? [] : await bootChanges(from, rec.target)
  }

  /**
   * Makes the generation the next boot's without activating it now. A crash while this runs
   * recovers as an interrupted activation (the activation is waited for under the same id).
   */
  private async stage (rec: ApplyRecord, changes: string[], policy: HealthPolicy): Promise<ApplyOutcome> {
    try {
      await this.opts.backend.activate(rec.id, 'boot')
    } catch (err) {
      return await this.rollBack(rec, (err as Error).message, null, policy)
    }
    rec = await this.advance(rec, 'staged', { hold: { kind: 'reboot', bootId: await this.bootId(), windowMs: 0, sinceMs: 0 } })
    const generation = rec.switched as Generation
    this.emit(rec, { kind: 'staged', generation, changes })
    return { status: 'staged', id: rec.id, generation, changes }
  }

  /**
   * A staged apply after a boot: the new generation running is verified like any activation;
   * a host that came back on another system (the old generation chosen, or fallen back to) has
   * its profile rolled back to it: reverted by the reboot. In the boot it was staged in, it stays.
   */
  private async afterBoot (rec: ApplyRecord, policy: HealthPolicy): Promise<ApplyOutcome> {
    const hold = rec.hold as ApplyHold
    if (await this.bootId() === hold.bootId) return stagedOutcome(rec)
    const running = await this.running()
    if (running === null || running === rec.target) return await this.verifyAndFinish(rec, policy)
    return await this.rollBack(rec, `reverted-by-reboot: the host booted ${running}, not ${rec.target}`, null, policy)
  }

  private async activateAndVerify (rec: ApplyRecord, policy: HealthPolicy): Promise<ApplyOutcome> {
    try {
      await this.opts.backend.activate(rec.id)
    } catch (err) {
      return await this.rollBack(rec, (err as Error).message, null, policy)
    }
    return await this.verifyAndFinish(rec, policy)
  }

  /**
   * Finishes the apply a crash interrupted: an activation started is waited for (it runs
   * detached, so it may have outlived the crash, or caused it) and verified; a verification in
   * progress is run again in full; a switch whose activation never started is undone without
   * activating anything (nothing ran: a transient failure); an interrupted rollback is redone.
   * Returns null when there was nothing to finish.
   */
  async recover (): Promise<ApplyOutcome | null> {
    return await this.exclusive(async () => {
      const rec = await this.opts.journal.active()
      if (rec === null) return null
      const policy = this.opts.health
      const reason = `interrupted in phase ${rec.phase} (process restarted)`
      switch (rec.phase) {
        case 'started':
          // The previous generation is recorded before any switch, so nothing changed yet.
          return await this.fail(rec, 'APPLY_INTERRUPTED', `${reason} before anything was switched`, false, true)
        case 'previous-recorded':
        case 'switched':
          // A version-1 record may have been activating: only a full rollback is safe then.
          return rec.v === 1 ? await this.rollBack(rec, reason, null, policy) : await this.undoSwitch(rec, reason)
        case 'activating': {
          const changes = await this.bootChangesOf(rec)
          return changes.length > 0 ? await this.stage(rec, changes, policy) : await this.activateAndVerify(rec, policy)
        }
        case 'verifying':
          return await this.verifyAndFinish(rec, policy)
        case 'staged':
          return await this.afterBoot(rec, policy)
        default:
          return await this.rollBack(rec, rec.reason ?? reason, null, policy)
      }
    })
  }

  /** Points the profile back at the recorded generation; the running system never changed. */
  private async undoSwitch (rec: ApplyRecord, reason: string): Promise<ApplyOutcome> {
    const to = rec.previous
    const current = await this.opts.backend.current()
    if (to !== null && (current?.number !== to.number || current.path !== to.path)) {
      try {
        await this.opts.backend.rollback(to)
      } catch (err) {
        return await this.rollBack(rec, `${reason}; resetting the profile failed: ${(err as Error).message}`, null, this.opts.health)
      }
    }
    return await this.fail(rec, 'APPLY_INTERRUPTED', `${reason} before activation; nothing was activated`, false, true)
  }

  private async verifyAndFinish (rec: ApplyRecord, policy: HealthPolicy): Promise<ApplyOutcome> {
    rec = await this.advance(rec, 'verifying', {})
    const verdict = await verify(policy, { now: this.now, onProbe: this.probeReporter(rec, rec.switched, 'verifying') })
    if (!verdict.ok) {
      this.emitHealthFailed(rec, rec.switched, verdict.failed)
      return await this.rollBack(rec, `health check ${verdict.failed.check} failed: ${verdict.failed.output}`, verdict.failed, policy)
    }
    const generation = rec.switched as Generation
    const outcome: ApplyOutcome = { status: 'ok', id: rec.id, generation }
    rec = await this.advance(rec, 'ok', { outcome })
    this.emit(rec, { kind: 'apply-ok', generation })
    return outcome
  }

  private async rollBack (rec: ApplyRecord, reason: string, failedCheck: CheckFailure | null, policy: HealthPolicy): Promise<ApplyOutcome> {
    rec = await this.advance(rec, 'rolling-back', { reason })
    const to = rec.previous
    if (to === null) return await this.fail(rec, 'ROLLBACK_FAILED', `${reason}; no previous generation to roll back to`, true)
    try {
      await this.opts.backend.rollback(to)
      // Its own activation id: the forward activation's result must not stand in for this one.
      await this.opts.backend.activate(`${rec.id}.rollback`)
      const verdict = await verify(this.rollbackPolicy(policy), { now: this.now, onProbe: this.probeReporter(rec, to, 'rolling-back') })
      if (!verdict.ok) {
        this.emitHealthFailed(rec, to, verdict.failed)
        throw new NixosError('HEALTH_CHECK_FAILED', `generation ${to.number} is unhealthy after rollback: ${verdict.failed.check}: ${verdict.failed.output}`)
      }
    } catch (err) {
      return await this.fail(rec, 'ROLLBACK_FAILED', `${reason}; rollback to generation ${to.number} failed: ${(err as Error).message}`, true)
    }
    const outcome: ApplyOutcome = { status: 'rolled-back', id: rec.id, generation: to, reason, failedCheck }
    rec = await this.advance(rec, 'rolled-back', { outcome })
    this.emit(rec, { kind: 'rollback', from: rec.switched, to, reason })
    return outcome
  }

  private async fail (rec: ApplyRecord, code: NixosErrorCode, reason: string, rollbackAttempted: boolean, transient = false): Promise<ApplyOutcome> {
    const outcome: ApplyOutcome = { status: 'failed', id: rec.id, code, reason, ...(transient ? { transient } : {}) }
    rec = await this.advance(rec, 'failed', { reason, outcome })
    this.emit(rec, { kind: 'apply-failed', code, reason, rollbackAttempted })
    return outcome
  }

  /** The newest apply that ended ok and matches. */
  private async lastOk (match: (r: ApplyRecord) => boolean): Promise<ApplyRecord | null> {
    return (await this.records()).reverse().find((r) => r.phase === 'ok' && match(r)) ?? null
  }

  /** The journal's recent applies, oldest first by when they started (ids are the caller's). */
  private async records (): Promise<ApplyRecord[]> {
    return (await this.opts.journal.history(HISTORY_SCAN)).sort((a, b) => a.startedAt - b.startedAt)
  }

  /**
   * The old generation is re-verified on a short interval so a host is back quickly, and with at
   * least the default start period: it proved itself before, a slow restart is not a failure.
   */
  private rollbackPolicy (policy: HealthPolicy): HealthPolicy {
    const interval = this.opts.rollbackIntervalMs ?? 100
    return {
      agents: policy.agents,
      soakMs: this.opts.rollbackSoakMs ?? 0,
      checks: policy.checks.map(c => ({
        ...c,
        name: checkName(c),
        intervalMs: Math.min(c.intervalMs ?? interval, interval),
        startPeriodMs: Math.max(c.startPeriodMs ?? DEFAULT_START_PERIOD_MS, DEFAULT_START_PERIOD_MS)
      }))
    }
  }

  /** A hold lasts one phase: the next phase drops it unless it brings its own. */
  private async advance (rec: ApplyRecord, phase: ApplyPhase, patch: Partial<Pick<ApplyRecord, 'previous' | 'switched' | 'reason' | 'outcome' | 'hold'>>): Promise<ApplyRecord> {
    const next: ApplyRecord = { ...rec, hold: null, ...patch, phase, updatedAt: this.now() }
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

function stagedOutcome (rec: ApplyRecord): ApplyOutcome {
  return { status: 'staged', id: rec.id, generation: rec.switched as Generation, changes: [] }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

function errorCode (err: unknown): NixosErrorCode {
  return err instanceof NixosError ? err.code : 'NIX_COMMAND_FAILED'
}
