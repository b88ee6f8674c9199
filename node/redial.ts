// Keeps a host in its mesh: bootstrap peers and a few known members are redialled while
// disconnected. Gossip reaches the rest of the fleet through them.
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import type { MeshLibp2p } from './libp2p.js'
import type { Membership } from './membership.js'
import type { MetaStore } from './meta.js'

const REDIAL_MS = 5_000
/** Members this host keeps connections to beyond its bootstrap peers; gossip does the rest. */
const TARGET_MEMBER_CONNECTIONS = 8

/** The /p2p/ID component of an address, if it has one. */
function peerIdOf (ma: Multiaddr): string | undefined {
  return ma.getComponents().findLast((c) => c.name === 'p2p')?.value
}

export interface RedialComponents {
  self: string
  libp2p: Pick<MeshLibp2p, 'dial' | 'getPeers'>
  membership: Pick<Membership, 'isMember' | 'view'>
  meta: Pick<MetaStore, 'addresses'>
  /** live: a join adds the addresses its inviter handed over */
  bootstrap: ReadonlySet<string>
  log: Logger
}

export class Redialer {
  private timer?: NodeJS.Timeout

  constructor (private readonly c: RedialComponents) {}

  start (): void {
    const tick = (): void => { void this.redial().catch((err: Error) => { this.c.log.debug({ err: err.message }, 'redial failed') }) }
    tick()
    this.timer = setInterval(tick, REDIAL_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** Dials what should be connected and is not; called out of turn after a join. */
  async redial (): Promise<void> {
    const { self, libp2p, membership, log } = this.c
    const connected = new Set(libp2p.getPeers().map(String))
    const targets: Multiaddr[] = []
    for (const a of this.c.bootstrap) {
      const ma = multiaddr(a)
      const id = peerIdOf(ma)
      if (id !== self && (id === undefined || !connected.has(id))) targets.push(ma)
    }
    if (membership.view() !== undefined) {
      const connectedMembers = [...connected].filter((p) => membership.isMember(p)).length
      let budget = TARGET_MEMBER_CONNECTIONS - connectedMembers
      const known = await this.c.meta.addresses()
      for (const [peer, addrs] of known) {
        if (budget <= 0) break
        if (peer === self || connected.has(peer) || !membership.isMember(peer)) continue
        targets.push(...addrs.map((a) => multiaddr(a)))
        budget--
      }
    }
    await Promise.all(targets.map(async (ma) => {
      await libp2p.dial(ma).catch((err: Error) => { log.debug({ addr: ma.toString(), err: err.message }, 'dial failed') })
    }))
  }
}
