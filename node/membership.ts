// Membership on a running host: keeps the member view (a pure fold of the audit log) current,
// turns it into the connection gate and the gossip score, reports revoked peers for the node to
// hang up on, and signs an admin's grants and revokes. The decisions themselves live in
// protocols/membership.
import { EventEmitter } from 'node:events'
import type { Connection, ConnectionGater, PeerId } from '@libp2p/interface'
import type { MultiaddrConnection } from '@libp2p/interface'
import type { Logger } from 'pino'
import type { AuditStore, StoredEntry } from '../protocols/audit/index.js'
import { applyEntry, createMembershipState, isAdmin, isMember, standingAt, viewAsOf, viewOf, type MemberView, type MembershipState, type Role, type Standing } from '../protocols/membership/index.js'
import { PeerBudget } from '../protocols/budget.js'
import { NodeError } from './errors.js'
import { resolveHost, type NamedHost } from './host-names.js'
import type { MeshMeta, MetaStore, Revocation } from './meta.js'

export const MEMBERSHIP_KINDS = ['genesis', 'admit', 'grant', 'revoke'] as const
/** How long a stranger may stay connected to run the pairing protocol. */
export const STRANGER_DEADLINE_MS = 15_000
/**
 * gossipsub score of a non-member (times the default app weight of 10: -60). Below the publish
 * (-50) and gossip (-10) thresholds, so nothing is sent to it and it is never grafted; above
 * the graylist (-80), so its subscriptions are still recorded: a stranger that is admitted a
 * moment later receives gossip at once instead of being ignored for the life of the
 * connection. What it publishes is dropped by the topics' own membership validators.
 */
const NON_MEMBER_SCORE = -6

/** The membership entries `store` holds, folded for the mesh `meta` names. */
async function foldLog (store: Pick<AuditStore, 'log'>, meta: MeshMeta): Promise<MembershipState> {
  const state = createMembershipState({ meshId: meta.meshId, founder: meta.founder })
  for (const kind of MEMBERSHIP_KINDS) {
    for await (const s of store.log({ kind })) applyEntry(state, s.entry)
  }
  return state
}

/** Members and revoked hosts with their names, from a store no daemon runs on (`audit log` offline). */
export async function storedHosts (store: Pick<AuditStore, 'log'>, meta: MeshMeta | undefined): Promise<NamedHost[]> {
  return meta === undefined ? [] : namedHosts(viewOf(await foldLog(store, meta)))
}

function namedHosts (view: MemberView): NamedHost[] {
  const host = (peer: string, name: string | undefined, revoked: boolean): NamedHost => ({ peer, ...(name !== undefined ? { name } : {}), ...(revoked ? { revoked } : {}) })
  return [...[...view.members].map(([peer, m]) => host(peer, m.name, false)), ...[...view.revoked].map(([peer, r]) => host(peer, r.name, true))]
}

interface MembershipEvents {
  changed: [MemberView]
  revoked: [string]
}

export class Membership extends EventEmitter<MembershipEvents> {
  private state: MembershipState | undefined
  private meta: MeshMeta | undefined
  private readonly strangerLimiter = new PeerBudget({ limits: { maxBytes: 1, burst: 10, perSecond: 0.5 }, label: 'stranger connections', maxPeers: 10_000 })
  readonly lastSeen = new Map<string, number>()
  private revokedSeen = new Set<string>()
  /** a revoke of this host shown by a member, when the log could not take the entry in */
  private notice: Revocation | undefined

  private constructor (
    private readonly store: AuditStore,
    private readonly metaStore: MetaStore,
    readonly self: string,
    private readonly log: Logger
  ) {
    super()
  }

  static async open (store: AuditStore, metaStore: MetaStore, self: string, log: Logger): Promise<Membership> {
    const m = new Membership(store, metaStore, self, log)
    // Subscribed before the scan so an entry landing during it is not missed; one the scan
    // also reads is applied once, since applyEntry ignores an entry it already holds.
    store.on('entry', (s) => { m.onEntry(s) })
    const meta = await metaStore.mesh()
    if (meta !== undefined) await m.adopt(meta)
    m.notice = await metaStore.revocation()
    const revoked = m.revocation()
    if (revoked !== null) m.warnRevoked(revoked)
    return m
  }

