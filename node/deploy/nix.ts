// The daemon's executor: the Nix profile and the deploy engine (nixos/), with the engine's
// fetch widened to mesh peers through the closure protocol. The intent of the apply in progress
// is kept in the host's db next to the engine's journal, so that after a crash the outcome the
// journal finishes is reported for the release it was for.
import type { AbstractLevel } from 'abstract-level'
import type { Logger } from 'pino'
import { DeployEngine, Journal, NixClosureStore, NixProfileBackend, verify, type ApplyOutcome, type Backend, type DeployEvent, type Generation, type HealthPolicy, type HealthVerdict, type JournalDb } from '../../nixos/index.js'
import { ClosureService } from '../../protocols/closures/index.js'
import type { DeployConfig } from '../config.js'
import type { MeshLibp2p } from '../libp2p.js'
import type { Executor, Intent } from './executor.js'
import type { DeployMetrics } from './metrics.js'
import { reportHealthFailure, type Appender } from './report.js'
import { sourcesFetcher } from './sources.js'

const INTENT_KEY = 'deploy-intent'

export interface NixExecutorComponents {
  config: DeployConfig
  /** the host's db: the engine's journal and the intent live in sublevels of it */
  db: AbstractLevel<any, any, any>
  libp2p: MeshLibp2p
  membership: { isMember: (peer: string) => boolean }
  /** where failed health checks are written */
  store: Appender
  metrics?: DeployMetrics
  log: Logger
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

export class NixExecutor implements Executor {
  readonly profile: NixProfileBackend
  readonly engine: DeployEngine
  private readonly closures: ClosureService
  readonly policy: HealthPolicy
  private readonly meta: AbstractLevel<any, string, string>
  /** the persisted intent, while the engine works on it */
  private intent: Intent | null = null

  constructor (private readonly c: NixExecutorComponents) {
    const { config, db, libp2p, membership, log } = c
    const trustedPublicKeys = config.trustedPublicKeys.length > 0 ? config.trustedPublicKeys : undefined
    this.meta = db.sublevel<string, string>('deploy-meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as AbstractLevel<any, string, string>
    this.policy = { soakMs: config.soakMs, checks: config.healthChecks }
    this.profile = new NixProfileBackend({
      profile: config.profile,
      trustedPublicKeys,
      activation: {
        command: (path) => config.activation.map((a) => a.replaceAll('{path}', path)),
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
    this.engine = new DeployEngine({
      backend: meshBackend(this.profile, fetch),
      journal: new Journal(db.sublevel<string, string>('deploy', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as JournalDb),
      health: this.policy,
      keep: config.keep,
      onEvent: (ev) => { this.onEngineEvent(ev) }
    })
  }

  /** Serves this host's closures to members, and fetches from them. */
  async start (): Promise<void> {
    await this.closures.start()
  }

  async stop (): Promise<void> {
    await this.closures.stop()
  }

  async run (intent: Intent, sources: string[]): Promise<ApplyOutcome> {
    this.intent = intent
    await this.meta.put(INTENT_KEY, JSON.stringify(intent))
    try {
      return await this.engine.apply({ id: intent.applyId, path: intent.path, sources })
    } finally {
      await this.forget()
    }
  }

  /** The engine's journal finishes or rolls back an interrupted apply before anything new. */
  async recover (): Promise<{ intent: Intent, outcome: ApplyOutcome } | null> {
    const raw = await this.meta.get(INTENT_KEY)
    const intent = raw === undefined ? null : JSON.parse(raw) as Intent
    this.intent = intent
    const recovered = await this.engine.recover()
    await this.forget()
    return recovered !== null && intent !== null && intent.applyId === recovered.id ? { intent, outcome: recovered } : null
  }

  private async forget (): Promise<void> {
    this.intent = null
    await this.meta.del(INTENT_KEY)
  }

  async current (): Promise<Generation | null> {
    return await this.profile.current()
  }

  async generationBefore (path: string): Promise<Generation | null> {
    const gens = (await this.profile.list()).sort((a, b) => a.number - b.number)
    const i = gens.findLastIndex((g) => g.path === path)
    return i > 0 ? gens[i - 1] : null
  }

  async watchHealth (soakMs: number, signal: AbortSignal): Promise<HealthVerdict> {
    return await verify({ soakMs, checks: this.policy.checks }, { signal })
  }

  private onEngineEvent (ev: DeployEvent): void {
    const release = this.intent?.release
    if (ev.kind === 'health-failed') {
      void reportHealthFailure(this.c.store, this.c.metrics, release, ev.target, ev.check, ev.output).catch(() => {})
    } else if (ev.kind === 'rollback') {
      this.c.log.warn({ release, from: ev.from?.path, to: ev.to.path, reason: ev.reason }, 'deploy: rolling back')
    } else {
      this.c.log.info({ release, kind: ev.kind, path: ev.target }, `deploy: ${ev.kind}`)
    }
  }
}
