// Keeps a host in its mesh: bootstrap peers and a few known members are redialled while
// disconnected. Gossip reaches the rest of the fleet through them. Members' addresses are
// learnt as they connect and kept in the meta store, so a restart finds the mesh again with
// no bootstrap flag; a host that can reach no member says so (status, a warning in its log).
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import type { MeshLibp2p } from './libp2p.js'
import type { Membership } from './membership.js'
import { MAX_ADDRS_PER_PEER, type MetaStore } from './meta.js'

const REDIAL_MS = 5_000
/** Members this host keeps connections to beyond its bootstrap peers; gossip does the rest. */
const TARGET_MEMBER_CONNECTIONS = 8
/** Strangers' addresses held until the log admits them (one per connected stranger, rate-limited by the gate). */
const MAX_PENDING = 256
const IDENTIFY_TIMEOUT_MS = 10_000
/** An address book ordered by when each member was last seen, to within this. */
const SEEN_REFRESH_MS = 3_600_000

/** What to do when no member answers: in the log and in `fleetmesh status`. */
export const UNREACHABLE_HINT = 'check the network, or restart with "fleetmesh start --bootstrap ADDR" naming a member\'s address ("fleetmesh status" on a member lists them)'

/** Set while this host knows other members but is connected to none of them. */
export interface MeshUnreachable {
  since: number
  /** addresses dialled in the last round (0: none known) */
  addressesTried: number
}

/** The /p2p/ID component of an address, if it has one. */
function peerIdOf (ma: Multiaddr): string | undefined {
  return ma.getComponents().findLast((c) => c.name === 'p2p')?.value
}

/** Addresses as a dialer needs them: ending in the peer's /p2p/ID. */
export function withPeerId (peer: string, addrs: string[]): string[] {
  return addrs.map((a) => a.endsWith(`/p2p/${peer}`) ? a : `${a}/p2p/${peer}`)
}

export interface RedialComponents {
  self: string
  libp2p: Pick<MeshLibp2p, 'dial' | 'getPeers' | 'getConnections' | 'services'>
  membership: Pick<Membership, 'isMember' | 'isRevoked' | 'view' | 'revocation'>
  meta: Pick<MetaStore, 'addresses' | 'setAddresses' | 'dropAddresses'>
  /** live: a join adds the addresses its inviter handed over */
  bootstrap: ReadonlySet<string>
  log: Logger
}

export class Redialer {
  private timer?: NodeJS.Timeout
  private unreachable: MeshUnreachable | null = null
  /** what the meta store holds, so an unchanged address list is written again only to say it was seen */
  private readonly saved = new Map<string, { key: string, at: number }>()
  /** where peers not (yet) members said they listen: kept if the log admits them while connected */
  private readonly pending = new Map<string, string[]>()

  constructor (private readonly c: RedialComponents) {}

