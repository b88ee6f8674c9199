// The apply/rollback engine: which apply runs (one at a time, under a caller's id), what a revert
// goes back to, a generation staged for the next boot and superseded or reverted before it, and
// what the journal says of past applies. An apply's phases are phases.ts; its events events.ts.
import { NixosError } from './errors.js'
import { validatePolicy, type HealthPolicy } from './health.js'
import { monotonicMs, type BootInfo } from './boot.js'
import { EngineEvents, type DeployEvent, type EngineProbe } from './events.js'
import { TERMINAL_PHASES, newApplyId, type ApplyHold, type ApplyRecord, type Journal } from './journal.js'
import { assertStorePath } from './nix.js'
import { ApplyPhases, stagedOutcome } from './phases.js'
import type { ApplyOutcome, Backend, Generation } from './types.js'

export type { ApplyOutcome, DeployEvent, EngineProbe }

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
  private readonly events: EngineEvents
  private readonly phases: ApplyPhases
  private busy = false

  constructor (opts: EngineOptions) {
    validatePolicy(opts.health)
    this.opts = opts
    this.now = opts.now ?? Date.now
    this.events = new EngineEvents(this.now, opts.onEvent, opts.onProbe)
    this.phases = new ApplyPhases({ ...opts, events: this.events, now: this.now })
  }

  async apply (req: ApplyRequest): Promise<ApplyOutcome> {
    assertStorePath(req.path)
    const policy = validatePolicy(req.health ?? this.opts.health)
    return await this.exclusive(async () => {
      if (req.supersede === true) await this.unstage(req.id ?? req.path)
      const rec = await this.begin(req.id, req.path, req.tag)
      return await this.pruneAfter(rec, await this.phases.applyFrom(rec, req.sources ?? [], policy))
    })
  }

  /**
   * Leaves `leaving` for the generation this engine recorded before it applied `leaving` (not
   * whatever the profile lists next to it: that may be a generation already rolled back from),
   * applied and verified like any other apply. A `leaving` only staged in this boot is unstaged.
   */
  async revert (req: RevertRequest): Promise<ApplyOutcome> {
    assertStorePath(req.leaving)
    return await this.exclusive(async () => {
      const staged = await this.stagedHere()
      if (staged?.target === req.leaving) return await this.revertStaged(staged, req)
      const current = await this.opts.backend.current()
      const to = current?.path === req.leaving ? await this.recordedBefore(current) : null
      const rec = await this.begin(req.id, to?.path ?? req.leaving, req.tag, to)
      if (to === null) {
        const why = current?.path === req.leaving ? 'no generation was recorded before it was applied' : `this host runs ${current?.path ?? 'nothing'}`
        return await this.phases.fail(rec, 'GENERATION_NOT_FOUND', `cannot leave ${req.leaving}: ${why}`, false)
      }
      return await this.pruneAfter(rec, await this.phases.applyFrom(rec, [], this.opts.health))
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
      return await this.phases.rollBack(reopened, reason, null, this.opts.health)
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

  /**
   * Whether the reboot command is to run for staged apply `id` now: once per boot. The request is
   * journalled with the boot id before the command runs, so a daemon restart in the same boot (the
   * command may be what stopped it) does not run it again, while a boot that still had the apply
   * staged could ask anew (recover() ends a staged apply at its first boot, so in practice it
   * runs once per staged generation).
   */
  async requestReboot (id: string): Promise<boolean> {
    const rec = await this.opts.journal.get(id)
    if (rec?.phase !== 'staged' || rec.hold == null) return false
    const boot = await this.bootId()
    if (rec.hold.rebootIn === boot) return false
    await this.opts.journal.write({ ...rec, hold: { ...rec.hold, rebootIn: boot }, updatedAt: this.now() })
    return true
  }

  /** The running boot's id (the journal binds holds to it). */
  async bootId (): Promise<string> {
    return await this.phases.bootId()
  }

  /** The store path of the running system, when the host has one. */
  async running (): Promise<string | null> {
    return await this.phases.running()
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
      if (deleted.length > 0) this.events.emit(rec, { kind: 'pruned', deleted })
    } catch (err) {
      this.events.emit(rec, { kind: 'prune-failed', reason: (err as Error).message })
    }
    return outcome
  }

  /**
   * The generation recorded before `generation` was applied. A revert's record stands for the
   * generation it brought back, so it is followed to that one's apply; the hops are bounded by
   * the journal read.
   */
  private async recordedBefore (generation: Generation): Promise<Generation | null> {
    const records = (await this.records()).reverse()
    let at: Generation | null = generation
    for (let hops = 0; at !== null && hops < records.length; hops++) {
      const g: Generation = at
      const applied = records.find((r) => r.phase === 'ok' && r.target === g.path && r.switched?.number === g.number)
      if (applied?.restores == null) return applied?.previous ?? null
      at = applied.restores
    }
    return null
  }

  /** Journals a new apply (a revert's with the generation it brings back). */
  private async begin (reqId: string | undefined, path: string, tag: string | undefined, restores?: Generation | null): Promise<ApplyRecord> {
    await this.requireIdle()
    const id = await this.freshId(reqId)
    const t = this.now()
    const rec: ApplyRecord = { v: 2, id, target: path, phase: 'started', previous: null, switched: null, startedAt: t, updatedAt: t, reason: null, tag: tag ?? null, outcome: null, reported: tag === undefined, ...(restores != null ? { restores } : {}) }
    await this.opts.journal.write(rec)
    this.events.emit(rec, { kind: 'apply-start', previous: await this.opts.backend.current() })
    return rec
  }

  /** A new apply's id: an id whose earlier run changed nothing (a transient failure) is run again. */
  private async freshId (reqId: string | undefined): Promise<string> {
    const id = reqId ?? newApplyId(this.now())
    const earlier = await this.opts.journal.get(id)
    if (earlier !== null && !(earlier.outcome?.status === 'failed' && earlier.outcome.transient === true)) {
      throw new NixosError('INVALID_CONFIG', `apply id ${id} was already used`)
    }
    return id
  }

  /** The apply staged in this boot, if any (one staged in an earlier boot is judged by recover() first). */
  private async stagedHere (): Promise<ApplyRecord | null> {
    const rec = await this.opts.journal.active()
    return rec?.phase === 'staged' && rec.hold?.bootId === await this.bootId() ? rec : null
  }

  /**
   * An apply that supersedes (the deploy agent's, for a newer release) replaces one staged in this
   * boot: the new apply records the generation the staged one went back to as its previous.
   */
  private async unstage (by: string): Promise<void> {
    const rec = await this.stagedHere()
    if (rec === null) return
    const ended = await this.unstaged(rec, `superseded by apply ${by} before the reboot: nothing was activated`)
    await this.opts.journal.write(ended)
    this.emitUnstaged(ended)
  }

  /**
   * A revert of a generation only staged (a halted release's): nothing of it ran, so unstaging it
   * is the whole revert, and it ends ok on the generation recorded before it, the one running.
   * The staged apply and the revert end in one journal batch: a crash before it leaves the apply
   * staged and the revert asked for again (unstaging twice is harmless); a crash after, both ended.
   */
  private async revertStaged (staged: ApplyRecord, req: RevertRequest): Promise<ApplyOutcome> {
    const to = staged.previous
    if (to === null) throw new NixosError('GENERATION_NOT_FOUND', `cannot leave ${req.leaving}: no generation was recorded before it was staged`)
    const id = await this.freshId(req.id)
    const ended = await this.unstaged(staged, `reverted by apply ${id} before the reboot: nothing was activated`)
    const t = this.now()
    const outcome: ApplyOutcome = { status: 'ok', id, generation: to }
    // `switched` stays null: the profile is back on a generation an earlier apply switched to, and
    // a later revert of that one must find that apply's record (recordedBefore), not this one.
    const rec: ApplyRecord = { v: 2, id, target: to.path, phase: 'ok', previous: staged.switched, switched: null, startedAt: t, updatedAt: t, reason: null, tag: req.tag ?? null, outcome, reported: req.tag === undefined }
    await this.opts.journal.write(ended, rec)
    this.emitUnstaged(ended)
    this.events.emit(rec, { kind: 'rollback', from: staged.switched, to, reason: ended.reason as string })
    return outcome
  }

  /**
   * Points the profile and the next boot back at the generation recorded before staged apply
   * `rec`, and returns its record ended, for the caller to write: a failure that changed nothing
   * (transient), already reported, since its caller moved on.
   */
  private async unstaged (rec: ApplyRecord, reason: string): Promise<ApplyRecord> {
    const to = rec.previous
    if (to !== null) {
      await this.opts.backend.rollback(to)
      await this.opts.backend.activate(`${rec.id}.unstage`, 'boot')
    }
    const outcome: ApplyOutcome = { status: 'failed', id: rec.id, code: 'APPLY_SUPERSEDED', reason, transient: true }
    return { ...rec, hold: null, phase: 'failed', reason, outcome, reported: true, updatedAt: this.now() }
  }

  private emitUnstaged (rec: ApplyRecord): void {
    this.events.emit(rec, { kind: 'apply-failed', code: 'APPLY_SUPERSEDED', reason: rec.reason as string, rollbackAttempted: false })
  }

  /**
   * Finishes the apply a crash interrupted (ApplyPhases.resume); null when there was nothing to
   * finish.
   */
  async recover (): Promise<ApplyOutcome | null> {
    return await this.exclusive(async () => {
      const rec = await this.opts.journal.active()
      return rec === null ? null : await this.phases.resume(rec)
    })
  }

  private async requireIdle (): Promise<void> {
    const pending = await this.opts.journal.active()
    if (pending?.phase === 'staged') throw new NixosError('APPLY_IN_PROGRESS', `apply ${pending.id} is staged for the next boot: it ends after a reboot`)
    if (pending !== null) throw new NixosError('APPLY_IN_PROGRESS', `apply ${pending.id} (${pending.phase}) is unfinished; run recover() first`)
  }

  /** The journal's recent applies, oldest first by when they started (ids are the caller's). */
  private async records (): Promise<ApplyRecord[]> {
    return (await this.opts.journal.history(HISTORY_SCAN)).sort((a, b) => a.startedAt - b.startedAt)
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