  /** Joins this host to a mesh (after init --mesh or a successful pairing) and folds the log. */
  async adopt (meta: MeshMeta): Promise<void> {
    await this.metaStore.setMesh(meta)
    this.meta = meta
    this.state = await foldLog(this.store, meta)
    this.revokedSeen = new Set(viewOf(this.state).revoked.keys())
    this.emit('changed', viewOf(this.state))
  }

  private onEntry (s: StoredEntry): void {
    if (this.state === undefined || !applyEntry(this.state, s.entry)) return
    const view = viewOf(this.state)
    for (const peer of view.revoked.keys()) {
      if (this.revokedSeen.has(peer)) continue
      this.revokedSeen.add(peer)
      if (peer === this.self) this.warnRevoked(view.revoked.get(peer)!)
      else this.log.warn({ peer }, 'member revoked')
      this.emit('revoked', peer)
    }
    this.emit('changed', view)
  }

  mesh (): MeshMeta | undefined { return this.meta }

  /** This host's own name, as `init --name` or `join --name` stored it. */
  async hostName (): Promise<string | undefined> { return this.metaStore.hostName() }
  async setHostName (name: string): Promise<void> { await this.metaStore.setHostName(name) }

  /** Members and revoked hosts with their names: what a command naming a host chooses among. */
  hosts (): NamedHost[] {
    const view = this.view()
    return view === undefined ? [] : namedHosts(view)
  }

  /** The peer id a command's host argument means (node/host-names.ts resolveHost). */
  resolveHost (text: string): string {
    return resolveHost(this.hosts(), text)
  }

  view (): MemberView | undefined {
    return this.state === undefined ? undefined : viewOf(this.state)
  }

  /**
   * Members per the log. Until this host's copy of the log shows itself admitted (right after
   * pairing), the inviter it paired with is trusted so the log can reach it at all.
   */
  isMember (peer: string): boolean {
    const view = this.view()
    if (view === undefined) return false
    if (view.revoked.has(peer)) return false
    if (isMember(view, peer)) return true
    return !isMember(view, this.self) && (this.meta?.trusted.includes(peer) ?? false)
  }

  isAdmin (peer: string): boolean {
    const view = this.view()
    return view !== undefined && isAdmin(view, peer)
  }

  /** The author's standing as of one of its entries (DESIGN §8); nothing before a mesh is adopted. */
  standingAt (feed: string, seq: number, ts: number): Standing {
    return this.state === undefined ? { member: false, admin: false } : standingAt(this.state, feed, seq, ts)
  }

  /**
   * A release's basis: feed → head seq of every feed holding membership entries (genesis, admit,
   * grant, revoke), as this store holds them now. A plan resolved against it is the same on
   * every host that holds those entries, whatever arrives later.
   */
  basis (): Record<string, number> {
    const basis: Record<string, number> = {}
    for (const r of this.state?.records.values() ?? []) basis[r.feed] ??= this.store.head(r.feed)?.seq ?? r.seq
    return basis
  }

  /** The member view folded from exactly the entries of `basis`; undefined while this store lacks some of them. */
  viewAsOf (basis: Readonly<Record<string, number>>): MemberView | undefined {
    if (this.state === undefined) return undefined
    for (const [feed, seq] of Object.entries(basis)) if ((this.store.head(feed)?.seq ?? -1) < seq) return undefined
    return viewAsOf(this.state, basis)
  }

  /** Whether and how this host was revoked: from its own log, else from a member's notice. */
  revocation (): (Revocation & { source: 'log' | 'notice' }) | null {
    const logged = this.view()?.revoked.get(this.self)
    if (logged !== undefined) return { ...logged, source: 'log' }
    return this.notice === undefined ? null : { ...this.notice, source: 'notice' }
  }

