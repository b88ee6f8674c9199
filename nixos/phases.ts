// One apply's way through its phases once it is journalled: fetch → record previous → switch →
// activate (or stage for the next boot) → verify during the soak → ok; on any failure, back to
// the exact recorded previous generation, re-activated and verified. Every phase is journalled
// before it is acted on, so resume() after a kill -9 knows what to finish, and nothing is
// reported `ok` that was not verified. The engine (engine.ts) owns the lock, the ids and which
// apply runs; this module moves one record through its phases.
import { NixosError, type NixosErrorCode } from './errors.js'
import { DEFAULT_START_PERIOD_MS, checkName, verify, type CheckFailure, type HealthPolicy } from './health.js'
import { bootChanges, type BootInfo } from './boot.js'
import type { EngineEvents } from './events.js'
import type { ApplyHold, ApplyPhase, ApplyRecord, Journal } from './journal.js'
import type { ApplyOutcome, Backend, Generation } from './types.js'

export interface PhaseComponents {
  backend: Backend
  journal: Journal
  /** What a crash interrupted is verified with. */
  health: HealthPolicy
  events: EngineEvents
  now: () => number
  /** Probe interval while verifying the previous generation after a rollback; default 100 ms. */
  rollbackIntervalMs?: number
  /** Soak after a rollback; default 0: the old generation already proved itself. */
  rollbackSoakMs?: number
  boot?: BootInfo
}

export class ApplyPhases {
  constructor (private readonly c: PhaseComponents) {}

  /** The running boot's id (the journal binds holds to it). */
  async bootId (): Promise<string> {
    if (this.c.boot === undefined) throw new NixosError('INVALID_CONFIG', 'this engine knows no boot id')
    return await this.c.boot.id()
  }

  /** The store path of the running system, when the host has one. */
  async running (): Promise<string | null> {
    return await this.c.boot?.running() ?? null
  }

  /** From a journalled start to the apply's outcome. */
  async applyFrom (rec: ApplyRecord, sources: string[], policy: HealthPolicy): Promise<ApplyOutcome> {
    const { backend } = this.c
    try {
      await backend.fetch(rec.target, sources)
    } catch (err) {
      // Nothing was switched: the running system is untouched.
      return await this.fail(rec, errorCode(err), `fetch failed: ${(err as Error).message}`, false, true)
    }
    rec = await this.advance(rec, 'previous-recorded', { previous: await backend.current() })
    try {
      rec = await this.advance(rec, 'switched', { switched: await backend.switch(rec.target) })
    } catch (err) {
      return await this.rollBack(rec, `switch failed: ${(err as Error).message}`, null, policy)
    }
    this.c.events.emit(rec, { kind: 'switched', generation: rec.switched as Generation })
    const changes = await this.bootChangesOf(rec)
    if (changes.length > 0) return await this.stage(await this.advance(rec, 'activating', {}), changes, policy)
    return await this.activateAndVerify(await this.advance(rec, 'activating', {}), policy)
  }

  /**
   * Finishes the apply a crash interrupted: an activation started is waited for (it runs
   * detached, so it may have outlived the crash, or caused it) and verified; a verification in
   * progress is run again in full; a switch whose activation never started is undone without
   * activating anything (nothing ran: a transient failure); an interrupted rollback is redone.
   */
  async resume (rec: ApplyRecord): Promise<ApplyOutcome> {
    const policy = this.c.health
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
  }

  /** What of the running system (or the recorded previous one) only a reboot would change. */
  private async bootChangesOf (rec: ApplyRecord): Promise<string[]> {
    if (this.c.boot === undefined) return []
    const from = await this.c.boot.running() ?? rec.previous?.path
    return from === undefined ? [] : await bootChanges(from, rec.target)
  }

