// The deploy agent: the bridge between the replicated log and this host's executor. It folds
// rollout entries into the pure rollout state, asks `decide` what this host should do, has the
// executor run it when the answer is `apply` (or `revert`), appends the entries the decisions
// ask for (`attest`), and writes every outcome back into its own feed, exactly once per attempt,
// for the rest of the fleet to decide on. No coordinator anywhere.
import type { Logger } from 'pino'
import { newApplyId, type ApplyOutcome } from '../../nixos/index.js'
import type { AuditStore, StoredEntry } from '../../protocols/audit/index.js'
import { applyEntry, decide, effectiveRelease, emptyState, flagged, planOf, foldsIntoRollout, releaseStatus, soakWatchOf, type Decision, type SoakWatch, type ReleaseBody, type ReleaseStatus, type RolloutState } from '../../protocols/rollout/index.js'
import { CatchUpGate, type CatchUp, type Peers } from './catch-up.js'
import { ConfirmFlow, type ConfirmComponents } from './confirm.js'
import type { Executor, Intent, Unreported } from './executor.js'
import { RolloutMembership, type MembershipSource } from './membership.js'
import { noteCurrent, type DeployMetrics } from './metrics.js'
import { controlRelease, publishRelease, rollbackRelease, type PublishParams, type ReleaseDesk } from './releases.js'
import { RecentApply } from './recent.js'
import { RETRY, retryAfter, type Pending, type RetryPolicy } from './retry.js'
import { Rollbacks } from './rollbacks.js'
import { attestFields, decisionChange, deployStatus, releaseList, type DeployStatus } from './status.js'
import { OwnAttempts, reportOutcome } from './report.js'
import { SoakWatcher } from './soak.js'
import { LocalTimers } from './timers.js'
import { sleepUnlessAborted } from '../sleep.js'

export type { CatchUp, Peers } from './catch-up.js'
export type { PublishParams } from './releases.js'
export type { RetryPolicy } from './retry.js'
export type { DeployStatus } from './status.js'

/** Re-evaluates at least this often, so a peer that goes quiet or a basis that arrives is noticed. */
const TICK_MS = 1_000
/**
 * How long a host that knows other members waits, after it starts or comes back from losing
 * every peer, to catch up with one of them before it decides on the log it has.
 */
const CATCH_UP_GRACE_MS = 15_000
/** Decisions that only append an entry (`attest`), in a row, before the agent yields. */
const MAX_ATTESTS = 64

export interface DeployAgentComponents {
  self: string
  store: Pick<AuditStore, 'log' | 'on' | 'off' | 'append' | 'get'>
  catchUp: CatchUp
  /** the connected peers: losing every member peer restarts the catch-up wait */
  peers: Peers
  membership: MembershipSource
  executor: Executor
  log: Pick<Logger, 'info' | 'warn' | 'error'>
  metrics?: DeployMetrics
  /** confirm-or-revert and reboots into staged generations; absent: neither (the executor must know boots too) */
  confirm?: ConfirmComponents
}

export interface DeployAgentOptions {
  /** default TICK_MS */
  tickMs?: number
  /** default CATCH_UP_GRACE_MS */
  catchUpGraceMs?: number
  /** default RETRY */
  retry?: Partial<RetryPolicy>
}

