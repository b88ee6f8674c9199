// When a member host asks other members for the history it missed: at start (members may have
// reconnected before the service listened), when a member host connects, when this host joins a
// room, and every ANTI_ENTROPY_MS with one random member per room, so a message that gossip and
// those catch-ups all missed (a race at start, a lost frame) still arrives.
import type { PeerId } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { HISTORY_PROTOCOL } from './codec.js'
import type { HistoryProtocol } from './history-protocol.js'
import { memberHosts, type Room } from './state.js'
import type { RoomLogger } from './types.js'

/** How often each room's recent history is reconciled with one random member. */
const ANTI_ENTROPY_MS = 10_000
// A returning host asks for messages a little older than its newest one: senders' clocks differ.
const CATCHUP_MARGIN_MS = 10 * 60_000

export interface CatchUpComponents {
  me: string
  libp2p: Pick<Libp2p, 'getPeers' | 'addEventListener' | 'removeEventListener'>
  protocol: Pick<HistoryProtocol, 'fetch'>
  rooms: () => Iterable<Room>
  room: (id: string) => Room | undefined
  /** ts of the newest frame this host keeps in a room */
  latestTs: (room: string) => Promise<number>
  /** takes in one batch of fetched frames; returns how many were new */
  take: (room: string, frames: Uint8Array[]) => Promise<number>
  log?: RoomLogger
}

export class CatchUp {
  private readonly c: CatchUpComponents
  private antiEntropy: NodeJS.Timeout | undefined

  constructor (components: CatchUpComponents) {
    this.c = components
  }

  start (): void {
    this.c.libp2p.addEventListener('peer:identify', this.onIdentify)
    void this.all().then(
      (n) => { if (n > 0) this.c.log?.info({ messages: n }, 'rooms: caught up from history at start') },
      (err: Error) => this.c.log?.warn({ err: err.message }, 'rooms: catch-up at start failed'))
    this.antiEntropy = setInterval(() => { void this.reconcile() }, ANTI_ENTROPY_MS)
    this.antiEntropy.unref()
  }

  stop (): void {
    clearInterval(this.antiEntropy)
    this.c.libp2p.removeEventListener('peer:identify', this.onIdentify)
  }

  /** Fetches missed messages of one room (or every room of this host) from connected members. */
  async all (id?: string): Promise<number> {
    const ids = id !== undefined ? [id] : [...this.c.rooms()].map(r => r.id)
    let got = 0
    for (const rid of ids) {
      const room = this.c.room(rid)
      if (room === undefined || !memberHosts(room).includes(this.c.me)) continue
      const hosts = new Set(memberHosts(room))
      const peers = this.c.libp2p.getPeers().filter(p => hosts.has(p.toString()))
      const results = await Promise.allSettled(peers.map(async p => this.fetch(rid, p)))
      for (const r of results) if (r.status === 'fulfilled') got += r.value
    }
    return got
  }

  /** Asks one member for a room's frames and takes in the new ones; returns how many. */
  async fetch (id: string, peer: PeerId): Promise<number> {
    const since = Math.max(0, await this.c.latestTs(id) - CATCHUP_MARGIN_MS)
    let got = 0
    await this.c.protocol.fetch(id, peer, since, async (frames) => { got += await this.c.take(id, frames) })
    return got
  }

  private async reconcile (): Promise<void> {
    const connected = this.c.libp2p.getPeers()
    for (const room of this.c.rooms()) {
      const hosts = memberHosts(room)
      if (!hosts.includes(this.c.me)) continue
      const peers = connected.filter(p => p.toString() !== this.c.me && hosts.includes(p.toString()))
      const peer = peers[Math.floor(Math.random() * peers.length)]
      if (peer === undefined) continue
      await this.fetch(room.id, peer).then(
        (n) => { if (n > 0) this.c.log?.info({ room: room.id, peer: peer.toString(), messages: n }, 'rooms: anti-entropy recovered messages') },
        (err: Error) => this.c.log?.debug({ room: room.id, peer: peer.toString(), err: err.message }, 'rooms: anti-entropy fetch failed'))
    }
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (!evt.detail.protocols.includes(HISTORY_PROTOCOL)) return
    const peer = evt.detail.peerId.toString()
    for (const room of this.c.rooms()) {
      const hosts = memberHosts(room)
      if (hosts.includes(this.c.me) && hosts.includes(peer)) {
        void this.fetch(room.id, evt.detail.peerId).then(
          (n) => { if (n > 0) this.c.log?.info({ room: room.id, peer, messages: n }, 'rooms: caught up from history') },
          (err: Error) => this.c.log?.warn({ room: room.id, peer, err: err.message }, 'rooms: history fetch failed'))
      }
    }
  }
}