  /** A checked revoke of this host that a member showed it before hanging up (node/revocation.ts). */
  async noteRevocation (r: Revocation): Promise<void> {
    if (this.revocation() !== null) return
    await this.metaStore.setRevocation(r)
    this.notice = r
    this.warnRevoked(r)
  }

  private warnRevoked (r: Revocation): void {
    this.log.warn({ by: r.by, at: new Date(r.at).toISOString(), reason: r.reason }, 'this host was revoked from the mesh: members refuse its connections; to rejoin, init a fresh data dir (a new identity) and join with a new invite')
  }

  isRevoked (peer: string): boolean {
    return this.view()?.revoked.has(peer) ?? false
  }

  gossipScore (peer: string): number {
    return this.isMember(peer) ? 0 : NON_MEMBER_SCORE
  }

  /**
   * The gate: members pass; revoked peers never do; a stranger is let in only to pair, only
   * inbound, rate-limited per address, and is hung up on after STRANGER_DEADLINE_MS unless
   * it has become a member by then (see watchStranger).
   */
  gater (): ConnectionGater {
    return {
      denyDialPeer: (peer: PeerId) => this.isRevoked(peer.toString()),
      denyInboundEncryptedConnection: (peer: PeerId, maConn: MultiaddrConnection) => {
        const id = peer.toString()
        if (this.isRevoked(id)) return true
        if (this.isMember(id)) return false
        const ip = maConn.remoteAddr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value ?? 'unknown'
        const refused = !this.strangerLimiter.take(ip)
        if (refused) this.log.warn({ peer: id, ip }, 'gate: stranger rate-limited')
        return refused
      },
      denyOutboundEncryptedConnection: (peer: PeerId) => this.isRevoked(peer.toString())
    }
  }

  /** `fleetmesh grant`: an admin changes a member's role and/or tags. */
  async grant (peer: string, change: { role?: Role, tags?: string[] }): Promise<{ peer: string, role?: Role, tags?: string[] }> {
    if (!this.isAdmin(this.self)) throw new NodeError('NOT_ADMIN', 'only admins may grant')
    if (!this.isMember(peer)) throw new NodeError('API_NOT_FOUND', `${peer} is not a member`)
    if (change.role === undefined && change.tags === undefined) throw new NodeError('API_BAD_REQUEST', 'name a role or tags to grant')
    const body = { peer, ...(change.role !== undefined ? { role: change.role } : {}), ...(change.tags !== undefined ? { tags: change.tags } : {}) }
    await this.store.append('grant', body)
    return body
  }

  /** `fleetmesh revoke`: an admin's signed revoke; every host then hangs up on the peer. */
  async revoke (peer: string, reason?: string): Promise<{ peer: string, after: number }> {
    if (!this.isAdmin(this.self)) throw new NodeError('NOT_ADMIN', 'only admins may revoke')
    const view = this.view()
    if (view === undefined || (!view.members.has(peer) && !view.revoked.has(peer))) throw new NodeError('API_NOT_FOUND', `${peer} is not a member`)
    if (peer === this.self) throw new NodeError('API_BAD_REQUEST', 'a host cannot revoke itself')
    // Entries the peer wrote up to what this host holds keep their authority; later ones lose it.
    const after = this.store.head(peer)?.seq ?? -1
    await this.store.append('revoke', { peer, after, ...(reason !== undefined ? { reason } : {}) })
    return { peer, after }
  }

  /** Called for every new connection: strangers get a deadline to finish pairing. */
  watchConnection (conn: Connection, hangUp: (conn: Connection) => void): void {
    const id = conn.remotePeer.toString()
    this.lastSeen.set(id, Date.now())
    if (this.isMember(id)) return
    const timer = setTimeout(() => {
      if (!this.isMember(id) && conn.status === 'open') {
        this.log.info({ peer: id }, 'gate: closing a stranger\'s connection at its pairing deadline')
        hangUp(conn)
      }
    }, STRANGER_DEADLINE_MS)
    timer.unref()
  }
}
