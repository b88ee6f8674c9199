// Encrypted rooms on the mesh (docs/architecture.md, rooms). Membership and sealed epoch keys live in the audit
// log (so they replicate with it and a host back from downtime gets them on catch-up); messages
// travel on one gossipsub topic per room, are verified, decrypted, de-duplicated and kept in a
// bounded history in level; a member that missed messages fetches them from any other member
// over a request/response protocol that serves ciphertext only.
//
// This service folds the log into rooms and coordinates the parts that act on them: the
// history store (history-store.ts), this host's epoch keys (epoch-keys.ts), the writer of
// membership changes (changes.ts), the history protocol (history-protocol.ts), when to fetch
// history (catch-up.ts), the rekey of stale rooms (repairs.ts), frames waiting for their room
// (pending.ts), the room topics (topics.ts), the checks every received frame goes through
// (intake.ts), when each epoch ended here (epoch-ends.ts) and the per-peer budgets
// (budgets.ts); views.ts says what a room looks like from here.
//
// Relaying: by default every host subscribes to the topic of every room it knows of, member or
// not, and forwards its frames. Gossipsub only forwards a topic among its subscribers, so a room
// whose member hosts are not directly connected (a mesh keeps ~8 connections per host) would
// otherwise never deliver. A relay sees ciphertext and headers only; who is in a room is in the
// replicated log already. Per-room counters (stats()) show what a host received and refused.
import { EventEmitter, on } from 'node:events'
import type { PeerId } from '@libp2p/interface'
import { encryptRoomMessage, signingBytes } from '../../crypto/room-cipher.js'
import { createSigner, type Signer } from '../../crypto/sign.js'
import type { StoredEntry } from '../audit/index.js'
import { ROOM_KINDS, checkMember, decodeFrame, encodeFrame, memberId, type HistoryMode, type RoomMember, type SignedRoomMessage } from './codec.js'
import { gossipPenalty, RoomBudgets } from './budgets.js'
import { CatchUp } from './catch-up.js'
import { RoomChanges } from './changes.js'
import { EpochEnds } from './epoch-ends.js'
import { EpochKeys } from './epoch-keys.js'
import { RoomError } from './errors.js'
import { HistoryProtocol } from './history-protocol.js'
import { HistoryStore } from './history-store.js'
import { openText, RoomIntake } from './intake.js'
import { PendingFrames } from './pending.js'
import { Repairs } from './repairs.js'
import { applyRoomEntry, canManage, createRoomsState, foldRoom, memberHosts, type Room } from './state.js'
import { RoomTopics } from './topics.js'
import type { RejectEvent, RoomInfo, RoomLog, RoomLogger, RoomMembershipView, RoomMessageOut, RoomServiceOptions, RoomStats } from './types.js'
import { isAdminIn, reachable, roomHealth, roomInfo } from './views.js'

// Membership kinds that can change who is an admin or a mesh member: rooms are re-folded then.
const MESH_KINDS = new Set(['genesis', 'admit', 'grant', 'revoke'])

const utf8 = new TextEncoder()

interface RoomEvents {
  message: [RoomMessageOut]
  rejected: [RejectEvent]
  /** a frame this host published on a room topic (gossipsub reports only messages received) */
  published: [{ topic: string, bytes: number }]
}

export class RoomService extends EventEmitter<RoomEvents> {
  readonly me: string
  private readonly store: RoomLog
  private readonly membership: RoomMembershipView
  private readonly signer: Signer
  private readonly relay: boolean
  private readonly log: RoomLogger | undefined
  private readonly now: () => number
  private readonly history: HistoryStore
  private readonly keys: EpochKeys
  private readonly ends: EpochEnds
  private readonly changes: RoomChanges
  private readonly protocol: HistoryProtocol
  private readonly topics: RoomTopics
  private readonly catchUp_: CatchUp
  private readonly pending: PendingFrames
  private readonly intake: RoomIntake
  private readonly repairs: Repairs
  private readonly isAdmin: (peer: string) => boolean
  private readonly state = createRoomsState()
  private readonly rooms_ = new Map<string, Room>()
  private started = false
  /** the log has been folded once: from then on each new entry re-folds its room at once */
  private following = false

