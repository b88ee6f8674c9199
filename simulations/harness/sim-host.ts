// Many real mesh hosts in one process, for the rollout and partition scenarios: each has its
// own key, libp2p node (hybrid Noise, TCP on loopback, gossipsub), level store, audit sync,
// membership view and deploy agent — the daemon's own code. Only Nix is left out: a host's
// executor applies in zero time (zero-executor.ts), which is what these scenarios measure around.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { pino } from 'pino'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { ConnectionGater, Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { AuditStore, AuditSync, auditSublevel, type StoredEntry } from '../../protocols/audit/index.js'
import { decide, type RolloutState } from '../../protocols/rollout/index.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { DeployAgent, type Executor, type RolloutMembership } from '../../node/deploy/index.js'
import { createNodeKindRegistry } from '../../node/store.js'
import { MetaStore } from '../../node/meta.js'
import { Membership } from '../../node/membership.js'
import { ZeroTimeExecutor } from './zero-executor.js'

export interface SimHostOptions {
  dir: string
  key: Ed25519PrivateKey
  meshId: string
  founder: string
  /** refuse connections to these peers too (a network partition) */
  blocked?: () => Set<string>
  /** this host's apply fails (a bad canary) */
  failApply?: boolean
  /**
   * How long the agent waits to catch up with a member before deciding, at start and after it
   * lost every peer. Default 0: a simulated host starts with an empty log, never a stale one.
   */
  catchUpGraceMs?: number
  /** this host's wall clock, which stamps its entries (the chaos scenario skews it); default Date.now */
  now?: () => number
  /** the host's executor, which the caller keeps across restarts as a disk; default a new ZeroTimeExecutor per start */
  executor?: Executor
}

export class SimHost {
  readonly peerId: string
  libp2p!: MeshLibp2p
  store!: AuditStore
  sync!: AuditSync
  membership!: Membership
  agent!: DeployAgent
  /** release id → when this host first stored the release entry (ms) */
  readonly known = new Map<string, number>()
  /** release id → when this host applied it (ms) */
  readonly applied = new Map<string, number>()
  private db!: Level<string, Uint8Array>

  constructor (readonly opts: SimHostOptions) {
    this.peerId = peerIdFromPrivateKey(opts.key).toString()
  }

  /** the agent's rollout fold of this host's log */
  get rollout (): RolloutState { return this.agent.state }
  /** the membership facts this host's decisions read */
  get view (): RolloutMembership { return this.agent.view }

  async start (): Promise<void> {
    const log = pino({ level: 'silent' })
    this.db = new Level<string, Uint8Array>(this.opts.dir, { valueEncoding: 'view' })
    await this.db.open()
    this.store = await AuditStore.open({ db: auditSublevel(this.db), privateKey: this.opts.key, kinds: createNodeKindRegistry(), verifyThreads: 0, now: this.opts.now })
    const meta = new MetaStore(this.db)
    this.membership = await Membership.open(this.store, meta, this.peerId, log)
    if (this.membership.mesh() === undefined) {
      await this.membership.adopt({ meshId: this.opts.meshId, name: 'sim', founder: this.opts.founder, trusted: [this.opts.founder] })
    }
    const gate = this.membership.gater()
    const blocked = (p: PeerId): boolean => this.opts.blocked?.().has(p.toString()) ?? false
    const gater: ConnectionGater = {
      denyDialPeer: async (p) => blocked(p) || await gate.denyDialPeer!(p),
      denyInboundEncryptedConnection: async (p, c) => blocked(p) || await gate.denyInboundEncryptedConnection!(p, c),
      denyOutboundEncryptedConnection: async (p, c) => blocked(p) || await gate.denyOutboundEncryptedConnection!(p, c)
    }
    this.libp2p = await createMeshLibp2p({ privateKey: this.opts.key, listen: ['/ip4/127.0.0.1/tcp/0'], gater, gossipScore: (p) => this.membership.gossipScore(p) })
    this.sync = new AuditSync({ libp2p: this.libp2p, store: this.store, allowPeer: (p) => this.membership.isMember(p) })
    this.store.on('entry', (s: StoredEntry) => {
      const e = s.entry
      if (e.kind === 'release' && !this.known.has((e.body as { id: string }).id)) this.known.set((e.body as { id: string }).id, Date.now())
      if (e.kind === 'apply-ok' && e.feed === this.peerId) this.applied.set((e.body as { release: string }).release, Date.now())
    })
    this.agent = new DeployAgent(
      { self: this.peerId, store: this.store, catchUp: this.sync, peers: { connected: () => this.libp2p.getPeers().map(String) }, membership: this.membership, executor: this.opts.executor ?? new ZeroTimeExecutor(() => this.opts.failApply === true), log },
      { catchUpGraceMs: this.opts.catchUpGraceMs ?? 0 }
    )
    await this.agent.start()
    await this.sync.start()
  }

