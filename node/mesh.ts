// The composition root of a host: identity, store, membership, libp2p, replication and the
// control API, opened in dependency order and closed in reverse. Features attach here.
import type { Level } from 'level'
import type { Logger } from 'pino'
import { createLogger, type LogFormat } from './log.js'
import type { Connection } from '@libp2p/interface'
import { loadIdentity, type HostIdentity } from '../crypto/identity.js'
import { AuditSync, Witness, auditSublevel, type AuditStore } from '../protocols/audit/index.js'
import { attachRooms, type Rooms } from './rooms.js'
import { Checkpoints } from './checkpoints.js'
import { registerDeployRoutes, startNixDeploy, type DeployAgent } from './deploy/index.js'
import { attachObservability } from './observe.js'
import { attachDrift } from './drift/index.js'
import { startAgents, type Supervisor } from './agents/index.js'
import { dataPaths, type ListenAddress, type NodeConfig } from './config.js'
import { ownConfigInEffect, readConfig, writeConfig, parseHealthFile } from './config-file.js'
import { lockDataDir } from './lock.js'
import { createMeshLibp2p, type MeshLibp2p } from './libp2p.js'
import { ApiServer, loadOrCreateToken, writeEndpoint } from './api.js'
import { MetaStore } from './meta.js'
import { Membership } from './membership.js'
import { Pairing, type JoinResult } from './pairing.js'
import { NodeMetrics } from './metrics.js'
import { Redialer, withPeerId } from './redial.js'
import { RevocationNotices } from './revocation.js'
import { registerCoreRoutes } from './routes.js'
import { isOrWasMember, openAuditStore, openDb } from './store.js'
import { promises as fs } from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

/** multicodec of /p2p/ID, stripped from our own addresses when writing them to the config */
const P2P_CODE = 421

async function nixInstalled (): Promise<boolean> {
  try {
    await promisify(execFile)('nix-env', ['--version'])
    return true
  } catch {
    return false
  }
}

export interface MeshNodeOptions {
  dataDir: string
  /** overrides of the config file, from the command line */
  listen?: string[]
  bootstrap?: string[]
  /** a health-check file replacing the config's checks (the NixOS module writes one) */
  healthFile?: string
  /** used instead of a pino logger to stderr at `logLevel` */
  logger?: Logger
  /** from config.ts's runtimeEnv, like `metricsListen`: info by default */
  logLevel?: string
  /** from config.ts's runtimeEnv: json by default */
  logFormat?: LogFormat
  metricsListen?: ListenAddress
}

export class MeshNode {
  readonly startedAt = Date.now()
  readonly metrics = new NodeMetrics()
  private redialer!: Redialer
  private stopping?: Promise<void>
  private readonly closers: Array<() => Promise<void> | void> = []
  readonly bootstrap: Set<string>
  libp2p!: MeshLibp2p
  sync!: AuditSync
  witness!: Witness
  checkpoints!: Checkpoints
  pairing!: Pairing
  rooms!: Rooms
  /** absent where Nix is not installed: the host still meshes, it just applies nothing */
  deploy?: DeployAgent
  agents!: Supervisor
  api!: ApiServer
  apiUrl = ''

  private constructor (
    readonly dataDir: string,
    readonly config: NodeConfig,
    readonly identity: HostIdentity,
    readonly db: Level<string, Uint8Array>,
    readonly store: AuditStore,
    readonly meta: MetaStore,
    readonly membership: Membership,
    readonly log: Logger
  ) {
    this.bootstrap = new Set(config.bootstrap)
  }

  get peerId (): string { return this.identity.peerId.toString() }

  static async start (opts: MeshNodeOptions): Promise<MeshNode> {
    const paths = dataPaths(opts.dataDir)
    const log = opts.logger ?? await createLogger(opts.logLevel ?? 'info', opts.logFormat ?? 'json')
    const fileConfig = await readConfig(opts.dataDir)
    const config: NodeConfig = {
      ...fileConfig,
      listen: opts.listen ?? fileConfig.listen,
      bootstrap: [...fileConfig.bootstrap, ...(opts.bootstrap ?? [])],
      deploy: opts.healthFile !== undefined ? parseHealthFile(opts.healthFile, await fs.readFile(opts.healthFile, 'utf8'), fileConfig.deploy) : fileConfig.deploy
    }
    const lock = await lockDataDir(paths.lock, opts.dataDir)
    const undo: Array<() => Promise<void> | void> = [lock.release]
    try {
      const identity = await loadIdentity(paths.identity)
      const db = await openDb(paths.db)
      undo.unshift(async () => { await db.close() })
      let members: Membership | undefined
      const store = await openAuditStore(db, identity, () => members)
      undo.unshift(async () => { await store.close() })
      const meta = new MetaStore(db)
      const membership = members = await Membership.open(store, meta, identity.peerId.toString(), log)
      const node = new MeshNode(opts.dataDir, config, identity, db, store, meta, membership, log)
      node.closers.push(...undo.reverse())
      undo.length = 0
      try {
        await node.open(paths, opts.metricsListen)
        if (opts.listen === undefined && await ownConfigInEffect(opts.dataDir)) await node.pinListenPorts(fileConfig)
      } catch (err) {
        await node.stop().catch(() => {})
        throw err
      }
      return node
    } catch (err) {
      for (const close of undo) await close()
      throw err
    }
  }