  constructor (opts: RoomServiceOptions) {
    super()
    this.store = opts.store
    this.membership = opts.membership
    this.me = opts.identity.peerId.toString()
    this.signer = createSigner(opts.identity.privateKey)
    this.relay = opts.relay ?? true
    this.log = opts.log
    this.now = opts.now ?? Date.now
    this.history = new HistoryStore(opts.db, { maxMessages: opts.history?.maxMessages ?? 1000, maxAgeMs: opts.history?.maxAgeMs ?? 7 * 24 * 3600_000 }, this.now)
    this.keys = new EpochKeys({
      me: this.me,
      xwingSeed: opts.identity.xwingSeed,
      recipientKey: (host) => opts.membership.isMember(host) ? opts.membership.xwingOf(host) : undefined,
      log: opts.log
    })
    this.ends = new EpochEnds(opts.db, opts.epochGraceMs ?? 10_000, this.now)
    this.isAdmin = isAdminIn(opts.membership)
    this.changes = new RoomChanges({ me: this.me, store: opts.store, keys: this.keys, reachable: (host) => reachable(opts.membership, host) })
    const budgets = new RoomBudgets({ limits: opts.budgets, penalise: opts.penalise ?? gossipPenalty(opts.libp2p.services.pubsub) })
    this.protocol = new HistoryProtocol({ libp2p: opts.libp2p, room: (id) => this.rooms_.get(id), frames: (room) => this.history.frames(room), budgets })
    this.pending = new PendingFrames(this.now)
    this.intake = new RoomIntake({
      room: (id) => this.rooms_.get(id),
      keys: this.keys,
      history: this.history,
      ends: this.ends,
      pending: this.pending,
      isMember: (peer) => opts.membership.isMember(peer),
      onMessage: (m) => { this.emit('message', m) },
      onRejected: (r) => { this.emit('rejected', r) },
      log: opts.log
    })
    this.topics = new RoomTopics({
      pubsub: opts.libp2p.services.pubsub,
      isMember: (peer) => opts.membership.isMember(peer),
      admit: (room, peer, bytes) => {
        const over = budgets.frame(peer, bytes)
        if (over !== undefined) this.intake.reject(over, room)
        return over === undefined
      },
      onFrame: (room, data) => {
        this.intake.count(room).gossip++
        void this.intake.take(data, room, true)
      },
      onPublished: (topic, bytes) => { this.emit('published', { topic, bytes }) }
    })
    this.repairs = new Repairs({ me: this.me, mesh: opts.membership, room: (id) => this.rooms_.get(id), rekey: async (id) => this.rekey(id), delayMs: opts.repairDelayMs ?? 5_000, log: opts.log })
    this.catchUp_ = new CatchUp({
      me: this.me,
      libp2p: opts.libp2p,
      protocol: this.protocol,
      rooms: () => this.rooms_.values(),
      room: (id) => this.rooms_.get(id),
      latestTs: async (room) => this.history.latestTs(room),
      take: async (room, frames) => {
        this.intake.count(room).history += frames.length
        let got = 0
        for (const frame of frames) if (await this.intake.take(frame, room, false) !== undefined) got++
        return got
      },
      log: opts.log
    })
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.repairs.start()
    await this.history.open()
    await this.ends.load()
    this.topics.start()
    // Listening before the scan: an entry that lands during it is never missed, and one that
    // both deliver is folded once (applyRoomEntry ignores a (feed, seq) it holds).
    this.store.on('entry', this.onEntry)
    for (const kind of ROOM_KINDS) {
      for await (const { entry } of this.store.log({ kind })) applyRoomEntry(this.state, entry)
    }
    await this.protocol.start()
    this.following = true
    for (const id of this.state.byRoom.keys()) this.refresh(id)
    this.catchUp_.start()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.following = false
    this.catchUp_.stop()
    this.store.off('entry', this.onEntry)
    this.topics.stop()
    this.repairs.stop()
    await this.protocol.stop()
    await this.history.settle()
    await this.ends.settle()
  }