  /**
   * Makes the generation the next boot's without activating it now. A crash while this runs
   * recovers as an interrupted activation (the activation is waited for under the same id).
   */
  private async stage (rec: ApplyRecord, changes: string[], policy: HealthPolicy): Promise<ApplyOutcome> {
    try {
      await this.c.backend.activate(rec.id, 'boot')
    } catch (err) {
      return await this.rollBack(rec, (err as Error).message, null, policy)
    }
    rec = await this.advance(rec, 'staged', { hold: { kind: 'reboot', bootId: await this.bootId(), windowMs: 0, sinceMs: 0 } })
    const generation = rec.switched as Generation
    this.c.events.emit(rec, { kind: 'staged', generation, changes })
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
      await this.c.backend.activate(rec.id)
    } catch (err) {
      return await this.rollBack(rec, (err as Error).message, null, policy)
    }
    return await this.verifyAndFinish(rec, policy)
  }

  /** Points the profile back at the recorded generation; the running system never changed. */
  private async undoSwitch (rec: ApplyRecord, reason: string): Promise<ApplyOutcome> {
    const to = rec.previous
    const current = await this.c.backend.current()
    if (to !== null && (current?.number !== to.number || current.path !== to.path)) {
      try {
        await this.c.backend.rollback(to)
      } catch (err) {
        return await this.rollBack(rec, `${reason}; resetting the profile failed: ${(err as Error).message}`, null, this.c.health)
      }
    }
    return await this.fail(rec, 'APPLY_INTERRUPTED', `${reason} before activation; nothing was activated`, false, true)
  }

  private async verifyAndFinish (rec: ApplyRecord, policy: HealthPolicy): Promise<ApplyOutcome> {
    const { events, now } = this.c
    rec = await this.advance(rec, 'verifying', {})
    const verdict = await verify(policy, { now, onProbe: events.probeReporter(rec, rec.switched, 'verifying') })
    if (!verdict.ok) {
      events.healthFailed(rec, rec.switched, verdict.failed)
      return await this.rollBack(rec, `health check ${verdict.failed.check} failed: ${verdict.failed.output}`, verdict.failed, policy)
    }
    const generation = rec.switched as Generation
    const outcome: ApplyOutcome = { status: 'ok', id: rec.id, generation }
    rec = await this.advance(rec, 'ok', { outcome })
    events.emit(rec, { kind: 'apply-ok', generation })
    return outcome
  }

  /** Back to the exact generation recorded before `rec`, re-activated and verified. */
  async rollBack (rec: ApplyRecord, reason: string, failedCheck: CheckFailure | null, policy: HealthPolicy): Promise<ApplyOutcome> {
    const { backend, events, now } = this.c
    rec = await this.advance(rec, 'rolling-back', { reason })
    const to = rec.previous
    if (to === null) return await this.fail(rec, 'ROLLBACK_FAILED', `${reason}; no previous generation to roll back to`, true)
    try {
      await backend.rollback(to)
      // Its own activation id: the forward activation's result must not stand in for this one.
      await backend.activate(`${rec.id}.rollback`)
      const verdict = await verify(this.rollbackPolicy(policy), { now, onProbe: events.probeReporter(rec, to, 'rolling-back') })
      if (!verdict.ok) {
        events.healthFailed(rec, to, verdict.failed)
        throw new NixosError('HEALTH_CHECK_FAILED', `generation ${to.number} is unhealthy after rollback: ${verdict.failed.check}: ${verdict.failed.output}`)
      }
    } catch (err) {
      return await this.fail(rec, 'ROLLBACK_FAILED', `${reason}; rollback to generation ${to.number} failed: ${(err as Error).message}`, true)
    }
    const outcome: ApplyOutcome = { status: 'rolled-back', id: rec.id, generation: to, reason, failedCheck }
    rec = await this.advance(rec, 'rolled-back', { outcome })
    events.emit(rec, { kind: 'rollback', from: rec.switched, to, reason })
    return outcome
  }

  async fail (rec: ApplyRecord, code: NixosErrorCode, reason: string, rollbackAttempted: boolean, transient = false): Promise<ApplyOutcome> {
    const outcome: ApplyOutcome = { status: 'failed', id: rec.id, code, reason, ...(transient ? { transient } : {}) }
    rec = await this.advance(rec, 'failed', { reason, outcome })
    this.c.events.emit(rec, { kind: 'apply-failed', code, reason, rollbackAttempted })
    return outcome
  }

  /**
   * The old generation is re-verified on a short interval so a host is back quickly, and with at
   * least the default start period: it proved itself before, a slow restart is not a failure.
   */
  private rollbackPolicy (policy: HealthPolicy): HealthPolicy {
    const interval = this.c.rollbackIntervalMs ?? 100
    return {
      agents: policy.agents,
      soakMs: this.c.rollbackSoakMs ?? 0,
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
    const next: ApplyRecord = { ...rec, hold: null, ...patch, phase, updatedAt: this.c.now() }
    await this.c.journal.write(next)
    return next
  }
}

/** A staged apply's outcome until its boot: not yet an outcome. */
export function stagedOutcome (rec: ApplyRecord): ApplyOutcome {
  return { status: 'staged', id: rec.id, generation: rec.switched as Generation, changes: [] }
}

function errorCode (err: unknown): NixosErrorCode {
  return err instanceof NixosError ? err.code : 'NIX_COMMAND_FAILED'
}