  async start (): Promise<void> {
    for (const [peer, addrs] of await this.c.meta.addresses()) {
      if (this.c.membership.isRevoked(peer)) await this.c.meta.dropAddresses(peer)
      else this.saved.set(peer, { key: [...addrs].sort().join(' '), at: 0 })
    }
    const tick = (): void => { void this.redial().catch((err: Error) => { this.c.log.debug({ err: err.message }, 'redial failed') }) }
    tick()
    this.timer = setInterval(tick, REDIAL_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  meshUnreachable (): MeshUnreachable | null {
    if (this.c.membership.revocation() !== null) return null
    // a member that dialled in since the last round of dials makes the mesh reachable now, not
    // only once the next round judges it
    if (this.unreachable !== null && this.memberConnected()) this.judge(this.unreachable.addressesTried)
    return this.unreachable
  }

  private memberConnected (): boolean {
    return this.c.libp2p.getPeers().some((p) => this.c.membership.isMember(p.toString()))
  }

  /**
   * Keeps where a member listens (addresses with /p2p/ID). A peer not a member yet (a joiner
   * pairing) is held in memory only, for rememberConnected once the log admits it.
   */
  async remember (peer: string, addrs: string[]): Promise<void> {
    const { self, membership, meta } = this.c
    if (peer === self || addrs.length === 0) return
    if (!membership.isMember(peer)) {
      this.pending.delete(peer)
      this.pending.set(peer, addrs.slice(0, MAX_ADDRS_PER_PEER))
      for (const old of this.pending.keys()) if (this.pending.size > MAX_PENDING) this.pending.delete(old)
      return
    }
    this.pending.delete(peer)
    addrs = [...new Set(addrs)]
    const key = [...addrs].sort().join(' ')
    const now = Date.now()
    const held = this.saved.get(peer)
    if (held !== undefined && held.key === key && now - held.at < SEEN_REFRESH_MS) return
    this.saved.set(peer, { key, at: now })
    await meta.setAddresses(peer, addrs, now)
    if (held?.key !== key) this.c.log.debug({ peer, addrs }, 'member addresses kept')
  }

  /** Addresses handed over by an inviter: those of peers already trusted as members are kept. */
  async rememberBootstrap (addrs: string[]): Promise<void> {
    const byPeer = new Map<string, string[]>()
    for (const a of addrs) {
      const peer = peerIdOf(multiaddr(a))
      if (peer !== undefined) byPeer.set(peer, [...byPeer.get(peer) ?? [], a])
    }
    // Others' addresses as the inviter saw them may be ports of its inbound connections: a
    // member not yet known here is kept from its own identify once it connects.
    for (const [peer, list] of byPeer) if (this.c.membership.isMember(peer)) await this.remember(peer, list)
  }

  /** A peer connected before the log showed it a member (a joiner, an inviter) is kept once it is one. */
  async rememberConnected (): Promise<void> {
    const { self, libp2p, membership } = this.c
    for (const conn of libp2p.getConnections()) {
      const peer = conn.remotePeer.toString()
      if (peer === self || this.saved.has(peer) || conn.status !== 'open' || !membership.isMember(peer)) continue
      const held = this.pending.get(peer)
      if (held !== undefined) {
        await this.remember(peer, held)
        continue
      }
      // A peer that came in as a stranger was not always identified (libp2p identifies once,
      // and a joiner's pairing dial may precede it): ask it where it listens now.
      this.saved.set(peer, { key: '', at: Date.now() })
      const r = await libp2p.services.identify.identify(conn, { signal: AbortSignal.timeout(IDENTIFY_TIMEOUT_MS) }).catch(() => undefined)
      this.saved.delete(peer)
      if (r !== undefined) await this.remember(peer, withPeerId(peer, r.listenAddrs.map(String)))
    }
  }

  async forget (peer: string): Promise<void> {
    this.saved.delete(peer)
    await this.c.meta.dropAddresses(peer)
  }

  /** Dials what should be connected and is not; called out of turn after a join. */
  async redial (): Promise<void> {
    const { self, libp2p, membership, log } = this.c
    // An identify that failed when a member was admitted is retried here.
    await this.rememberConnected()
    const connected = new Set(libp2p.getPeers().map(String))
    const targets: Multiaddr[] = []
    for (const a of this.c.bootstrap) {
      const ma = multiaddr(a)
      const id = peerIdOf(ma)
      if (id !== self && (id === undefined || !connected.has(id))) targets.push(ma)
    }
    const view = membership.view()
    // A revoked host is refused by every member: its status says so (membership.revocation).
    if (view === undefined || membership.revocation() !== null) return
    const connectedMembers = [...connected].filter((p) => membership.isMember(p)).length
    let budget = TARGET_MEMBER_CONNECTIONS - connectedMembers
    const known = await this.c.meta.addresses()
    for (const [peer, addrs] of known) {
      if (budget <= 0) break
      if (peer === self || connected.has(peer) || !membership.isMember(peer)) continue
      targets.push(...addrs.map((a) => multiaddr(a)))
      budget--
    }
    await Promise.all(targets.map(async (ma) => {
      await libp2p.dial(ma).catch((err: Error) => { log.debug({ addr: ma.toString(), err: err.message }, 'dial failed') })
    }))
    this.judge(targets.length)
  }

  /** After a round of dials: is any member reachable, when there are others to reach? */
  private judge (tried: number): void {
    const { self, membership, log } = this.c
    const view = membership.view()
    if (view === undefined) return
    const others = [...view.members.keys()].filter((p) => p !== self).length
    if (this.memberConnected() || (others === 0 && tried === 0)) {
      if (this.unreachable !== null) log.info({ unreachableSince: new Date(this.unreachable.since).toISOString() }, 'a member of the mesh is reachable again')
      this.unreachable = null
      return
    }
    if (this.unreachable === null) {
      this.unreachable = { since: Date.now(), addressesTried: tried }
      log.warn({ members: others, addressesTried: tried }, `no member of the mesh is reachable: ${UNREACHABLE_HINT}`)
    } else {
      this.unreachable.addressesTried = tried
    }
  }
}