  // --- views ---------------------------------------------------------------------------------

  private info (room: Room): RoomInfo {
    return roomInfo(room, this.me, this.membership)
  }

  rooms (): RoomInfo[] {
    return [...this.rooms_.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1)).map(r => this.info(r))
  }

  room (id: string): RoomInfo | undefined {
    const r = this.rooms_.get(id)
    return r === undefined ? undefined : this.info(r)
  }

  /** Whether `agent` on this host is a current member of the room. */
  isLocalMember (roomId: string, agent: string): boolean {
    return this.rooms_.get(roomId)?.members.some(m => m.host === this.me && m.agent === agent) ?? false
  }

  private need (id: string): Room {
    const r = this.rooms_.get(id)
    if (r === undefined) throw new RoomError('ROOM_UNKNOWN', `no room ${id}`)
    return r
  }

  private readonly onEntry = ({ entry }: StoredEntry): void => {
    const touched = applyRoomEntry(this.state, entry)
    // during start's scan the fold is partial: start refreshes every room once it is complete
    if (!this.following) return
    if (touched !== undefined) this.refresh(touched)
    else if (MESH_KINDS.has(entry.kind)) for (const id of this.state.byRoom.keys()) this.refresh(id)
  }

  /** Re-folds one room and follows it: topic subscription, pending frames, repair, catch-up. */
  private refresh (id: string): void {
    const before = this.rooms_.get(id)
    const room = foldRoom(this.state, id, this.membership.standingAt)
    if (room === undefined) return
    this.rooms_.set(id, room)
    this.ends.observe(room)
    const member = memberHosts(room).includes(this.me)
    const wasMember = before !== undefined && memberHosts(before).includes(this.me)
    this.topics.carry(id, member || this.relay)
    if (member && !wasMember) void this.catchUp_.all(id).catch(() => {})
    if (before === undefined || before.epoch !== room.epoch || before.epochs.size !== room.epochs.size) {
      void this.pending.retry(id, async (bytes) => { await this.intake.take(bytes, id, true) })
    }
    this.repairs.schedule(room)
  }

  // --- membership changes: the entry is folded (onEntry) before append returns ---------------

  async create (opts: { name: string, members: RoomMember[], history?: HistoryMode }): Promise<RoomInfo> {
    const members = opts.members.map(m => checkMember('members', m))
    const id = await this.changes.create({ name: opts.name, members, history: opts.history })
    return this.info(this.need(id))
  }

  private manage (id: string): Room {
    const room = this.need(id)
    if (!canManage(room, this.me, this.isAdmin)) throw new RoomError('ROOM_NOT_AUTHORISED', `this host may not change the members of room ${id} (only its creator and mesh admins may)`)
    return room
  }

  /** Adds a member (see RoomChanges.add for the keys it gets); adding a member again changes nothing. */
  async addMember (id: string, member: RoomMember): Promise<RoomInfo> {
    const room = this.manage(id)
    const m = checkMember('member', member)
    if (room.members.some(x => memberId(x) === memberId(m))) return this.info(room)
    await this.changes.add(room, m)
    return this.info(this.need(id))
  }

  /** Removes a member; if its host has no agent left in the room, a new epoch excludes the host. */
  async removeMember (id: string, member: RoomMember): Promise<RoomInfo> {
    const room = this.manage(id)
    await this.changes.remove(room, checkMember('member', member))
    return this.info(this.need(id))
  }

  /** Starts a new epoch whose key is sealed to the current member hosts that are mesh members. */
  async rekey (id: string): Promise<RoomInfo> {
    await this.changes.rekey(this.manage(id))
    return this.info(this.need(id))
  }

  // --- sending and receiving -----------------------------------------------------------------

  /** Encrypts, signs, stores and publishes a message from `agent` on this host. */
  async send (id: string, agent: string, text: string): Promise<RoomMessageOut> {
    let room = this.need(id)
    if (!this.isLocalMember(id, agent)) throw new RoomError('ROOM_NOT_MEMBER', `agent ${agent} on this host is not a member of room ${id}`)
    if (roomHealth(room, this.membership).leaked.length > 0) {
      if (!canManage(room, this.me, this.isAdmin)) throw new RoomError('ROOM_REKEY_PENDING', `room ${id}'s key reached a host that is no longer a member; waiting for a manager to rekey`)
      await this.rekey(id)
      room = this.need(id)
    }
    const key = await this.keys.open(room, room.epoch)
    if (key === undefined) throw new RoomError('ROOM_NO_KEY', `this host holds no key for epoch ${room.epoch} of room ${id}`)
    // reserved before encrypting, so concurrent sends never share a seq; a crash leaves a gap
    const seq = await this.history.reserveSeq(id)
    const msg = encryptRoomMessage(key, { room: id, epoch: room.epoch, sender: this.me, agent, seq, ts: this.now() }, utf8.encode(text))
    const signed: SignedRoomMessage = { ...msg, sig: this.signer.sign(signingBytes(msg)) }
    const frame = encodeFrame(signed)
    const cursor = await this.history.keep(signed, frame, true)
    try {
      await this.topics.publish(id, frame)
    } catch (err) {
      // kept locally: members that missed the gossip fetch it from history
      this.log?.debug({ room: id, err: (err as Error).message }, 'rooms: publish failed')
    }
    const out = { room: id, cursor, epoch: room.epoch, sender: this.me, agent, seq, ts: msg.ts, text }
    this.emit('message', out)
    return out
  }

  /** What the frames of one room did here since the service started. */
  stats (id: string): RoomStats {
    this.need(id)
    const c = this.intake.count(id)
    return {
      room: id,
      subscribed: this.topics.carries(id),
      peers: this.topics.peers(id),
      gossip: c.gossip,
      history: c.history,
      accepted: c.accepted,
      rejected: { ...c.rejected }
    }
  }

  /**
   * Verifies, decrypts and keeps one frame. Throws a RoomError naming why it was refused; a frame
   * of a room or epoch not known yet is held, retried when the room changes, and gives undefined.
   */
  async receive (bytes: Uint8Array): Promise<RoomMessageOut | undefined> {
    return this.intake.accept(decodeFrame(bytes), bytes, true)
  }

  // --- reading -------------------------------------------------------------------------------

  /** Messages that arrived after `since` (a cursor; 0 for all history), oldest first. */
  async read (id: string, opts: { since?: number, limit?: number } = {}): Promise<{ messages: RoomMessageOut[], cursor: number }> {
    const room = this.need(id)
    const since = opts.since ?? 0
    const messages: RoomMessageOut[] = []
    for await (const { cursor, msg } of this.history.read(id, since, opts.limit ?? 1000)) {
      const k = await this.keys.open(room, msg.epoch)
      if (k === undefined) continue
      const text = openText(k, msg)
      messages.push({ room: id, cursor, epoch: msg.epoch, sender: msg.sender, agent: msg.agent, seq: msg.seq, ts: msg.ts, text })
    }
    return { messages, cursor: messages.at(-1)?.cursor ?? since }
  }

  /**
   * New messages of one room as they arrive (sent here or received), until `signal` aborts.
   * Listens from the call on, not from the first next(): a caller can read the backlog after
   * calling this without missing what arrives in between.
   */
  live (id: string, signal?: AbortSignal): AsyncGenerator<RoomMessageOut, void> {
    const events = on(this, 'message', { signal }) as AsyncIterableIterator<[RoomMessageOut]>
    return (async function * () {
      try {
        for await (const [m] of events) if (m.room === id) yield m
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err
      }
    })()
  }

  // --- history catch-up ----------------------------------------------------------------------

  /** Fetches missed messages of one room (or every room of this host) from connected members. */
  async catchUp (id?: string): Promise<number> {
    return this.catchUp_.all(id)
  }

  /** Asks one member for a room's frames and takes in the new ones; returns how many. */
  async fetchHistory (id: string, peer: PeerId): Promise<number> {
    return this.catchUp_.fetch(id, peer)
  }
}
