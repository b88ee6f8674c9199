// The deploy agent: the bridge between the replicated log and this host's executor. It folds
// rollout entries into the pure rollout state, asks `decide` what this host should do, has the
// executor run it when the answer is `apply` (or `revert`), and writes every outcome back into
// its own feed for the rest of the fleet to decide on. No coordinator anywhere.
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { newApplyId, type ApplyOutcome, type Generation } from '../../nixos/index.js'
import type { AuditStore, StoredEntry } from '../../protocols/audit/index.js'
import { applyEntry, decide, effectiveRelease, emptyState, flagged, planOf, isRolloutKind, releaseStatus, soakWatchOf, type Decision, type SoakWatch, type ReleaseBody, type ReleaseStatus, type RolloutState } from '../../protocols/rollout/index.js'
import { NodeError } from '../errors.js'
import type { Executor, Intent } from './executor.js'
import { RolloutMembership, type MembershipSource } from './membership.js'
import { noteCurrent, type DeployMetrics } from './metrics.js'
import { reportHealthFailure, reportOutcome } from './report.js'

/** Re-evaluates at least this often, so a soak that ends or a peer that goes quiet is noticed. */
const TICK_MS = 1_000
/**
 * How long a host that knows other members waits, after it starts, to catch up with one of them
 * before it decides on the log it has: deciding on a half-pulled log could apply a release that a
 * newer, not yet pulled one supersedes. A host that reaches nobody still acts after this.
 */
const CATCH_UP_GRACE_MS = 15_000

export interface DeployStatus {
  enabled: boolean
  current: Generation | null
  desired: { release: string, path: string } | null
  applying: Intent | null
  decision: Decision | null
}

export interface PublishParams {
  targets: ReleaseBody['targets']
  waves: ReleaseBody['waves']
  maxFailures: number
  autoRevert?: boolean
}

/** What the agent needs of log replication: whether this host caught up since it started. */
export interface CatchUp {
  caughtUp (): string | undefined
  on (event: 'caught-up', listener: (peer: string) => void): unknown
  off (event: 'caught-up', listener: (peer: string) => void): unknown
}

export interface DeployAgentComponents {
  self: string
  store: Pick<AuditStore, 'log' | 'on' | 'off' | 'append'>
  catchUp: CatchUp
  membership: MembershipSource
  executor: Executor
  log: Pick<Logger, 'info' | 'warn' | 'error'>
  metrics?: DeployMetrics
}

export interface DeployAgentOptions {
  /** default TICK_MS */
  tickMs?: number
  /** default CATCH_UP_GRACE_MS */
  catchUpGraceMs?: number
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
  private readonly catchUpGraceMs: number
  private running: Promise<void> | undefined
  private again = false
  private timer?: NodeJS.Timeout
  private unwatch?: () => void
  private intent: Intent | null = null
  private lastDecision: Decision | null = null
  /** nothing is decided before start() has folded the whole log and recovered */
  private started = false
  private stopped = false
  private startedAt = 0
  /** the gate soak being watched, see watchSoak() */
  private soak: { watch: SoakWatch, abort: AbortController } | undefined
  private waitingLogged = false

  constructor (c: DeployAgentComponents, opts: DeployAgentOptions = {}) {
    this.self = c.self
    this.store = c.store
    this.catchUp = c.catchUp
    this.executor = c.executor
    this.log = c.log
    this.metrics = c.metrics
    this.view = new RolloutMembership(c.membership)
    this.tickMs = opts.tickMs ?? TICK_MS
    this.catchUpGraceMs = opts.catchUpGraceMs ?? CATCH_UP_GRACE_MS
  }

  async start (): Promise<void> {
    // Subscribed before the scan so that no entry slips between the two. An entry both delivers
    // is filed once: applyEntry keeps what it already holds as it is (see rollout's state.ts).
    this.store.on('entry', this.onEntry)
    this.unwatch = this.view.watch(() => { this.schedule() })
    this.catchUp.on('caught-up', this.onCaughtUp)
    for await (const s of this.store.log()) {
      if (isRolloutKind(s.entry.kind)) applyEntry(this.state, s.entry)
    }
    this.startedAt = Date.now()
    // A crash mid-apply: the executor finishes or rolls it back before anything new.
    const recovered = await this.executor.recover()
    if (recovered !== null) {
      this.log.warn({ release: recovered.intent.release, outcome: recovered.outcome.status }, 'deploy: finished an apply interrupted by a restart')
      await reportOutcome(this.store, recovered.intent, recovered.outcome)
    }
    await noteCurrent(this.metrics, this.executor)
    this.timer = setInterval(() => { this.schedule() }, this.tickMs)
    this.timer.unref()
    this.started = true
    this.schedule()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.soak?.abort.abort()
    clearInterval(this.timer)
    this.store.off('entry', this.onEntry)
    this.unwatch?.()
    this.catchUp.off('caught-up', this.onCaughtUp)
    await this.running
  }

