// The composition root of a host: identity, store, membership, libp2p, replication and the
// control API, opened in dependency order and closed in reverse. Features attach here.
import { Level } from 'level'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { pino, type Logger } from 'pino'
import type { Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { loadIdentity, type HostIdentity } from '../crypto/identity.js'
import { AuditStore, AuditSync, Witness, auditSublevel, createKindRegistry, type KindRegistry } from '../protocols/audit/index.js'
import { registerMembershipKinds } from '../protocols/membership/index.js'
import { rolloutSchemas } from '../protocols/rollout/index.js'
import { registerRoomKinds } from '../protocols/rooms/index.js'
import { attachRooms, type Rooms } from './rooms.js'
import { DeployAgent } from './deploy.js'
import { registerDeployRoutes } from './deploy-routes.js'
import { attachObservability } from './observe.js'
import { readConfig, writeConfig, dataPaths, parseHealthFile, type NodeConfig } from './config.js'
import { lockDataDir } from './lock.js'
import { createMeshLibp2p, type MeshLibp2p } from './libp2p.js'
import { ApiServer, loadOrCreateToken, writeEndpoint } from './api.js'
import { MetaStore } from './meta.js'
import { Membership } from './membership.js'
import { Pairing, type JoinResult } from './pairing.js'
import { NodeError } from './errors.js'
import { NodeMetrics } from './metrics.js'
import { registerCoreRoutes } from './routes.js'
import { promises as fs } from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const REDIAL_MS = 5_000
/** multicodec of /p2p/ID, stripped from our own addresses when writing them to the config */
const P2P_CODE = 421
/** Members this host keeps connections to beyond its bootstrap peers; gossip does the rest. */
const TARGET_MEMBER_CONNECTIONS = 8

/** The /p2p/ID component of an address, if it has one. */
export function peerIdOf (ma: Multiaddr): string | undefined {
  return ma.getComponents().findLast((c) => c.name === 'p2p')?.value
}

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
  logger?: Logger
}

/** Every kind of entry this build interprets, registered once for the store to validate. */
export function createNodeKindRegistry (): KindRegistry {
  const kinds = createKindRegistry()
  registerMembershipKinds(kinds)
  for (const [kind, validator] of Object.entries(rolloutSchemas)) kinds.register(kind, validator)
  registerRoomKinds(kinds)
  return kinds
}

/** Opens the audit store of a data dir's db: shared by the daemon and offline commands. */
export async function openAuditStore (db: Level<string, Uint8Array>, identity: HostIdentity): Promise<AuditStore> {
  return AuditStore.open({ db: auditSublevel(db), privateKey: identity.privateKey, kinds: createNodeKindRegistry() })
}