  address (): string {
    return this.libp2p.getMultiaddrs()[0].toString()
  }

  async dial (addr: string): Promise<void> {
    await this.libp2p.dial(multiaddr(addr)).catch(() => {})
  }

  /** Hangs up on peers that are now blocked (the partition just happened). */
  async cut (): Promise<void> {
    const blocked = this.opts.blocked?.() ?? new Set()
    await Promise.all(this.libp2p.getConnections().filter((c) => blocked.has(c.remotePeer.toString())).map(async (c) => { await c.close().catch(() => {}) }))
  }

  /** The decision as it stands, for comparing hosts after a partition heals. */
  desired (): string {
    const d = decide(this.rollout, this.view, this.peerId, Date.now(), { trace: false })
    return `${d.action}:${d.release ?? ''}`
  }

  /** `crash`: as kill -9 would, the agent is not waited for; its store closes under it. */
  async stop (crash = false): Promise<void> {
    const agent = this.agent.stop()
    if (!crash) await agent
    await this.sync.stop()
    await this.libp2p.stop()
    await this.store.close()
    await this.db.close()
  }
}

export interface SimMesh { hosts: SimHost[], founder: SimHost, dir: string, close: () => Promise<void> }

/**
 * N hosts: the founder writes the genesis and admits everyone (tag `web`), each host dials a
 * few random earlier ones, and the call returns once every host holds every admit.
 */
export async function createSimMesh (n: number, opts: { blocked?: (self: string) => Set<string>, failing?: (index: number) => boolean, links?: number, host?: (index: number) => Partial<SimHostOptions> } = {}): Promise<SimMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-sim-'))
  const keys = await Promise.all(Array.from({ length: n }, async () => generateKeyPair('Ed25519')))
  const founderId = peerIdFromPrivateKey(keys[0]).toString()
  const meshId = 'sim-mesh'
  const hosts = keys.map((key, i) => {
    const id = peerIdFromPrivateKey(key).toString()
    return new SimHost({ dir: join(dir, String(i)), key, meshId, founder: founderId, blocked: opts.blocked !== undefined ? () => opts.blocked!(id) : undefined, failApply: opts.failing?.(i), ...opts.host?.(i) })
  })
  for (const h of hosts) await h.start()
  const founder = hosts[0]
  await founder.store.append('genesis', { mesh: meshId, name: 'sim', founder: founderId })
  for (const h of hosts.slice(1)) await founder.store.append('admit', { peer: h.peerId, role: 'host', tags: ['web'] })
  await founder.store.append('grant', { peer: founderId, tags: ['web'] })
  // Everyone first learns the member set from the founder (the only peer it trusts before
  // that); only then do hosts link to random others, as members of one another.
  await Promise.all(hosts.slice(1).map(async (h) => { await h.dial(founder.address()) }))
  const until = Date.now() + 120_000
  while (hosts.some((h) => (h.membership.view()?.members.size ?? 0) < n)) {
    if (Date.now() > until) throw new Error('the simulated mesh did not converge on its members in 120 s')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const links = opts.links ?? 4
  for (const [i, h] of hosts.entries()) {
    const blocked = opts.blocked?.(h.peerId)
    const others = hosts.filter((x, j) => j !== i && j !== 0 && blocked?.has(x.peerId) !== true)
    for (let k = 0; k < links - 1 && others.length > 0; k++) {
      await h.dial(others.splice(Math.floor(Math.random() * others.length), 1)[0].address())
    }
  }
  return {
    hosts,
    founder,
    dir,
    close: async () => {
      for (const h of hosts) await h.stop().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}
