// The daemon's executor: the Nix profile and the deploy engine (nixos/), with the engine's
// fetch widened to mesh peers through the closure protocol. Each apply's intent is the tag of
// its journal record, so that after a crash the outcome the journal finishes (or had finished,
// unreported) is reported for the release it was for, exactly once.
import type { AbstractLevel } from 'abstract-level'
import type { Logger } from 'pino'
import { APPLY_ID_RE, DeployEngine, Journal, NixClosureStore, NixosError, NixProfileBackend, bootInfo, verify, type ApplyOutcome, type Backend, type DeployEvent, type Generation, type HealthPolicy, type HealthVerdict, type JournalDb, type NixosErrorCode } from '../../nixos/index.js'
import { ClosureService } from '../../protocols/closures/index.js'
import type { DeployConfig } from '../config.js'
import type { MeshLibp2p } from '../libp2p.js'
import type { Boots, Executor, Intent, Unreported } from './executor.js'
import type { DeployMetrics } from './metrics.js'
import { reportHealthFailure, type Appender } from './report.js'
import { sourcesFetcher } from './sources.js'

/** The intent rides in the engine's journal record, written atomically with each phase. */
function encodeIntent (intent: Intent): string {
  return JSON.stringify({ applyId: intent.applyId, release: intent.release, path: intent.path, revert: intent.revert })
}

function decodeIntent (tag: string): Intent {
  const v = JSON.parse(tag) as Record<string, unknown>
  if (typeof v.applyId !== 'string' || !APPLY_ID_RE.test(v.applyId) || typeof v.release !== 'string' || typeof v.path !== 'string' || typeof v.revert !== 'boolean') {
    throw new NixosError('JOURNAL_CORRUPT', 'journal record tag is not a deploy intent')
  }
  return { applyId: v.applyId, release: v.release, path: v.path, revert: v.revert }
}

export interface NixExecutorComponents {
  config: DeployConfig
  /** the host's db: the engine's journal lives in a sublevel of it */
  db: AbstractLevel<any, any, any>
  libp2p: MeshLibp2p
  membership: { isMember: (peer: string) => boolean }
  /** where failed health checks are written */
  store: Appender
  metrics?: DeployMetrics
  log: Logger
  /** health checks of kind "agent" ask the agent supervisor (node/agents) */
  agents?: HealthPolicy['agents']
  /** after every activation (an apply's or a rollback's): the agent supervisor restarts its agents */
  activated?: () => void
}

/** The profile backend, with fetch widened to mesh peers through the closure protocol. */
function meshBackend (profile: NixProfileBackend, fetch: Backend['fetch'], activated?: () => void): Backend {
  return {
    fetch,
    switch: async (p) => profile.switch(p),
    activate: async (id, mode) => {
      await profile.activate(id, mode)
      if (mode !== 'boot') activated?.()
    },
    current: async () => profile.current(),
    list: async () => profile.list(),
    rollback: async (to) => profile.rollback(to),
    gc: async (keep) => profile.gc(keep),
    preview: async (p) => profile.preview(p)
  }
}

export class NixExecutor implements Executor {
  readonly profile: NixProfileBackend
  readonly engine: DeployEngine
  private readonly journal: Journal
  private readonly closures: ClosureService
  readonly policy: HealthPolicy
  /** The release of each apply the engine works on, for its events. */
  private readonly releases = new Map<string, string>()