export class MeshNode {
  readonly startedAt = Date.now()
  readonly metrics = new NodeMetrics()
  private redialTimer?: NodeJS.Timeout
  private stopping?: Promise<void>
  private readonly closers: Array<() => Promise<void> | void> = []
  readonly bootstrap: Set<string>
  libp2p!: MeshLibp2p
  sync!: AuditSync
  witness!: Witness
  pairing!: Pairing
  rooms!: Rooms
  /** absent where Nix is not installed: the host still meshes, it just applies nothing */
  deploy?: DeployAgent
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
    const log = opts.logger ?? pino({ name: 'fleetmesh', level: process.env.FLEETMESH_LOG_LEVEL ?? 'info' }, pino.destination(2))
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
      const db = new Level<string, Uint8Array>(paths.db, { valueEncoding: 'view' })
      await db.open()
      undo.unshift(async () => { await db.close() })
      const store = await openAuditStore(db, identity)
      undo.unshift(async () => { await store.close() })
      const meta = new MetaStore(db)
      const membership = await Membership.open(store, meta, identity.peerId.toString(), log)
      const node = new MeshNode(opts.dataDir, config, identity, db, store, meta, membership, log)
      node.closers.push(...undo.reverse())
      undo.length = 0
      try {
        await node.open(paths)
        if (opts.listen === undefined) await node.pinListenPorts(fileConfig)
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
  private async open (paths: ReturnType<typeof dataPaths>): Promise<void> {
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
    libp2p.addEventListener('peer:identify', (evt) => {
      const id = evt.detail.peerId.toString()
      if (!this.membership.isMember(id)) return
      const addrs = evt.detail.listenAddrs.map((a) => `${a.toString()}/p2p/${id}`)
      if (addrs.length > 0) void this.meta.setAddresses(id, addrs).catch(() => {})
    })
    this.membership.on('revoked', (peer) => {
      void libp2p.hangUp(peerIdFromString(peer)).catch(() => {})
    })

    this.sync = new AuditSync({ libp2p, store: this.store, logger: this.log, allowPeer: (peer: string) => this.membership.isMember(peer) })
    await this.sync.start()
    this.closers.push(async () => { await this.sync.stop() })
    this.witness = new Witness({ store: this.store })
    await this.witness.start()
    this.closers.push(() => { this.witness.stop() })

    this.pairing = new Pairing(libp2p, this.store, this.membership, this.identity, this.db, this.log, () => this.memberAddresses())
    await this.pairing.start()

    this.api = new ApiServer(await loadOrCreateToken(paths.apiToken), this.log)
    this.apiUrl = await this.api.listen(this.config.api.host, this.config.api.port)
    this.closers.push(async () => { await this.api.close() })
    registerCoreRoutes(this)
    this.rooms = await attachRooms({
      libp2p,
      store: this.store,
      identity: this.identity,
      membership: {
        isMember: (peer) => this.membership.isMember(peer),
        isAdmin: (peer) => this.membership.isAdmin(peer),
        xwingOf: (peer) => this.membership.view()?.members.get(peer)?.xwing
      },
      db: this.db,
      api: this.api,
      log: this.log
    })
    this.closers.push(async () => { await this.rooms.service.stop() })

    if (await nixInstalled()) {
      const deploy = new DeployAgent(this.peerId, this.store, this.sync, this.membership, libp2p, this.config.deploy, this.db, this.metrics, this.log)
      await deploy.start()
      this.deploy = deploy
      this.closers.push(async () => { await deploy.stop() })
    } else {
      this.log.warn('Nix is not installed: this host will not apply releases (apt-get install nix-bin)')
    }
    registerDeployRoutes(this)
    attachObservability(this)
    await writeEndpoint(paths.apiEndpoint, { url: this.apiUrl, pid: process.pid })
    this.closers.push(async () => { await fs.rm(paths.apiEndpoint, { force: true }) })

    this.startRedial()
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

  /** Bootstrap peers and known members are redialled while disconnected. */
  private startRedial (): void {
    const tick = (): void => { void this.redial().catch((err: Error) => { this.log.debug({ err: err.message }, 'redial failed') }) }
    tick()
    this.redialTimer = setInterval(tick, REDIAL_MS)
    this.redialTimer.unref()
  }

  /** Dials what should be connected and is not; `now` is exposed for after a join. */
  async redial (): Promise<void> {
    const connected = new Set(this.libp2p.getPeers().map(String))
    const targets: Multiaddr[] = []
    for (const a of this.bootstrap) {
      const ma = multiaddr(a)
      const id = peerIdOf(ma)
      if (id !== this.peerId && (id === undefined || !connected.has(id))) targets.push(ma)
    }
    const view = this.membership.view()
    if (view !== undefined) {
      const connectedMembers = [...connected].filter((p) => this.membership.isMember(p)).length
      let budget = TARGET_MEMBER_CONNECTIONS - connectedMembers
      const known = await this.meta.addresses()
      for (const [peer, addrs] of known) {
        if (budget <= 0) break
        if (peer === this.peerId || connected.has(peer) || !this.membership.isMember(peer)) continue
        targets.push(...addrs.map((a) => multiaddr(a)))
        budget--
      }
    }
    await Promise.all(targets.map(async (ma) => {
      await this.libp2p.dial(ma).catch((err: Error) => { this.log.debug({ addr: ma.toString(), err: err.message }, 'dial failed') })
    }))
  }

  /** `fleetmesh join`: pair through an invite code, adopt its mesh, catch up its log. */
  async join (code: string): Promise<JoinResult> {
    return this.pairing.join(code, (addrs) => {
      for (const a of addrs) this.bootstrap.add(a)
      // Syncs refused while this host was a stranger are retried now that it is trusted.
      void this.redial().then(async () => {
        for (const p of this.libp2p.getPeers()) await this.sync.syncWith(p).catch(() => {})
      })
    })
  }

  /** `fleetmesh grant`: an admin changes a member's role and/or tags. */
  async grant (peer: string, change: { role?: 'admin' | 'host', tags?: string[] }): Promise<{ peer: string, role?: string, tags?: string[] }> {
    if (!this.membership.isAdmin(this.peerId)) throw new NodeError('NOT_ADMIN', 'only admins may grant')
    if (!this.membership.isMember(peer)) throw new NodeError('API_NOT_FOUND', `${peer} is not a member`)
    if (change.role === undefined && change.tags === undefined) throw new NodeError('API_BAD_REQUEST', 'name a role or tags to grant')
    const body = { peer, ...(change.role !== undefined ? { role: change.role } : {}), ...(change.tags !== undefined ? { tags: change.tags } : {}) }
    await this.store.append('grant', body)
    return body
  }

  /** `fleetmesh revoke`: an admin's signed revoke; every host then hangs up on the peer. */
  async revoke (peer: string, reason?: string): Promise<{ peer: string, after: number }> {
    if (!this.membership.isAdmin(this.peerId)) throw new NodeError('NOT_ADMIN', 'only admins may revoke')
    const view = this.membership.view()
    if (view === undefined || (!view.members.has(peer) && !view.revoked.has(peer))) throw new NodeError('API_NOT_FOUND', `${peer} is not a member`)
    if (peer === this.peerId) throw new NodeError('API_BAD_REQUEST', 'a host cannot revoke itself')
    // Entries the peer wrote up to what this host holds keep their authority; later ones lose it.
    const after = this.store.head(peer)?.seq ?? -1
    await this.store.append('revoke', { peer, after, ...(reason !== undefined ? { reason } : {}) })
    return { peer, after }
  }

  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.redialTimer)
      for (const close of this.closers.reverse()) await close()
      this.log.info('node stopped')
    })()
    return this.stopping
  }
}