export class DeployAgent {
  /** the rollout fold of this host's log; filled in place, never replaced */
  readonly state: RolloutState = emptyState()
  /** the membership facts the pure decisions read */
  readonly view: RolloutMembership
  private readonly self: string
  private readonly store: DeployAgentComponents['store']
  private readonly catchUp: CatchUp
  private readonly executor: Executor
  private readonly log: DeployAgentComponents['log']
  private readonly metrics: DeployMetrics | undefined
  private readonly tickMs: number
  private readonly retry: RetryPolicy
  private readonly gate: CatchUpGate
  private readonly own: OwnAttempts
  private readonly timers: LocalTimers
  private readonly soak: SoakWatcher
  private running: Promise<void> | undefined
  private again = false
  private tick?: NodeJS.Timeout
  private unwatch?: () => void
  private intent: Intent | null = null
  private lastDecision: Decision | null = null
  /** tries to run before anything new is decided, oldest first */
  private readonly pending: Pending[] = []
  /** soaks that failed and escalations: rolled back by the next evaluation, which owns the executor */
  private readonly rollbacks: Rollbacks
  /** applies that ended ok and wait for a member to hold their outcome, oldest first */
  private readonly confirms: Array<Unreported & { tryNo?: number }> = []
  /** confirm-or-revert and staged boots: with an executor that knows boots */
  private readonly confirm: ConfirmFlow | undefined
  /** the apply-ok a crash-looping agent may fail (node/agents) */
  private readonly recent: RecentApply
  /** nothing is decided before start() has folded the whole log and settled the journal */
  private started = false
  private stopped = false
  private readonly stopping = new AbortController()

  constructor (c: DeployAgentComponents, opts: DeployAgentOptions = {}) {
    this.self = c.self
    this.store = c.store
    this.catchUp = c.catchUp
    this.executor = c.executor
    this.log = c.log
    this.metrics = c.metrics
    this.view = new RolloutMembership(c.membership)
    this.tickMs = opts.tickMs ?? TICK_MS
    this.retry = { ...RETRY, ...opts.retry }
    this.own = new OwnAttempts(c.self)
    this.recent = new RecentApply(c.self, this.own)
    this.rollbacks = new Rollbacks({
      executor: c.executor,
      own: this.own,
      retry: this.retry,
      log: c.log,
      settle: async (u) => { await this.settle(u, this.retry.tries); await noteCurrent(this.metrics, this.executor) },
      applying: (intent) => { this.intent = intent },
      wake: () => { this.schedule() }
    })
    const boots = c.executor.boots
    this.confirm = boots !== undefined && c.confirm !== undefined
      ? new ConfirmFlow(c.confirm, {
        self: c.self,
        boots,
        own: this.own,
        store: c.store,
        append: async (kind, body) => { await this.append(kind, body) },
        release: (id) => effectiveRelease(this.state, this.view, id)?.body as { confirmWindowMs?: number, reboot?: boolean } | undefined,
        members: () => this.view.members(),
        log: c.log,
        signal: this.stopping.signal
      })
      : undefined
    this.gate = new CatchUpGate({ self: c.self, catchUp: c.catchUp, peers: c.peers, members: () => this.view.members(), log: c.log, graceMs: opts.catchUpGraceMs ?? CATCH_UP_GRACE_MS })
    this.timers = new LocalTimers(() => { this.schedule() })
    this.soak = new SoakWatcher({
      watchHealth: async (ms, signal) => await this.executor.watchHealth(ms, signal),
      soaked: async (w) => { await this.attestSoaked(w) },
      failed: (watch, check, output) => {
        this.log.warn({ release: watch.release, attempt: watch.attempt, check }, 'deploy: health failed during the gate soak: rolling back')
        this.metrics?.healthFailed(check)
        this.rollbacks.fail(watch, `health check ${check} failed during the gate soak: ${output}`)
      },
      onError: (err, w) => { this.log.error({ err, release: w.release }, 'deploy: gate soak watch failed') },
      log: c.log
    })
  }

  async start (): Promise<void> {
    // Subscribed before the scan so that no entry slips between the two. An entry both deliver
    // is filed once: applyEntry keeps what it already holds (see rollout's state.ts).
    this.store.on('entry', this.onEntry)
    this.unwatch = this.view.watch(() => { this.schedule() })
    this.catchUp.on('caught-up', this.onCaughtUp)
    for await (const s of this.store.log()) {
      this.fold(s)
      this.recent.note(s.entry)
    }
    this.gate.start()
    this.recent.resume(await this.executor.current().catch(() => null))
    await this.settleJournal()
    await noteCurrent(this.metrics, this.executor)
    this.tick = setInterval(() => { this.schedule() }, this.tickMs)
    this.tick.unref()
    this.started = true
    this.schedule()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    this.soak.stop()
    this.timers.stop()
    clearInterval(this.tick)
    this.rollbacks.stop()
    this.store.off('entry', this.onEntry)
    this.unwatch?.()
    this.catchUp.off('caught-up', this.onCaughtUp)
    await this.running
  }

