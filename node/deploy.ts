// The deploy agent: the bridge between the replicated log and this host's Nix profile. It
// folds rollout entries into the pure rollout state, asks `decide` what this host should do,
// runs the deploy engine when the answer is `apply` (or `revert`), and writes every outcome
// back into its own feed for the rest of the fleet to decide on. No coordinator anywhere.
import { randomBytes } from 'node:crypto'
import type { AbstractLevel } from 'abstract-level'
import type { Logger } from 'pino'
import { DeployEngine, Journal, NixProfileBackend, newApplyId, verify, type ApplyOutcome, type Backend, type DeployEvent, type Generation, type HealthPolicy, type JournalDb } from '../nixos/index.js'
import type { AuditStore, StoredEntry } from '../protocols/audit/index.js'
import { ClosureService, sourcesFetcher } from '../protocols/closures/index.js'
import { applyEntry, decide, effectiveRelease, emptyState, flagged, planOf, isRolloutKind, releaseStatus, soakWatchOf, type Decision, type SoakWatch, type MembershipView, type ReleaseBody, type ReleaseStatus, type RolloutState } from '../protocols/rollout/index.js'
import type { DeployConfig } from './config.js'
import { NodeError } from './errors.js'
import type { MeshLibp2p } from './libp2p.js'
import type { Membership } from './membership.js'
import type { NodeMetrics } from './metrics.js'

/** Re-evaluates at least this often, so a soak that ends or a peer that goes quiet is noticed. */
const TICK_MS = 1_000
/**
 * How long a host that knows other members waits, after it starts, to catch up with one of them
 * before it decides on the log it has: deciding on a half-pulled log could apply a release that a
 * newer, not yet pulled one supersedes. A host that reaches nobody still acts after this.
 */
const CATCH_UP_GRACE_MS = 15_000
const MAX_OUTPUT_CHARS = 1_000
const INTENT_KEY = 'deploy-intent'

/** What this host is doing for which release: kept across a crash so the outcome is reported. */
interface Intent { applyId: string, release: string, path: string, revert: boolean }

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

/** The profile backend, with fetch widened to mesh peers through the closure protocol. */
function meshBackend (profile: NixProfileBackend, fetch: Backend['fetch']): Backend {
  return {
    fetch,
    switch: async (p) => profile.switch(p),
    activate: async () => { await profile.activate() },
    current: async () => profile.current(),
    list: async () => profile.list(),
    rollback: async (to) => profile.rollback(to),
    gc: async (keep) => profile.gc(keep),
    preview: async (p) => profile.preview(p)
  }
}

/** What the agent needs of log replication: whether this host caught up since it started. */
export interface CatchUp {
  caughtUp (): string | undefined
  on (event: 'caught-up', listener: (peer: string) => void): unknown
  off (event: 'caught-up', listener: (peer: string) => void): unknown
}

export class DeployAgent {
  private state: RolloutState = emptyState()
  private revision = 0
  private running: Promise<void> | undefined
  private again = false
  private timer?: NodeJS.Timeout
  private intent: Intent | null = null
  private lastDecision: Decision | null = null
  private stopped = false
  private startedAt = 0
  /** the gate soak being watched, see watchSoak() */
  private soak: { watch: SoakWatch, abort: AbortController } | undefined
  private waitingLogged = false
  readonly profile: NixProfileBackend
  readonly engine: DeployEngine
  readonly closures: ClosureService
  private readonly meta: AbstractLevel<any, string, string>
  private readonly policy: HealthPolicy
  /** The membership facts the pure decisions need, with a revision so plans can be cached. */
  private readonly view: MembershipView