  /** Everything after the store: each step registers its own closer before the next. */
  private async open (paths: ReturnType<typeof dataPaths>, metricsListen: ListenAddress | undefined): Promise<void> {
    const libp2p = await createMeshLibp2p({
      privateKey: this.identity.privateKey,
      listen: this.config.listen,
      gater: this.membership.gater(),
      gossipScore: (peer) => this.membership.gossipScore(peer),
      metrics: this.metrics.libp2p
    })
    this.libp2p = libp2p
    this.closers.push(async () => { await libp2p.stop() })

    libp2p.addEventListener('connection:open', (evt) => {
      this.membership.watchConnection(evt.detail, (conn: Connection) => { void conn.close().catch(() => {}) })
    })
    const redialer = this.redialer = new Redialer({ self: this.peerId, libp2p, membership: this.membership, meta: this.meta, bootstrap: this.bootstrap, log: this.log })
    libp2p.addEventListener('peer:identify', (evt) => {
      const id = evt.detail.peerId.toString()
      void redialer.remember(id, withPeerId(id, evt.detail.listenAddrs.map(String))).catch(() => {})
    })
    this.membership.on('changed', () => { void redialer.rememberConnected().catch(() => {}) })
    const notices = new RevocationNotices({ self: this.peerId, libp2p, store: this.store, membership: this.membership, log: this.log })
    await notices.start()
    this.membership.on('revoked', (peer) => {
      if (peer === this.peerId) return
      void redialer.forget(peer).catch(() => {})
      void notices.tell(peer)
    })

    this.sync = new AuditSync({
      libp2p,
      store: this.store,
      logger: this.log,
      allowPeer: (peer: string) => this.membership.isMember(peer),
      wantFeed: (feed: string) => isOrWasMember(this.membership, feed),
      // this.witness is set just below; a request reads it later
      witnessed: async (seq: number) => await this.witness.witnessedVector(seq)
    })
    await this.sync.start()
    this.closers.push(async () => { await this.sync.stop() })
    this.checkpoints = new Checkpoints({
      self: this.peerId,
      store: this.store,
      libp2p,
      membership: this.membership,
      config: this.config.audit,
      log: this.log,
      adopted: (peer) => { void this.sync.syncWith(peer).catch(() => {}) },
      // a covered range this host lags on is pulled before adopting, so adoption drops nothing a member still serves
      fill: async (peer, feed, from, to) => {
        const r = await this.sync.pull(peer, feed, from, to)
        if (r.error !== undefined) throw r.error
      }
    })
    await this.checkpoints.start()
    this.closers.push(async () => { await this.checkpoints.stop() })
    this.witness = new Witness({
      store: this.store,
      db: auditSublevel(this.db),
      logger: this.log,
      keepVectorsMs: this.config.audit.archive ? Infinity : this.config.audit.historyDays * 86_400_000
    })
    await this.witness.start()
    this.closers.push(async () => { await this.witness.stop() })

    this.pairing = new Pairing(libp2p, this.store, this.membership, this.identity, this.db, this.log, () => this.memberAddresses())
    await this.pairing.start()

    this.api = new ApiServer(await loadOrCreateToken(paths.apiToken), this.log)
    this.apiUrl = await this.api.listen(this.config.api.host, this.config.api.port, { allowRemote: this.config.api.allowRemote })
    this.closers.push(async () => { await this.api.close() })
    registerCoreRoutes({
      api: this.api,
      peerId: this.peerId,
      dataDir: this.dataDir,
      startedAt: this.startedAt,
      addresses: () => this.addresses(),
      libp2p,
      membership: this.membership,
      store: this.store,
      pairing: this.pairing,
      checkpoints: this.checkpoints,
      join: async (code, name) => this.join(code, name),
      deployStatus: async () => this.deploy === undefined ? null : this.deploy.status(),
      meshUnreachable: () => this.redialer.meshUnreachable()
    })
    this.rooms = await attachRooms({
      libp2p,
      store: this.store,
      identity: this.identity,
      membership: {
        isMember: (peer) => this.membership.isMember(peer),
        isAdmin: (peer) => this.membership.isAdmin(peer),
        standingAt: (feed, seq, ts) => this.membership.standingAt(feed, seq, ts),
        xwingOf: (peer) => this.membership.view()?.members.get(peer)?.xwing
      },
      resolveHost: (text) => this.membership.resolveHost(text),
      db: this.db,
      api: this.api,
      log: this.log
    })
    this.closers.push(async () => { await this.rooms.service.stop() })

    const deploy = await nixInstalled()
      ? await startNixDeploy({ self: this.peerId, store: this.store, catchUp: this.sync, membership: this.membership, libp2p, config: this.config.deploy, db: this.db, metrics: this.metrics, log: this.log, agents: (name) => this.agents?.isLive(name) ?? false, activated: () => { this.agents?.activated() } })
      : undefined
    if (deploy !== undefined) {
      this.deploy = deploy.agent
      this.closers.push(deploy.stop)
    } else {
      this.log.warn('Nix is not installed: this host will not apply releases (apt-get install nix-bin)')
    }
    registerDeployRoutes({ api: this.api, self: this.peerId, libp2p, deploy, resolveHost: (text) => this.membership.resolveHost(text) })
    const agents = this.agents = startAgents({
      specs: this.config.agents, dataDir: this.dataDir, store: this.store, metrics: this.metrics, log: this.log, api: this.api, apiUrl: this.apiUrl,
      otherTokens: async (token) => await this.rooms.agents.resolve(token),
      escalation: this.deploy
    })
    this.closers.push(async () => { await agents.stop() })
    this.closers.push(await attachDrift({
      self: this.peerId, store: this.store, api: this.api, registry: this.metrics.registry, log: this.log, drift: this.config.drift, deployConfig: this.config.deploy,
      deploy: deploy === undefined ? undefined : { busy: () => deploy.agent.busy() || deploy.local.busy(), reactivate: async (path) => await deploy.local.reactivate(path) }
    }))
    this.closers.push(attachObservability({
      self: this.peerId,
      metrics: this.metrics,
      log: this.log,
      api: this.api,
      libp2p,
      store: this.store,
      sync: this.sync,
      membership: this.membership,
      rooms: this.rooms.service,
      healthChecks: this.config.deploy.healthChecks,
      deploy: this.deploy,
      metricsListen
    }))
    await writeEndpoint(paths.apiEndpoint, { url: this.apiUrl, pid: process.pid })
    this.closers.push(async () => { await fs.rm(paths.apiEndpoint, { force: true }) })

    await redialer.start()
    this.closers.push(() => { redialer.stop() })
    this.log.info({ peer: this.peerId, addresses: this.addresses(), api: this.apiUrl, mesh: this.membership.mesh()?.meshId }, 'node started')
  }

