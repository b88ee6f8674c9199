// The composition root of a host: identity, store, libp2p and the control API, opened and
// closed in one order. Features (audit chain, membership, deploys, rooms) attach here.
import { Level } from 'level'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { pino, type Logger } from 'pino'
import { loadIdentity, type HostIdentity } from '../crypto/identity.js'
import { readConfig, dataPaths, type NodeConfig } from './config.js'
import { lockDataDir, type DataDirLock } from './lock.js'
import { createMeshLibp2p, type MeshLibp2p } from './libp2p.js'
import { ApiServer, loadOrCreateToken, writeEndpoint } from './api.js'
import { promises as fs } from 'node:fs'

export const VERSION = '0.1.0'
const REDIAL_MS = 5_000

/** The /p2p/ID component of an address, if it has one. */
export function peerIdOf (ma: Multiaddr): string | undefined {
  return ma.getComponents().findLast((c) => c.name === 'p2p')?.value
}

export interface MeshNodeOptions {
  dataDir: string
  /** overrides of the config file, from the command line */
  listen?: string[]
  bootstrap?: string[]
  logger?: Logger
}

export interface PeerInfo {
  peerId: string
  addresses: string[]
  direction: string
  encryption: string | null
  rttMs: number | null
}

export interface NodeStatus {
  version: string
  peerId: string
  addresses: string[]
  dataDir: string
  startedAt: number
  connectedPeers: number
}

export class MeshNode {
  readonly startedAt = Date.now()
  private redialTimer?: NodeJS.Timeout
  private stopping?: Promise<void>

  private constructor (
    readonly dataDir: string,
    readonly config: NodeConfig,
    readonly identity: HostIdentity,
    readonly db: Level<string, Uint8Array>,
    readonly libp2p: MeshLibp2p,
    readonly api: ApiServer,
    readonly log: Logger,
    private readonly lock: DataDirLock,
    readonly apiUrl: string
  ) {}

  static async start (opts: MeshNodeOptions): Promise<MeshNode> {
    const paths = dataPaths(opts.dataDir)
    const log = opts.logger ?? pino({ name: 'fleetmesh' }, pino.destination(2))
    const fileConfig = await readConfig(opts.dataDir)
    const config: NodeConfig = {
      ...fileConfig,
      listen: opts.listen ?? fileConfig.listen,
      bootstrap: [...fileConfig.bootstrap, ...(opts.bootstrap ?? [])]
    }
    const lock = await lockDataDir(paths.lock, opts.dataDir)
    const opened: Array<() => Promise<void>> = [lock.release]
    try {
      const identity = await loadIdentity(paths.identity)
      const db = new Level<string, Uint8Array>(paths.db, { valueEncoding: 'view' })
      await db.open()
      opened.unshift(async () => { await db.close() })
      const libp2p = await createMeshLibp2p({ privateKey: identity.privateKey, listen: config.listen })
      opened.unshift(async () => { await libp2p.stop() })
      const api = new ApiServer(await loadOrCreateToken(paths.apiToken), log)
      const apiUrl = await api.listen(config.api.host, config.api.port)
      opened.unshift(async () => { await api.close() })
      const node = new MeshNode(opts.dataDir, config, identity, db, libp2p, api, log, lock, apiUrl)
      node.registerRoutes()
      await writeEndpoint(paths.apiEndpoint, { url: apiUrl, pid: process.pid })
      node.startRedial()
      log.info({ peer: identity.peerId.toString(), addresses: node.addresses(), api: apiUrl }, 'node started')
      return node
    } catch (err) {
      for (const close of opened) await close().catch(() => {})
      throw err
    }
  }

  addresses (): string[] {
    return this.libp2p.getMultiaddrs().map(String)
  }

  status (): NodeStatus {
    return {
      version: VERSION,
      peerId: this.identity.peerId.toString(),
      addresses: this.addresses(),
      dataDir: this.dataDir,
      startedAt: this.startedAt,
      connectedPeers: this.libp2p.getPeers().length
    }
  }

  peers (): PeerInfo[] {
    const byPeer = new Map<string, PeerInfo>()
    for (const c of this.libp2p.getConnections()) {
      const id = c.remotePeer.toString()
      const info = byPeer.get(id) ?? { peerId: id, addresses: [], direction: c.direction, encryption: c.encryption ?? null, rttMs: c.rtt ?? null }
      info.addresses.push(c.remoteAddr.toString())
      byPeer.set(id, info)
    }
    return [...byPeer.values()].sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  private registerRoutes (): void {
    this.api.route('GET', '/v1/status', async () => this.status())
    this.api.route('GET', '/v1/peers', async () => this.peers())
  }

  /** Bootstrap peers are redialled while disconnected, so a restarted peer is found again. */
  private startRedial (): void {
    const targets: Multiaddr[] = this.config.bootstrap.map((a) => multiaddr(a))
    if (targets.length === 0) return
    const tick = (): void => {
      for (const ma of targets) {
        const id = peerIdOf(ma)
        if (id != null && id === this.identity.peerId.toString()) continue
        if (id != null && this.libp2p.getPeers().some((p) => p.toString() === id)) continue
        this.libp2p.dial(ma).catch((err: Error) => {
          this.log.debug({ addr: ma.toString(), err: err.message }, 'bootstrap dial failed')
        })
      }
    }
    tick()
    this.redialTimer = setInterval(tick, REDIAL_MS)
    this.redialTimer.unref()
  }

  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.redialTimer)
      await fs.rm(dataPaths(this.dataDir).apiEndpoint, { force: true })
      await this.api.close()
      await this.libp2p.stop()
      await this.db.close()
      await this.lock.release()
      this.log.info('node stopped')
    })()
    return this.stopping
  }
}