  constructor (
    private readonly self: string,
    private readonly store: AuditStore,
    private readonly sync: CatchUp,
    private readonly membership: Membership,
    libp2p: MeshLibp2p,
    config: DeployConfig,
    db: AbstractLevel<any, any, any>,
    private readonly metrics: NodeMetrics,
    private readonly log: Logger
  ) {
    this.meta = db.sublevel<string, string>('deploy-meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as AbstractLevel<any, string, string>
    this.policy = { soakMs: config.soakMs, checks: config.healthChecks }
    const agent = this
    this.view = {
      isAdmin: (peer) => membership.isAdmin(peer),
      isMember: (peer) => membership.isMember(peer),
      tagsOf: (peer) => membership.view()?.members.get(peer)?.tags ?? [],
      members: () => [...(membership.view()?.members.keys() ?? [])],
      get revision () { return agent.revision }
    }
    this.profile = new NixProfileBackend({
      profile: config.profile,
      trustedPublicKeys: config.trustedPublicKeys.length > 0 ? config.trustedPublicKeys : undefined,
      activation: {
        command: (path) => config.activation.map((a) => a.replaceAll('{path}', path)),
        env: config.activationEnv,
        timeoutMs: config.activationTimeoutMs
      }
    })
    this.closures = new ClosureService({
      libp2p,
      allowPeer: (peer) => membership.isMember(peer),
      trustedPublicKeys: config.trustedPublicKeys.length > 0 ? config.trustedPublicKeys : undefined,
      log
    })
    const fetch = sourcesFetcher({
      backend: this.profile,
      closures: this.closures,
      // Every connected member is asked in turn; one that lacks the path says so at once.
      peers: () => libp2p.getPeers().map(String).filter((p) => membership.isMember(p))
    })
    this.engine = new DeployEngine({
      backend: meshBackend(this.profile, fetch),
      journal: new Journal(db.sublevel<string, string>('deploy', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as JournalDb),
      health: this.policy,
      keep: config.keep,
      onEvent: (ev) => { this.onEngineEvent(ev) }
    })
  }

  async start (): Promise<void> {
    for await (const s of this.store.log()) {
      if (isRolloutKind(s.entry.kind)) applyEntry(this.state, s.entry)
    }
    this.store.on('entry', this.onEntry)
    this.membership.on('changed', this.onMembership)
    this.sync.on('caught-up', this.onCaughtUp)
    this.startedAt = Date.now()
    await this.closures.start()
    const raw = await this.meta.get(INTENT_KEY)
    this.intent = raw === undefined ? null : JSON.parse(raw) as Intent
    // A crash mid-apply: the engine's journal finishes or rolls it back before anything new.
    const recovered = await this.engine.recover()
    if (recovered !== null && this.intent !== null && this.intent.applyId === recovered.id) {
      this.log.warn({ release: this.intent.release, outcome: recovered.status }, 'deploy: finished an apply interrupted by a restart')
      await this.report(this.intent, recovered)
    }
    await this.clearIntent()
    await this.updateGenerationMetrics()
    this.timer = setInterval(() => { this.schedule() }, TICK_MS)
    this.timer.unref()
    this.schedule()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.soak?.abort.abort()
    clearInterval(this.timer)
    this.store.off('entry', this.onEntry)
    this.membership.off('changed', this.onMembership)
    this.sync.off('caught-up', this.onCaughtUp)
    await this.running
    await this.closures.stop()
  }

  private readonly onEntry = (s: StoredEntry): void => {
    if (!isRolloutKind(s.entry.kind)) return
    applyEntry(this.state, s.entry)
    this.schedule()
  }

  private readonly onCaughtUp = (): void => { this.schedule() }

  /** Whether the log is complete enough to act on (see CATCH_UP_GRACE_MS). */
  private caughtUp (): boolean {
    if (this.sync.caughtUp() !== undefined || Date.now() - this.startedAt >= CATCH_UP_GRACE_MS) return true
    const others = [...(this.membership.view()?.members.keys() ?? [])].some((p) => p !== this.self)
    if (others && !this.waitingLogged) {
      this.waitingLogged = true
      this.log.info('deploy: catching up with the mesh before deciding')
    }
    return !others
  }

  private readonly onMembership = (): void => {
    this.revision++
    this.schedule()
  }

  /** Runs one evaluation at a time; a request during one runs again right after it. */
  private schedule (): void {
    if (this.stopped) return
    if (this.running !== undefined) { this.again = true; return }
    this.running = this.evaluate().catch((err: Error) => {
      this.log.error({ err }, 'deploy: evaluation failed')
    }).finally(() => {
      this.running = undefined
      if (this.again) { this.again = false; this.schedule() }
    })
  }

  private async evaluate (): Promise<void> {
    if (this.membership.view() === undefined || !this.caughtUp()) return
    const d = decide(this.state, this.view, this.self, Date.now())
    const reasonOf = (x: Decision | null): string | undefined => x !== null && 'reason' in x ? x.reason : undefined
    if (d.action !== this.lastDecision?.action || reasonOf(d) !== reasonOf(this.lastDecision) || d.release !== this.lastDecision?.release) {
      this.log.info({ release: d.release, action: d.action, reason: reasonOf(d), wave: 'wave' in d ? d.wave : undefined }, 'deploy: decision')
    }
    this.lastDecision = d
    if (d.action !== 'apply' && d.action !== 'revert') this.watchSoak()
    if (d.action === 'apply') {
      this.metrics.setGeneration('desired', d.path, d.release)
      await this.run({ applyId: newApplyId(Date.now()), release: d.release, path: d.path, revert: false }, d.sources, d.wave)
    } else if (d.action === 'revert') {
      const before = await this.generationBefore(d.path)
      if (before === null) {
        this.log.error({ release: d.release, path: d.path }, 'deploy: cannot revert: no generation before the release on this host')
        return
      }
      this.metrics.setGeneration('desired', before.path, d.release)
      await this.run({ applyId: newApplyId(Date.now()), release: d.release, path: before.path, revert: true }, [], -1, d.path)
    }
  }

  private async generationBefore (path: string): Promise<Generation | null> {
    const gens = (await this.profile.list()).sort((a, b) => a.number - b.number)
    const i = gens.findLastIndex((g) => g.path === path)
    return i > 0 ? gens[i - 1] : null
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
    void verify({ soakMs: Math.max(0, watch.until - Date.now()), checks: this.policy.checks }, { signal: abort.signal })
      .then(async (verdict) => {
        if (verdict.ok || abort.signal.aborted) return
        this.log.warn({ release: watch.release, check: verdict.failed.check }, 'deploy: health failed during the gate soak')
        await this.reportHealthFailure(watch.release, watch.path, verdict.failed.check, verdict.failed.output)
      })
      .catch((err: Error) => { if (!abort.signal.aborted) this.log.error({ err, release: watch.release }, 'deploy: gate soak watch failed') })
      .finally(() => { if (this.soak === soak) this.soak = undefined })
  }

  private async run (intent: Intent, sources: string[], wave: number, leaving?: string): Promise<void> {
    // A new apply replaces whatever generation was soaking.
    this.soak?.abort.abort()
    this.soak = undefined
    this.intent = intent
    await this.meta.put(INTENT_KEY, JSON.stringify(intent))
    if (!intent.revert) await this.store.append('apply-start', { release: intent.release, path: intent.path, wave })
    const started = Date.now()
    let outcome: ApplyOutcome
    try {
      outcome = await this.engine.apply({ id: intent.applyId, path: intent.path, sources })
    } catch (err) {
      outcome = { status: 'failed', id: intent.applyId, code: (err as { code?: 'APPLY_IN_PROGRESS' }).code ?? 'APPLY_IN_PROGRESS', reason: (err as Error).message }
    }
    this.metrics.applies.inc({ outcome: outcome.status })
    this.metrics.applyDuration.observe({ outcome: outcome.status }, (Date.now() - started) / 1000)
    await this.report(intent, outcome, leaving)
    await this.clearIntent()
    await this.updateGenerationMetrics()
  }

  /** Writes an apply's outcome as this host's signed entries. */
  private async report (intent: Intent, outcome: ApplyOutcome, leaving?: string): Promise<void> {
    const { release, path } = intent
    if (intent.revert) {
      await this.store.append('rollback', { release, from: leaving ?? path, to: path, ok: outcome.status === 'ok' })
      return
    }
    switch (outcome.status) {
      case 'ok':
        await this.store.append('apply-ok', { release, path, healthyAt: Date.now() })
        break
      case 'rolled-back':
        await this.store.append('apply-failed', { release, path, reason: outcome.reason.slice(0, MAX_OUTPUT_CHARS), ...(outcome.failedCheck !== null ? { check: outcome.failedCheck.check.slice(0, 128) } : {}) })
        await this.store.append('rollback', { release, from: path, to: outcome.generation.path, ok: true })
        break
      case 'failed':
        await this.store.append('apply-failed', { release, path, reason: `${outcome.code}: ${outcome.reason}`.slice(0, MAX_OUTPUT_CHARS) })
        break
    }
  }

  private onEngineEvent (ev: DeployEvent): void {
    const release = this.intent?.release
    if (ev.kind === 'health-failed') {
      void this.reportHealthFailure(release, ev.target, ev.check, ev.output).catch(() => {})
    } else if (ev.kind === 'rollback') {
      this.log.warn({ release, from: ev.from?.path, to: ev.to.path, reason: ev.reason }, 'deploy: rolling back')
    } else {
      this.log.info({ release, kind: ev.kind, path: ev.target }, `deploy: ${ev.kind}`)
    }
  }

  /** A failed check, counted and written as a `health` entry for every host's gate. */
  private async reportHealthFailure (release: string | undefined, path: string, check: string, output: string): Promise<void> {
    this.metrics.healthChecks.inc({ check, result: 'failed' })
    await this.store.append('health', { ...(release !== undefined ? { release } : {}), path, ok: false, check: check.slice(0, 128), output: output.slice(0, MAX_OUTPUT_CHARS) })
  }

  private async clearIntent (): Promise<void> {
    this.intent = null
    await this.meta.del(INTENT_KEY)
  }

  private async updateGenerationMetrics (): Promise<void> {
    const current = await this.profile.current().catch(() => null)
    this.metrics.setGeneration('current', current?.path ?? null, null)
  }

  async status (): Promise<DeployStatus> {
    const current = await this.profile.current().catch(() => null)
    const d = this.lastDecision
    let desired: DeployStatus['desired'] = null
    if (d?.action === 'apply') desired = { release: d.release, path: d.path }
    else if (d?.release !== undefined) {
      const body = effectiveRelease(this.state, this.view, d.release)?.body
      const target = body !== undefined ? planOf(body, this.view).targetOf.get(this.self) : undefined
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
    if (!this.membership.isAdmin(this.self)) throw new NodeError('NOT_ADMIN', 'only admins may publish releases')
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
    const bad = this.state.releases.get(id)?.find((c) => this.membership.isAdmin(c.feed))?.body
    if (bad === undefined) throw new NodeError('API_NOT_FOUND', `no release ${id}`)
    const selector = (t: ReleaseBody['targets'][number]): string => `${t.tag ?? ''}|${t.host ?? ''}`
    const earlier = [...this.state.releases.values()].flat()
      .filter((c) => c.body.number < bad.number && this.membership.isAdmin(c.feed))
      .sort((a, b) => b.body.number - a.body.number)
    const targets = bad.targets.map((t) => {
      const prev = earlier.flatMap((c) => c.body.targets).find((p) => selector(p) === selector(t) && p.path !== t.path)
      if (prev === undefined) throw new NodeError('API_NOT_FOUND', `no earlier release gave ${t.tag !== undefined ? `tag ${t.tag}` : t.host !== undefined ? `host ${t.host}` : 'every host'} another path to return to`)
      return { ...prev }
    })
    return this.publish({ targets, waves: bad.waves, maxFailures: bad.maxFailures, autoRevert: bad.autoRevert })
  }

  async control (release: string, action: 'pause' | 'resume' | 'abort'): Promise<void> {
    if (!this.membership.isAdmin(this.self)) throw new NodeError('NOT_ADMIN', 'only admins may pause, resume or abort releases')
    if (!this.state.releases.has(release)) throw new NodeError('API_NOT_FOUND', `no release ${release}`)
    await this.store.append('release-control', { release, action })
  }

  /** `fleetmesh apply PATH`: one host, through the same engine, outside any release. */
  async applyLocal (path: string, sources: string[], dryRun: boolean): Promise<{ preview: string, outcome: ApplyOutcome | null }> {
    const preview = await this.profile.preview(path).catch((err: Error) => `(no preview: ${err.message})`)
    if (dryRun) return { preview, outcome: null }
    await this.store.append('local-apply', { path, phase: 'start' })
    const outcome = await this.engine.apply({ path, sources })
    await this.store.append('local-apply', { path, phase: 'end', status: outcome.status, ...('reason' in outcome ? { reason: outcome.reason.slice(0, MAX_OUTPUT_CHARS) } : {}) })
    await this.updateGenerationMetrics()
    return { preview, outcome }
  }

  /** `fleetmesh rollback [--to N]`: back to an exact generation, activated and health-checked. */
  async rollbackLocal (to?: number): Promise<{ generation: Generation, healthy: boolean, failure?: string }> {
    const gens = (await this.profile.list()).sort((a, b) => a.number - b.number)
    const current = await this.profile.current()
    const target = to !== undefined ? gens.find((g) => g.number === to) : gens.filter((g) => current === null || g.number < current.number).pop()
    if (target === undefined) throw new NodeError('API_NOT_FOUND', to !== undefined ? `no generation ${to}` : 'no generation before the current one')
    const started = Date.now()
    const generation = await this.profile.rollback(target)
    await this.profile.activate()
    const verdict = await verify(this.policy)
    this.metrics.rollbackDuration.observe((Date.now() - started) / 1000)
    await this.store.append('local-rollback', { from: current?.path ?? null, to: generation.path, number: generation.number, healthy: verdict.ok })
    await this.updateGenerationMetrics()
    return { generation, healthy: verdict.ok, ...(verdict.ok ? {} : { failure: `${verdict.failed.check}: ${verdict.failed.output}` }) }
  }
}