  /**
   * A config that listens on port 0 gets the port the OS picked written back, once: invite
   * codes and other members' address books carry it, so it must survive a restart.
   */
  private async pinListenPorts (fileConfig: NodeConfig): Promise<void> {
    if (!fileConfig.listen.some((a) => a.endsWith('/tcp/0'))) return
    const bound = this.libp2p.getMultiaddrs().map((a) => a.decapsulateCode(P2P_CODE).toString())
    const listen = fileConfig.listen.map((a) => {
      if (!a.endsWith('/tcp/0')) return a
      const host = a.slice(0, -'/tcp/0'.length)
      // A wildcard listener is reported once per interface address: any of its family has the port.
      const family = host.split('/')[1]
      const hit = bound.find((b) => b.startsWith(`${host}/tcp/`)) ?? bound.find((b) => b.startsWith(`/${family}/`))
      const port = hit !== undefined ? /\/tcp\/(\d+)/.exec(hit)?.[1] : undefined
      return port !== undefined ? `${host}/tcp/${port}` : a
    })
    await writeConfig(this.dataDir, { ...fileConfig, listen })
    this.log.info({ listen }, 'listen ports pinned in the config')
  }

  addresses (): string[] {
    return this.libp2p.getMultiaddrs().map(String)
  }

  /** Addresses (with /p2p/ID) a joiner or a returning host can dial: ours and known members'. */
  memberAddresses (): string[] {
    const out = [...this.addresses()]
    for (const c of this.libp2p.getConnections()) {
      const id = c.remotePeer.toString()
      if (this.membership.isMember(id)) out.push(c.remoteAddr.toString().includes('/p2p/') ? c.remoteAddr.toString() : `${c.remoteAddr.toString()}/p2p/${id}`)
    }
    return [...new Set(out)]
  }

  /** `fleetmesh join`: pair through an invite code, adopt its mesh, catch up its log. */
  async join (code: string, name?: string): Promise<JoinResult> {
    return this.pairing.join(code, async (addrs) => {
      for (const a of addrs) this.bootstrap.add(a)
      // Kept at once: a join run without a daemon stops the node soon after.
      await this.redialer.rememberBootstrap(addrs).catch((err: Error) => { this.log.warn({ err: err.message }, 'could not keep the inviter\'s addresses') })
      // Syncs refused while this host was a stranger are retried now that it is trusted.
      void this.redialer.redial().then(async () => {
        for (const p of this.libp2p.getPeers()) await this.sync.syncWith(p).catch(() => {})
      })
    }, name)
  }

  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      for (const close of this.closers.reverse()) await close()
      this.log.info('node stopped')
    })()
    return this.stopping
  }
}