  private fold (s: StoredEntry): void {
    this.own.note(s.entry)
    if (foldsIntoRollout(s.entry.kind)) applyEntry(this.state, s.entry)
  }

  private readonly onEntry = (s: StoredEntry): void => {
    this.fold(s)
    if (foldsIntoRollout(s.entry.kind)) this.schedule()
  }

  private readonly onCaughtUp = (): void => { this.schedule() }

  /** Appends one of this host's entries and folds it at once, so the next decision sees it. */
  private async append (kind: string, body: object): Promise<void> {
    this.fold(await this.store.append(kind, body))
  }

  /**
   * After a restart: every attempt the journal has not seen reported is written now (or only
   * marked reported when its entry is already in this host's feed), a transient failure is
   * tried again, and an attempt whose apply-start is logged but that the executor never began
   * (killed in between) is tried again too. So every attempt ends with exactly one outcome.
   */
  private async settleJournal (): Promise<void> {
    const journal = await this.executor.unreported()
    for (const u of journal) await this.settle(u, 1)
    const inJournal = new Set(journal.map((u) => u.intent.applyId))
    for (const [release, o] of this.state.outcomes) {
      const latest = o.latest.get(this.self)
      const attempt = (latest?.body as { attempt?: unknown } | undefined)?.attempt
      if (latest?.kind !== 'apply-start' || typeof attempt !== 'string' || inJournal.has(attempt)) continue
      const path = (latest.body as { path: string }).path
      this.log.warn({ release, attempt }, 'deploy: an apply was logged as started but never began (restart): trying it again')
      this.pending.push({ intent: { applyId: attempt, release, path, revert: false }, sources: this.sourcesOf(release), tryNo: 2, afterMs: 0, inJournal: false })
    }
  }

  /** Decides what to log for one journal outcome: a retry while tries remain, else the outcome itself. */
  private async settle (u: Unreported, tryNo: number, confirmed = false): Promise<void> {
    const attempt = u.intent.applyId
    const afterMs = retryAfter(this.retry, u.intent, u.outcome, tryNo)
    if (afterMs !== undefined) {
      this.log.warn({ release: u.intent.release, attempt, try: tryNo, retryInMs: afterMs, reason: (u.outcome as { reason: string }).reason }, 'deploy: transient apply failure: trying again')
      // Not reported yet: a restart during the backoff finds the outcome in the journal and tries again.
      this.pending.push({ intent: u.intent, sources: this.sourcesOf(u.intent.release), tryNo: tryNo + 1, afterMs, inJournal: true })
      return
    }
    // staged for the next boot: unreported until the boot brings its outcome (an executor that stages knows boots)
    if (u.outcome.status === 'staged') { await this.confirm?.staged(u, u.outcome.changes); return }
    if (!u.intent.revert && u.outcome.status === 'ok' && !confirmed && !this.own.has('apply-ok', attempt) && (this.confirm?.windowOf(u.intent.release) ?? 0) > 0) {
      // applied, not yet confirmed: the next evaluation waits for a member to hold it
      this.confirms.push(u)
      this.schedule()
      return
    }
    if (await reportOutcome(this.store, this.own, u.intent, u.outcome)) {
      this.log.info({ release: u.intent.release, attempt, outcome: u.outcome.status }, 'deploy: outcome written')
    }
    if (!u.intent.revert && u.outcome.status === 'ok') this.okWritten(u.intent)
    await this.executor.reported(u.intent.applyId)
  }

  /** Its apply-ok is in the log: the gate soak counts from now. */
  private okWritten (intent: Intent): void {
    this.soak.started(intent.applyId)
    this.recent.written({ release: intent.release, path: intent.path, attempt: intent.applyId })
  }