  private readonly onEntry = (s: StoredEntry): void => {
    if (!isRolloutKind(s.entry.kind)) return
    applyEntry(this.state, s.entry)
    this.schedule()
  }

  private readonly onCaughtUp = (): void => { this.schedule() }

  /** Whether the log is complete enough to act on (see CATCH_UP_GRACE_MS). */
  private caughtUp (): boolean {
    if (this.catchUp.caughtUp() !== undefined || Date.now() - this.startedAt >= this.catchUpGraceMs) return true
    const others = this.view.members().some((p) => p !== this.self)
    if (others && !this.waitingLogged) {
      this.waitingLogged = true
      this.log.info('deploy: catching up with the mesh before deciding')
    }
    return !others
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
    if (!this.view.adopted() || !this.caughtUp()) return
    const d = decide(this.state, this.view, this.self, Date.now())
    const reasonOf = (x: Decision | null): string | undefined => x !== null && 'reason' in x ? x.reason : undefined
    if (d.action !== this.lastDecision?.action || reasonOf(d) !== reasonOf(this.lastDecision) || d.release !== this.lastDecision?.release) {
      this.log.info({ release: d.release, action: d.action, reason: reasonOf(d), wave: 'wave' in d ? d.wave : undefined }, 'deploy: decision')
    }
    this.lastDecision = d
    if (d.action !== 'apply' && d.action !== 'revert') this.watchSoak()
    if (d.action === 'apply') {
      this.metrics?.generation('desired', d.path, d.release)
      await this.run({ applyId: newApplyId(Date.now()), release: d.release, path: d.path, revert: false }, d.sources, d.wave)
    } else if (d.action === 'revert') {
      const before = await this.executor.generationBefore(d.path)
      if (before === null) {
        this.log.error({ release: d.release, path: d.path }, 'deploy: cannot revert: no generation before the release on this host')
        return
      }
      this.metrics?.generation('desired', before.path, d.release)
      await this.run({ applyId: newApplyId(Date.now()), release: d.release, path: before.path, revert: true }, [], -1, d.path)
    }
  }

  /**
   * Keeps probing this host's health through its wave's gate soak after apply-ok: an apply-ok
   * alone says the generation was healthy once, the gate wants it to stay so. A failure is
   * written as a `health` entry, which removes the host from the gate's healthy count on every
   * host. Restarted after a crash by the next evaluation, since the watch is derived from the log.
   */
  private watchSoak (): void {
    const watch = soakWatchOf(this.state, this.view, this.self, Date.now())
    if (watch === undefined || (this.soak?.watch.release === watch.release && this.soak.watch.until === watch.until)) return
    this.soak?.abort.abort()
    const abort = new AbortController()
    const soak = { watch, abort }
    this.soak = soak
    this.log.info({ release: watch.release, until: watch.until }, 'deploy: watching health through the gate soak')
    void this.executor.watchHealth(Math.max(0, watch.until - Date.now()), abort.signal)
      .then(async (verdict) => {
        if (verdict.ok || abort.signal.aborted) return
        this.log.warn({ release: watch.release, check: verdict.failed.check }, 'deploy: health failed during the gate soak')
        await reportHealthFailure(this.store, this.metrics, watch.release, watch.path, verdict.failed.check, verdict.failed.output)
      })
      .catch((err: Error) => { if (!abort.signal.aborted) this.log.error({ err, release: watch.release }, 'deploy: gate soak watch failed') })
      .finally(() => { if (this.soak === soak) this.soak = undefined })
  }