  constructor (private readonly c: NixExecutorComponents) {
    const { config, db, libp2p, membership, log } = c
    const trustedPublicKeys = config.trustedPublicKeys.length > 0 ? config.trustedPublicKeys : undefined
    this.policy = { soakMs: config.soakMs, checks: config.healthChecks, agents: c.agents }
    this.profile = new NixProfileBackend({
      profile: config.profile,
      trustedPublicKeys,
      activation: {
        command: (path) => config.activation.map((a) => a.replaceAll('{path}', path)),
        bootCommand: (path) => config.bootActivation.map((a) => a.replaceAll('{path}', path)),
        env: config.activationEnv,
        timeoutMs: config.activationTimeoutMs
      }
    })
    this.closures = new ClosureService({
      libp2p,
      store: new NixClosureStore({ trustedPublicKeys }),
      allowPeer: (peer) => membership.isMember(peer),
      log
    })
    const fetch = sourcesFetcher({
      backend: this.profile,
      closures: this.closures,
      // Every connected member is asked in turn; one that lacks the path says so at once.
      peers: () => libp2p.getPeers().map(String).filter((p) => membership.isMember(p))
    })
    this.journal = new Journal(db.sublevel<string, string>('deploy', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as JournalDb)
    this.engine = new DeployEngine({
      backend: meshBackend(this.profile, fetch, c.activated),
      journal: this.journal,
      health: this.policy,
      keep: config.keep,
      onEvent: (ev) => { this.onEngineEvent(ev) },
      boot: bootInfo({ bootIdPath: config.bootIdPath, currentSystem: config.currentSystem })
    })
    this.boots = {
      holdConfirm: async (id, windowMs) => await this.engine.holdConfirm(id, windowMs),
      requestReboot: async (id) => await this.engine.requestReboot(id),
      bootId: async () => await this.engine.bootId(),
      running: async () => await this.engine.running()
    }
  }

  readonly boots: Boots

  /** Serves this host's closures to members, and fetches from them. */
  async start (): Promise<void> {
    await this.closures.start()
  }

  async stop (): Promise<void> {
    await this.closures.stop()
  }

  async run (intent: Intent, sources: string[]): Promise<ApplyOutcome> {
    const tag = encodeIntent(intent)
    return await this.outcomeOf(intent, async () => intent.revert
      ? await this.engine.revert({ id: intent.applyId, leaving: intent.path, tag })
      // the deploy agent applies a newer release than one it staged: that one is replaced
      : await this.engine.apply({ id: intent.applyId, path: intent.path, sources, tag, supersede: true }))
  }

  async rollbackSoak (intent: Intent, reason: string): Promise<ApplyOutcome> {
    return await this.outcomeOf(intent, async () => await this.engine.rollbackApply(intent.applyId, reason))
  }

  /** The engine's journal finishes an interrupted apply first, then lists what is unreported. */
  async unreported (): Promise<Unreported[]> {
    const active = await this.journal.active()
    if (active?.tag != null) this.releases.set(active.id, decodeIntent(active.tag).release)
    const out: Unreported[] = []
    for (const { record, outcome } of await this.engine.unreported()) {
      if (record.tag !== null) out.push({ intent: decodeIntent(record.tag), outcome, hold: record.hold })
    }
    return out
  }

  async reported (applyId: string): Promise<void> {
    this.releases.delete(applyId)
    await this.engine.markReported(applyId)
  }

  /**
   * An apply the engine refused before journalling it has an outcome too: another apply holding
   * the engine (a local `fleetmesh apply`) changed nothing here, so that refusal is transient.
   */
  private async outcomeOf (intent: Intent, fn: () => Promise<ApplyOutcome>): Promise<ApplyOutcome> {
    this.releases.set(intent.applyId, intent.release)
    try {
      return await fn()
    } catch (err) {
      const code: NixosErrorCode = err instanceof NixosError ? err.code : 'NIX_COMMAND_FAILED'
      return { status: 'failed', id: intent.applyId, code, reason: (err as Error).message, ...(code === 'APPLY_IN_PROGRESS' ? { transient: true } : {}) }
    }
  }

  async current (): Promise<Generation | null> {
    return await this.profile.current()
  }

  async watchHealth (soakMs: number, signal: AbortSignal): Promise<HealthVerdict> {
    // The generation passed its checks already: a failure now is a failure, not a slow start.
    return await verify({ soakMs, checks: this.policy.checks.map((c) => ({ ...c, startPeriodMs: 0 })), agents: this.policy.agents }, { signal })
  }

  private onEngineEvent (ev: DeployEvent): void {
    const release = this.releases.get(ev.applyId)
    if (ev.kind === 'health-failed') {
      void reportHealthFailure(this.c.store, this.c.metrics, release, ev.target, ev.check, ev.output).catch(() => {})
    } else if (ev.kind === 'rollback') {
      this.c.log.warn({ release, from: ev.from?.path, to: ev.to.path, reason: ev.reason }, 'deploy: rolling back')
    } else {
      this.c.log.info({ release, kind: ev.kind, path: ev.target }, `deploy: ${ev.kind}`)
    }
  }
}