  /** Waits for a member to hold the attempt's outcome: confirmed, it is written; not, the generation is rolled back. */
  private async confirmOrRevert (u: Unreported & { tryNo?: number }): Promise<void> {
    const verdict = await (this.confirm as ConfirmFlow).confirm(u)
    if (verdict === 'stopped') return
    const ended = verdict === 'confirmed' ? 'confirmed' : await this.rollbacks.attempt(u.intent, verdict.rollback)
    // a newer generation replaced it before it could be rolled back: it ended ok, and that stands
    if (ended === 'confirmed' || ended === 'superseded') await this.settle({ intent: u.intent, outcome: u.outcome }, this.retry.tries, true)
    else if (ended === 'refused') {
      // still unreported in the journal: a restart meanwhile asks for its confirmation again
      const tryNo = u.tryNo ?? 1
      this.rollbacks.later(tryNo, () => { this.confirms.push({ ...u, tryNo: tryNo + 1 }) }, () => {})
    }
  }

  private sourcesOf (release: string): string[] {
    const body = effectiveRelease(this.state, this.view, release)?.body
    return body === undefined ? [] : planOf(this.state, body, this.view)?.targetOf.get(this.self)?.sources ?? []
  }

  /** Runs one evaluation at a time; a request during one runs again right after it. */
  private schedule (): void {
    if (this.stopped || !this.started) return
    if (this.running !== undefined) { this.again = true; return }
    this.running = this.evaluate().catch((err: Error) => {
      this.log.error({ err }, 'deploy: evaluation failed')
    }).finally(() => {
      this.running = undefined
      if (this.again) { this.again = false; this.schedule() }
    })
  }

  private async evaluate (): Promise<void> {
    if (this.rollbacks.queued()) { this.again = true; await this.rollbacks.runNext(); return }
    const next = this.pending.shift()
    if (next !== undefined) { await this.tryAgain(next); this.again = true; return }
    const confirm = this.confirms.shift()
    if (confirm !== undefined) { await this.confirmOrRevert(confirm); this.again = true; return }
    if (!this.view.adopted() || !this.gate.ready()) return
    let d = this.decide()
    for (let i = 0; d.action === 'attest' && i < MAX_ATTESTS; i++) {
      this.log.info({ release: d.release, kind: d.kind, ...attestFields(d) }, d.kind === 'release-seen' ? 'deploy: recording when this host first held the release' : 'deploy: attesting a local timeout')
      await this.append(d.kind, d.body)
      d = this.decide()
    }
    if (d.action === 'attest') { this.again = true; return }
    this.timers.follow(d.action === 'wait' || d.action === 'none' ? d.timer : undefined)
    const change = decisionChange(this.lastDecision, d)
    if (change !== undefined) this.log.info(change, 'deploy: decision')
    this.lastDecision = d
    if (d.action !== 'apply' && d.action !== 'revert') this.soak.follow(soakWatchOf(this.state, this.view, this.self))
    if (d.action === 'apply') {
      this.metrics?.generation('desired', d.path, d.release)
      const intent: Intent = { applyId: newApplyId(Date.now()), release: d.release, path: d.path, revert: false }
      this.soak.stop()
      await this.append('apply-start', { release: d.release, path: d.path, wave: d.wave, attempt: intent.applyId })
      await this.run(intent, d.sources, 1)
    } else if (d.action === 'revert') {
      this.soak.stop()
      await this.run({ applyId: newApplyId(Date.now()), release: d.release, path: d.path, revert: true }, [], 1)
    }
  }

  private decide (): Decision {
    return decide(this.state, this.view, this.self, Date.now(), { expired: this.timers.expired() })
  }