  private async run (intent: Intent, sources: string[], wave: number, leaving?: string): Promise<void> {
    // A new apply replaces whatever generation was soaking.
    this.soak?.abort.abort()
    this.soak = undefined
    this.intent = intent
    if (!intent.revert) await this.store.append('apply-start', { release: intent.release, path: intent.path, wave })
    const started = Date.now()
    let outcome: ApplyOutcome
    try {
      outcome = await this.executor.run(intent, sources)
    } catch (err) {
      outcome = { status: 'failed', id: intent.applyId, code: (err as { code?: 'APPLY_IN_PROGRESS' }).code ?? 'APPLY_IN_PROGRESS', reason: (err as Error).message }
    }
    this.metrics?.applied(outcome.status, (Date.now() - started) / 1000)
    await reportOutcome(this.store, intent, outcome, leaving)
    this.intent = null
    await noteCurrent(this.metrics, this.executor)
  }

  async status (): Promise<DeployStatus> {
    const current = await this.executor.current().catch(() => null)
    const d = this.lastDecision
    let desired: DeployStatus['desired'] = null
    if (d?.action === 'apply') desired = { release: d.release, path: d.path }
    else if (d?.release !== undefined) {
      const body = effectiveRelease(this.state, this.view, d.release)?.body
      const target = body !== undefined ? planOf(this.state, body, this.view).targetOf.get(this.self) : undefined
      if (target !== undefined) desired = { release: d.release, path: target.path }
    }
    return { enabled: true, current, desired, applying: this.intent, decision: d }
  }

  /** Every release this host knows, newest first, with its fleet-wide status. */
  releases (online: (peer: string) => boolean): ReleaseStatus[] {
    const now = Date.now()
    return [...this.state.releases.keys()]
      .map((id) => releaseStatus(this.state, this.view, id, now, online))
      .filter((s): s is ReleaseStatus => s !== undefined)
      .sort((a, b) => b.number - a.number)
  }

  release (id: string, online: (peer: string) => boolean): ReleaseStatus | undefined {
    return releaseStatus(this.state, this.view, id, Date.now(), online)
  }

  flags (): ReturnType<typeof flagged> {
    return flagged(this.state, this.view)
  }

  /** Signs a release into this admin's feed; the number is one above every release seen. */
  async publish (p: PublishParams): Promise<ReleaseBody> {
    if (!this.view.isAdmin(this.self)) throw new NodeError('NOT_ADMIN', 'only admins may publish releases')
    let number = 0
    for (const cands of this.state.releases.values()) for (const c of cands) number = Math.max(number, c.body.number)
    number += 1
    const body: ReleaseBody = {
      id: `r${number}-${randomBytes(3).toString('hex')}`,
      number,
      targets: p.targets,
      waves: p.waves,
      maxFailures: p.maxFailures,
      ...(p.autoRevert === true ? { autoRevert: true } : {})
    }
    await this.store.append('release', body)
    this.log.info({ release: body.id, number }, 'release published')
    return body
  }

  /**
   * `fleetmesh rollback --release ID`: a new release (so no host ever moves backwards by
   * replaying an old entry) that sends ID's targets back to the paths the newest earlier
   * release gave the same selectors, with ID's waves and gates.
   */
  async rollbackRelease (id: string): Promise<ReleaseBody> {
    const bad = this.state.releases.get(id)?.find((c) => this.view.isAdmin(c.feed))?.body
    if (bad === undefined) throw new NodeError('API_NOT_FOUND', `no release ${id}`)
    const selector = (t: ReleaseBody['targets'][number]): string => `${t.tag ?? ''}|${t.host ?? ''}`
    const earlier = [...this.state.releases.values()].flat()
      .filter((c) => c.body.number < bad.number && this.view.isAdmin(c.feed))
      .sort((a, b) => b.body.number - a.body.number)
    const targets = bad.targets.map((t) => {
      const prev = earlier.flatMap((c) => c.body.targets).find((p) => selector(p) === selector(t) && p.path !== t.path)
      if (prev === undefined) throw new NodeError('API_NOT_FOUND', `no earlier release gave ${t.tag !== undefined ? `tag ${t.tag}` : t.host !== undefined ? `host ${t.host}` : 'every host'} another path to return to`)
      return { ...prev }
    })
    return this.publish({ targets, waves: bad.waves, maxFailures: bad.maxFailures, autoRevert: bad.autoRevert })
  }

  async control (release: string, action: 'pause' | 'resume' | 'abort'): Promise<void> {
    if (!this.view.isAdmin(this.self)) throw new NodeError('NOT_ADMIN', 'only admins may pause, resume or abort releases')
    if (!this.state.releases.has(release)) throw new NodeError('API_NOT_FOUND', `no release ${release}`)
    await this.store.append('release-control', { release, action })
  }
}