  /** The next try of an attempt, after its backoff; a stop during the wait leaves the journal's outcome for the restart. */
  private async tryAgain (p: Pending): Promise<void> {
    if (p.afterMs > 0 && (this.stopped || !await sleepUnlessAborted(p.afterMs, this.stopping.signal))) return
    if (p.inJournal) await this.executor.reported(p.intent.applyId)
    await this.run(p.intent, p.sources, p.tryNo)
  }

  /** Runs one try and settles its outcome: written, or another try queued. */
  private async run (intent: Intent, sources: string[], tryNo: number): Promise<void> {
    this.intent = intent
    const started = Date.now()
    let outcome: ApplyOutcome
    try {
      outcome = await this.executor.run(intent, sources)
    } catch (err) {
      // Refused before the engine began (its lock is held): nothing was activated.
      outcome = { status: 'failed', id: intent.applyId, code: (err as { code?: 'APPLY_IN_PROGRESS' }).code ?? 'APPLY_IN_PROGRESS', reason: (err as Error).message, transient: true } as ApplyOutcome
    }
    this.metrics?.applied(outcome.status, (Date.now() - started) / 1000)
    this.intent = null
    if (!this.stopped) await this.settle({ intent, outcome }, tryNo)
    await noteCurrent(this.metrics, this.executor)
  }

  private async attestSoaked (w: SoakWatch): Promise<void> {
    if (this.own.has('soaked', w.attempt)) return
    await this.append('soaked', { release: w.release, path: w.path, attempt: w.attempt, soakMs: w.soakMs })
    this.log.info({ release: w.release, attempt: w.attempt, soakMs: w.soakMs }, 'deploy: soaked: attested in the log')
  }

  /**
   * An agent's escalation (node/agents): this host's newest apply-ok (recent.ts), if it came
   * within `withinMs` and nothing has failed that attempt since.
   */
  recentApply (withinMs: number): { release: string, attempt: string } | undefined {
    return this.recent.within(withinMs)
  }

  /**
   * Fails that apply as a failed soak does: its generation is rolled back and apply-failed with
   * `reason` is written, so it counts against the release's failure budget. True once rolled back;
   * while the engine refuses (busy, a newer apply staged) it is tried again, nothing written;
   * once a newer generation replaced its own, false, nothing written.
   */
  async failApply (attempt: string, reason: string): Promise<boolean> {
    const watch = this.recent.of(attempt)
    if (watch === undefined || this.stopped) return false
    this.log.warn({ release: watch.release, attempt, reason }, 'deploy: an agent crash-loops after this apply: rolling back')
    return await new Promise<boolean>((resolve) => { this.rollbacks.fail(watch, reason, resolve) })
  }

  /**
   * Whether an evaluation runs now: an apply or its outcome may be between the profile and the
   * log, so what the host runs and what its log says may differ for a moment (node/drift/).
   */
  busy (): boolean {
    return this.running !== undefined
  }

  async status (): Promise<DeployStatus> {
    return deployStatus(this.state, this.view, this.self, { current: await this.executor.current().catch(() => null), applying: this.intent, decision: this.lastDecision })
  }

  /** Every release this host knows, newest first, with its fleet-wide status. */
  releases (online: (peer: string) => boolean): ReleaseStatus[] {
    return releaseList(this.state, this.view, online)
  }

  release (id: string, online: (peer: string) => boolean): ReleaseStatus | undefined { return releaseStatus(this.state, this.view, id, online) }
  flags (): ReturnType<typeof flagged> { return flagged(this.state, this.view) }

  /** What the release and hold commands (releases.ts) read and sign into this host's feed. */
  desk (): ReleaseDesk {
    return { self: this.self, state: this.state, view: this.view, append: async (kind, body) => { await this.append(kind, body) }, log: this.log }
  }

  async publish (p: PublishParams): Promise<ReleaseBody> { return await publishRelease(this.desk(), p) }
  async rollbackRelease (id: string): Promise<ReleaseBody> { return await rollbackRelease(this.desk(), id) }
  async control (release: string, action: 'pause' | 'resume' | 'abort'): Promise<void> { await controlRelease(this.desk(), release, action) }
}
