// Encrypted rooms on the mesh (DESIGN §6). Membership and sealed epoch keys live in the audit
// log (so they replicate with it and a host back from downtime gets them on catch-up); messages
// travel on one gossipsub topic per room, are verified, decrypted, de-duplicated and kept in a
// bounded history in level; a member that missed messages fetches them from any other member
// over a request/response protocol that serves ciphertext only.
//
// History layout, in the service's sublevel (utf8 keys, byte values):
//   m!<room>!<cursor16>          the signed frame as received: ciphertext, never plaintext
//   f!<room>!<sender>            canonical {seq}: highest seq pruned, older ones are replays
//   q!<room>                     canonical {seq}: the next seq this host sends in the room
// Cursors are a per-room local arrival counter: "read since a cursor" never misses a message
// that arrived late with an old timestamp. The (sender, seq) pairs held, for de-duplication, are
// kept in memory: a room's meta is built by reading its frames once, and they are bounded.
//
// Relaying: by default every host subscribes to the topic of every room it knows of, member or
// not, and forwards its frames. Gossipsub only forwards a topic among its subscribers, so a room
// whose member hosts are not directly connected (a mesh keeps ~8 connections per host) would
// otherwise never deliver. A relay sees ciphertext and headers only; who is in a room is in the
// replicated log already. Per-room counters (stats()) show what a host received and refused.
import { EventEmitter, on } from 'node:events'
import { randomBytes, timingSafeEqual } from 'node:crypto'
import * as lp from 'it-length-prefixed'
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { AbstractLevel } from 'abstract-level'
import type { Libp2p } from 'libp2p'
import type { HostIdentity } from '../../crypto/identity.js'
import { RoomCipherError } from '../../crypto/errors.js'
import { decryptRoomMessage, encryptRoomMessage, signingBytes, type RoomMessage } from '../../crypto/room-cipher.js'
import { EPOCH_KEY_BYTES, openEpochKey, sealEpochKey } from '../../crypto/seal.js'
import { createSigner, verifyEd25519, type Signer } from '../../crypto/sign.js'
import { decodeCanonical, encodeCanonical } from '../audit/codec.js'
import type { AuditStore } from '../audit/store.js'
import type { StoredEntry } from '../audit/types.js'
import { feedPublicKey } from '../audit/verify.js'
import { send } from '../send.js'
import {
  HISTORY_BATCH, HISTORY_PROTOCOL, MAX_HISTORY_FRAME_BYTES, MAX_HISTORY_REQUEST_BYTES, MAX_KEYS_PER_ENTRY, MAX_ROOM_HOSTS, ROOM_CREATE, ROOM_KINDS, ROOM_MEMBER, ROOM_REKEY,
  checkMember, decodeFrame, roomOfTopic, decodeHistoryRequest, decodeHistoryResponse, encodeFrame, encodeHistoryRequest, encodeHistoryResponse, keyId, memberId, roomTopic,
  type HistoryMode, type HistoryResponse, type RoomMember, type SealedKey, type SignedRoomMessage
} from './codec.js'
import { RoomError, type RoomErrorCode } from './errors.js'
import { admitMessage, applyRoomEntry, canManage, createRoomsState, foldRoom, memberHosts, type Room, type RoomsState } from './state.js'

/** What rooms need to know of the mesh's member set (protocols/membership's view). */
export interface RoomMembershipView {
  isMember: (peer: string) => boolean
  xwingOf: (peer: string) => Uint8Array | undefined
  /** mesh admins may manage every room; without it only a room's creator may */
  isAdmin?: (peer: string) => boolean
}

export type RoomDb = AbstractLevel<any, string, Uint8Array>

/** The sublevel of a host's root level db that holds room history. */
export function roomsSublevel (root: AbstractLevel<any, any, any>): RoomDb {
  return root.sublevel<string, Uint8Array>('rooms', { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as RoomDb
}

/** How often each room's recent history is reconciled with one random member. */
const ANTI_ENTROPY_MS = 10_000

export interface RoomLogger {
  debug: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface RoomServiceOptions {
  libp2p: Libp2p<{ pubsub: GossipSub }>
  store: AuditStore
  identity: HostIdentity
  membership: RoomMembershipView
  db: RoomDb
  /** bounded history per room (defaults: 1000 messages, 7 days) */
  history?: { maxMessages?: number, maxAgeMs?: number }
  /** how long after its epoch ended (by the sender's clock) a message is still accepted (10 s) */
  epochGraceMs?: number
  /** how long a manager other than the last one waits before repairing a stale room (5 s) */
  repairDelayMs?: number
  /** forward the gossip of rooms this host is not a member of (default true, see above) */
  relay?: boolean
  log?: RoomLogger
  now?: () => number
}

/** A decrypted message as agents see it. */
export interface RoomMessageOut {
  room: string
  /** local arrival order in the room: pass it back as `since` */
  cursor: number
  epoch: number
  sender: string
  agent: string
  seq: number
  ts: number
  text: string
}

export interface RoomInfo {
  id: string
  name: string
  creator: string
  createdAt: number
  history: HistoryMode
  epoch: number
  members: RoomMember[]
  /** this host is a member host (has at least one agent in the room) */
  member: boolean
  /** this host may add and remove members */
  manager: boolean
  /** the current key reached a non-member or misses a member: a rekey is due */
  stale: boolean
}

export interface RejectEvent { code: RoomErrorCode, message: string, room?: string, sender?: string, seq?: number }

/** What one room's frames did on this host since its service started. */
export interface RoomStats {
  room: string
  /** this host carries the room's gossip: a member host, or a relay */
  subscribed: boolean
  /** connected peers subscribed to the room's topic: those this host exchanges its frames with */
  peers: string[]
  /** frames that arrived over gossip, and from history fetches (duplicates included) */
  gossip: number
  history: number
  /** frames verified, decrypted and kept */
  accepted: number
  /** frames refused, by reason; ROOM_NO_KEY counts ciphertext this host holds no key for */
  rejected: Partial<Record<RoomErrorCode, number>>
}

type Counters = Omit<RoomStats, 'room' | 'subscribed' | 'peers'>

interface RoomEvents {
  message: [RoomMessageOut]
  rejected: [RejectEvent]
}

interface Meta {
  cursor: number
  count: number
  latestTs: number
  oldestTs: number
  floors: Map<string, number>
  /** heldId() of every kept frame */
  held: Set<string>
  nextSeq: number
}

const SEP = '!'
const pad = (n: number): string => n.toString().padStart(16, '0')
const msgKey = (room: string, cursor: number): string => `m${SEP}${room}${SEP}${pad(cursor)}`
const heldId = (m: { sender: string, seq: number }): string => `${m.sender}/${m.seq}`
const floorKey = (room: string, sender: string): string => `f${SEP}${room}${SEP}${sender}`
const seqKey = (room: string): string => `q${SEP}${room}`
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder('utf-8', { fatal: true })

// Frames of a room or epoch this host has not seen start yet (the log entry may still be on its
// way) wait here, bounded, and are retried when the room changes.
const MAX_PENDING = 1024
const PENDING_MS = 60_000
// A returning host asks for messages a little older than its newest one: senders' clocks differ.
const CATCHUP_MARGIN_MS = 10 * 60_000
const PRUNE_STEP = 64
const REQUEST_TIMEOUT_MS = 30_000
// Membership kinds that can change who is an admin or a mesh member: rooms are re-folded then.
const MESH_KINDS = new Set(['genesis', 'admit', 'grant', 'revoke'])

function readSeq (bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined) return undefined
  const v = decodeCanonical(bytes, 64, 'STORE_CORRUPT', 'STORE_CORRUPT') as Record<string, unknown>
  if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.seq) || Object.keys(v).length !== 1) throw new RoomError('ROOM_FRAME_MALFORMED', 'stored room counter does not follow its schema')
  return v.seq as number
}

const HISTORY_SEND_ERRORS = { closed: () => new RoomError('ROOM_HISTORY_FAILED', 'stream closed while sending') }

async function sendBytes (stream: Stream, bytes: Uint8Array): Promise<void> {
  await send(stream, lp.encode.single(bytes), HISTORY_SEND_ERRORS)
}

function asRoomError (err: unknown): RoomError {
  if (err instanceof RoomError) return err
  if (err instanceof RoomCipherError) {
    return new RoomError(err.code === 'ROOM_MSG_AUTH_FAILED' ? 'ROOM_MSG_AUTH_FAILED' : err.code === 'ROOM_MSG_TOO_LARGE' ? 'ROOM_FRAME_TOO_LARGE' : 'ROOM_FRAME_MALFORMED', err.message)
  }
  return new RoomError('ROOM_HISTORY_FAILED', (err as Error)?.message ?? String(err))
}

export class RoomService extends EventEmitter<RoomEvents> {
  readonly me: string
  private readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  private readonly store: AuditStore
  private readonly identity: HostIdentity
  private readonly membership: RoomMembershipView
  private readonly db: RoomDb
  private readonly signer: Signer
  private readonly maxMessages: number
  private readonly maxAgeMs: number
  private readonly graceMs: number
  private readonly repairDelayMs: number
  private readonly log: RoomLogger | undefined
  private readonly now: () => number
  private readonly state: RoomsState = createRoomsState()
  private readonly rooms_ = new Map<string, Room>()
  private readonly subscribed = new Set<string>()
  private readonly keys = new Map<string, Promise<Uint8Array | undefined>>()
  private readonly metas = new Map<string, Promise<Meta>>()
  private readonly pending = new Map<string, Array<{ bytes: Uint8Array, at: number }>>()
  private pendingCount = 0
  private readonly repairs = new Map<string, NodeJS.Timeout>()
  private antiEntropy: NodeJS.Timeout | undefined
  private readonly relay: boolean
  private readonly counters = new Map<string, Counters>()
  private tail: Promise<unknown> = Promise.resolve()
  private started = false

  constructor (opts: RoomServiceOptions) {
    super()
    this.libp2p = opts.libp2p
    this.store = opts.store
    this.identity = opts.identity
    this.membership = opts.membership
    this.db = opts.db
    this.me = opts.identity.peerId.toString()
    this.signer = createSigner(opts.identity.privateKey)
    this.maxMessages = opts.history?.maxMessages ?? 1000
    this.maxAgeMs = opts.history?.maxAgeMs ?? 7 * 24 * 3600_000
    this.graceMs = opts.epochGraceMs ?? 10_000
    this.repairDelayMs = opts.repairDelayMs ?? 5_000
    this.relay = opts.relay ?? true
    this.log = opts.log
    this.now = opts.now ?? Date.now
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    if (this.db.status === 'opening') await this.db.open()
    for (const kind of ROOM_KINDS) {
      for await (const { entry } of this.store.log({ kind })) applyRoomEntry(this.state, entry)
    }
    this.store.on('entry', this.onEntry)
    this.libp2p.services.pubsub.addEventListener('message', this.onGossip)
    await this.libp2p.handle(HISTORY_PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, { maxInboundStreams: 32, maxOutboundStreams: 32 })
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    for (const id of this.state.byRoom.keys()) this.refresh(id)
    // Members may have reconnected before this service listened for them (libp2p starts
    // first): ask those already here for what this host missed.
    void this.catchUp().then(
      (n) => { if (n > 0) this.log?.info({ messages: n }, 'rooms: caught up from history at start') },
      (err: Error) => this.log?.warn({ err: err.message }, 'rooms: catch-up at start failed'))
    // Anti-entropy: every period, each room's recent history is compared with one random
    // member, so a message that gossip and the reconnect catch-up both missed (a race at
    // start, a lost frame) still arrives.
    this.antiEntropy = setInterval(() => { void this.reconcile() }, ANTI_ENTROPY_MS)
    this.antiEntropy.unref()
  }

  private async reconcile (): Promise<void> {
    const connected = this.libp2p.getPeers()
    for (const room of this.rooms_.values()) {
      const hosts = memberHosts(room)
      if (!hosts.includes(this.me)) continue
      const peers = connected.filter(p => p.toString() !== this.me && hosts.includes(p.toString()))
      const peer = peers[Math.floor(Math.random() * peers.length)]
      if (peer === undefined) continue
      await this.fetchHistory(room.id, peer).then(
        (n) => { if (n > 0) this.log?.info({ room: room.id, peer: peer.toString(), messages: n }, 'rooms: anti-entropy recovered messages') },
        (err: Error) => this.log?.debug({ room: room.id, peer: peer.toString(), err: err.message }, 'rooms: anti-entropy fetch failed'))
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    clearInterval(this.antiEntropy)
    this.store.off('entry', this.onEntry)
    this.libp2p.services.pubsub.removeEventListener('message', this.onGossip)
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    for (const topic of this.subscribed) this.unsubscribe(topic)
    for (const t of this.repairs.values()) clearTimeout(t)
    this.repairs.clear()
    await this.libp2p.unhandle(HISTORY_PROTOCOL)
    await this.exclusive(async () => {})
  }

  // --- views ---------------------------------------------------------------------------------

  private isAdmin = (peer: string): boolean => this.membership.isAdmin?.(peer) ?? false

  private reachable (host: string): boolean {
    return this.membership.isMember(host) && this.membership.xwingOf(host) !== undefined
  }

  /** Leaked: the current key is held by a host that is no member host or mesh member any more. */
  private health (room: Room): { leaked: string[], missing: string[] } {
    const hosts = new Set(memberHosts(room))
    const holders = [...(room.epochs.get(room.epoch)?.keys.keys() ?? [])]
    return {
      leaked: holders.filter(h => !hosts.has(h) || !this.membership.isMember(h)),
      missing: room.missing.filter(h => this.reachable(h))
    }
  }

  private info (room: Room): RoomInfo {
    const h = this.health(room)
    return {
      id: room.id,
      name: room.name,
      creator: room.creator,
      createdAt: room.createdAt,
      history: room.history,
      epoch: room.epoch,
      members: room.members,
      member: memberHosts(room).includes(this.me),
      manager: canManage(room, this.me, this.isAdmin),
      stale: h.leaked.length > 0 || h.missing.length > 0
    }
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
    if (touched !== undefined) this.refresh(touched)
    else if (MESH_KINDS.has(entry.kind)) for (const id of this.state.byRoom.keys()) this.refresh(id)
  }

  /** Re-folds one room and follows it: topic subscription, pending frames, repair, catch-up. */
  private refresh (id: string): void {
    const before = this.rooms_.get(id)
    const room = foldRoom(this.state, id, this.isAdmin)
    if (room === undefined) return
    this.rooms_.set(id, room)
    const topic = roomTopic(id)
    const member = memberHosts(room).includes(this.me)
    const wasMember = before !== undefined && memberHosts(before).includes(this.me)
    if ((member || this.relay) && !this.subscribed.has(topic)) {
      this.libp2p.services.pubsub.topicValidators.set(topic, this.validateGossip)
      this.libp2p.services.pubsub.subscribe(topic)
      this.subscribed.add(topic)
    } else if (!member && !this.relay && this.subscribed.has(topic)) {
      this.unsubscribe(topic)
    }
    if (member && !wasMember) void this.catchUp(id).catch(() => {})
    if (before === undefined || before.epoch !== room.epoch || before.epochs.size !== room.epochs.size) void this.retryPending(id)
    this.scheduleRepair(room)
  }

  /**
   * A stale room is rekeyed by a manager: at once by the one whose change came last (it knows it
   * raced), by any other after `repairDelayMs` if the room is still stale then.
   */
  private scheduleRepair (room: Room): void {
    const h = this.health(room)
    if ((h.leaked.length === 0 && h.missing.length === 0) || !canManage(room, this.me, this.isAdmin) || this.repairs.has(room.id) || !this.started) return
    const delay = room.lastChangeBy === this.me ? 0 : this.repairDelayMs
    const timer = setTimeout(() => {
      this.repairs.delete(room.id)
      const now = this.rooms_.get(room.id)
      if (now === undefined || !this.started) return
      const again = this.health(now)
      if (again.leaked.length === 0 && again.missing.length === 0) return
      this.rekey(room.id).catch((err: Error) => this.log?.warn({ room: room.id, err: err.message }, 'rooms: repair rekey failed'))
    }, delay)
    timer.unref()
    this.repairs.set(room.id, timer)
  }

  // --- keys ----------------------------------------------------------------------------------

  /** This host's key of one epoch, opened once and checked against the epoch's kid. */
  private async epochKey (room: Room, epoch: number): Promise<Uint8Array | undefined> {
    const e = room.epochs.get(epoch)
    const sealed = e?.keys.get(this.me)
    if (e === undefined || sealed === undefined) return undefined
    const id = `${room.id}/${epoch}/${Buffer.from(e.kid).toString('hex')}`
    let p = this.keys.get(id)
    if (p === undefined) {
      p = (async () => {
        try {
          const key = await openEpochKey({ seed: this.identity.xwingSeed, peerId: this.me, roomId: room.id, epoch, sealed })
          if (timingSafeEqual(keyId(room.id, epoch, key), e.kid)) return key
          this.log?.warn({ room: room.id, epoch }, 'rooms: a sealed epoch key does not match its epoch\'s key id')
        } catch (err) {
          this.log?.warn({ room: room.id, epoch, err: (err as Error).message }, 'rooms: cannot open a sealed epoch key')
        }
        return undefined
      })()
      this.keys.set(id, p)
    }
    return p
  }

  private async sealTo (roomId: string, epoch: number, key: Uint8Array, hosts: string[]): Promise<SealedKey[]> {
    if (hosts.length > MAX_ROOM_HOSTS) throw new RoomError('ROOM_TOO_MANY_HOSTS', `a room has at most ${MAX_ROOM_HOSTS} member hosts`)
    return Promise.all(hosts.map(async (host) => {
      const pub = this.membership.isMember(host) ? this.membership.xwingOf(host) : undefined
      if (pub === undefined) throw new RoomError('ROOM_HOST_UNKNOWN', `${host} is not a mesh member with a known X-Wing key`)
      return { host, epoch, sealed: await sealEpochKey({ recipientPublicKey: pub, recipientPeerId: host, roomId, epoch, key }) }
    }))
  }

  /** A fresh epoch key sealed to `hosts`; the key is remembered if this host is one of them. */
  private async newEpoch (roomId: string, epoch: number, hosts: string[]): Promise<{ kid: Uint8Array, keys: SealedKey[] }> {
    const key = new Uint8Array(randomBytes(EPOCH_KEY_BYTES))
    const kid = keyId(roomId, epoch, key)
    const keys = await this.sealTo(roomId, epoch, key, hosts)
    if (hosts.includes(this.me)) this.keys.set(`${roomId}/${epoch}/${Buffer.from(kid).toString('hex')}`, Promise.resolve(key))
    return { kid, keys }
  }

  // --- membership changes --------------------------------------------------------------------

  async create (opts: { name: string, members: RoomMember[], history?: HistoryMode }): Promise<RoomInfo> {
    const members = opts.members.map(m => checkMember('members', m))
    const hosts = [...new Set(members.map(m => m.host))].sort()
    const room = randomBytes(16).toString('hex')
    const { kid, keys } = await this.newEpoch(room, 0, hosts)
    await this.appendEntry(ROOM_CREATE, { room, name: opts.name, history: opts.history ?? 'joined', members, epoch: 0, kid, keys })
    return this.info(this.need(room))
  }

  private manage (id: string): Room {
    const room = this.need(id)
    if (!canManage(room, this.me, this.isAdmin)) throw new RoomError('ROOM_NOT_AUTHORISED', `this host may not change the members of room ${id} (only its creator and mesh admins may)`)
    return room
  }

  private async appendEntry (kind: string, body: Record<string, unknown>): Promise<void> {
    try {
      await this.store.append(kind, body)
    } catch (err) {
      if ((err as { code?: string }).code === 'BODY_INVALID') throw new RoomError('ROOM_BAD_REQUEST', (err as Error).message)
      throw err
    }
  }

  /**
   * Adds a member. In a room whose history is per join, a host that is new to the room gets a new
   * epoch (sealed to every member host), so nothing sent before it joined opens with its key; in
   * a shared-history room it gets the current key and the earlier ones this host holds.
   */
  async addMember (id: string, member: RoomMember): Promise<RoomInfo> {
    const room = this.manage(id)
    const m = checkMember('member', member)
    if (room.members.some(x => memberId(x) === memberId(m))) return this.info(room)
    const current = room.epochs.get(room.epoch)!
    const hostIn = memberHosts(room).includes(m.host) && current.keys.has(m.host)
    let body: { epoch: number, kid: Uint8Array, keys: SealedKey[] }
    const currentKey = hostIn || room.history !== 'shared' ? undefined : await this.epochKey(room, room.epoch)
    if (hostIn) {
      body = { epoch: room.epoch, kid: current.kid, keys: [] }
    } else if (currentKey !== undefined) {
      const keys = await this.sealTo(room.id, room.epoch, currentKey, [m.host])
      for (let e = room.epoch - 1; e >= 0 && keys.length < MAX_KEYS_PER_ENTRY; e--) {
        const k = await this.epochKey(room, e)
        if (k !== undefined) keys.push(...await this.sealTo(room.id, e, k, [m.host]))
      }
      body = { epoch: room.epoch, kid: current.kid, keys }
    } else {
      const hosts = [...new Set([...memberHosts(room).filter(h => this.reachable(h)), m.host])].sort()
      body = { epoch: room.epoch + 1, ...await this.newEpoch(room.id, room.epoch + 1, hosts) }
    }
    await this.appendEntry(ROOM_MEMBER, { room: room.id, op: 'add', member: m, ...body })
    return this.info(this.need(id))
  }

  /** Removes a member; if its host has no agent left in the room, a new epoch excludes the host. */
  async removeMember (id: string, member: RoomMember): Promise<RoomInfo> {
    const room = this.manage(id)
    const m = checkMember('member', member)
    if (!room.members.some(x => memberId(x) === memberId(m))) throw new RoomError('ROOM_NOT_MEMBER', `${memberId(m)} is not a member of room ${id}`)
    const remaining = room.members.filter(x => memberId(x) !== memberId(m))
    const hosts = [...new Set(remaining.map(x => x.host))].filter(h => this.reachable(h)).sort()
    const body = hosts.includes(m.host)
      ? { epoch: room.epoch, kid: room.epochs.get(room.epoch)!.kid, keys: [] }
      : { epoch: room.epoch + 1, ...await this.newEpoch(room.id, room.epoch + 1, hosts) }
    await this.appendEntry(ROOM_MEMBER, { room: room.id, op: 'remove', member: m, ...body })
    return this.info(this.need(id))
  }

  /** Starts a new epoch whose key is sealed to the current member hosts that are mesh members. */
  async rekey (id: string): Promise<RoomInfo> {
    const room = this.manage(id)
    const hosts = memberHosts(room).filter(h => this.reachable(h))
    await this.appendEntry(ROOM_REKEY, { room: room.id, epoch: room.epoch + 1, ...await this.newEpoch(room.id, room.epoch + 1, hosts) })
    return this.info(this.need(id))
  }

  // --- history storage -----------------------------------------------------------------------

  /** Serialises history writes, so cursors and seqs are assigned in one order. */
  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn)
    this.tail = run.catch(() => {})
    return run
  }

  private async meta (room: string): Promise<Meta> {
    let p = this.metas.get(room)
    if (p === undefined) {
      p = (async () => {
        const m: Meta = { cursor: 0, count: 0, latestTs: 0, oldestTs: Infinity, floors: new Map(), held: new Set(), nextSeq: 0 }
        for await (const [key, bytes] of this.db.iterator({ gt: `m${SEP}${room}${SEP}`, lt: `m${SEP}${room}${SEP}\xff` })) {
          m.cursor = Number(key.slice(key.lastIndexOf(SEP) + 1))
          m.count++
          const frame = decodeFrame(bytes)
          m.held.add(heldId(frame))
          m.latestTs = Math.max(m.latestTs, frame.ts)
          if (m.count === 1) m.oldestTs = frame.ts
        }
        for await (const [key, bytes] of this.db.iterator({ gt: `f${SEP}${room}${SEP}`, lt: `f${SEP}${room}${SEP}\xff` })) {
          m.floors.set(key.slice(key.lastIndexOf(SEP) + 1), readSeq(bytes)!)
        }
        m.nextSeq = readSeq(await this.db.get(seqKey(room))) ?? 0
        return m
      })()
      this.metas.set(room, p)
    }
    return p
  }

  /** Stores a verified frame unless it is a replay; returns its cursor. */
  private async keep (msg: SignedRoomMessage, frame: Uint8Array, own: boolean): Promise<number> {
    return this.exclusive(async () => {
      const m = await this.meta(msg.room)
      if (msg.seq <= (m.floors.get(msg.sender) ?? -1) || m.held.has(heldId(msg))) {
        throw new RoomError('ROOM_REPLAY', `message ${msg.sender}#${msg.seq} in room ${msg.room} was already received`)
      }
      const cursor = m.cursor + 1
      const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = [
        { type: 'put', key: msgKey(msg.room, cursor), value: frame }
      ]
      const dropped: string[] = []
      if (own) ops.push({ type: 'put', key: seqKey(msg.room), value: encodeCanonical({ seq: m.nextSeq }) })
      const floors = new Map(m.floors)
      let count = m.count + 1
      const cutoff = this.now() - this.maxAgeMs
      // drop the oldest past the count bound, and those past the age bound, a few per write;
      // ages go by arrival order, so only the first kept frame's ts needs remembering
      let oldestTs = Math.min(m.oldestTs, msg.ts)
      const prune = count > this.maxMessages || oldestTs < cutoff
      if (prune) oldestTs = msg.ts
      for await (const [key, bytes] of prune ? this.db.iterator({ gt: `m${SEP}${msg.room}${SEP}`, lt: `m${SEP}${msg.room}${SEP}\xff`, limit: PRUNE_STEP }) : []) {
        const old = decodeFrame(bytes)
        if (count <= this.maxMessages && old.ts >= cutoff) {
          oldestTs = old.ts
          break
        }
        ops.push({ type: 'del', key })
        dropped.push(heldId(old))
        floors.set(old.sender, Math.max(floors.get(old.sender) ?? -1, old.seq))
        ops.push({ type: 'put', key: floorKey(msg.room, old.sender), value: encodeCanonical({ seq: floors.get(old.sender) }) })
        count--
      }
      await this.db.batch(ops)
      m.cursor = cursor
      m.count = count
      m.floors = floors
      for (const d of dropped) m.held.delete(d)
      m.held.add(heldId(msg))
      m.latestTs = Math.max(m.latestTs, msg.ts)
      m.oldestTs = oldestTs
      return cursor
    })
  }

  // --- sending and receiving -----------------------------------------------------------------

  /** Encrypts, signs, stores and publishes a message from `agent` on this host. */
  async send (id: string, agent: string, text: string): Promise<RoomMessageOut> {
    let room = this.need(id)
    if (!this.isLocalMember(id, agent)) throw new RoomError('ROOM_NOT_MEMBER', `agent ${agent} on this host is not a member of room ${id}`)
    if (this.health(room).leaked.length > 0) {
      if (!canManage(room, this.me, this.isAdmin)) throw new RoomError('ROOM_REKEY_PENDING', `room ${id}'s key reached a host that is no longer a member; waiting for a manager to rekey`)
      await this.rekey(id)
      room = this.need(id)
    }
    const key = await this.epochKey(room, room.epoch)
    if (key === undefined) throw new RoomError('ROOM_NO_KEY', `this host holds no key for epoch ${room.epoch} of room ${id}`)
    // reserved before encrypting, so concurrent sends never share a seq; a crash leaves a gap
    const seq = await this.exclusive(async () => (await this.meta(id)).nextSeq++)
    const msg = encryptRoomMessage(key, { room: id, epoch: room.epoch, sender: this.me, agent, seq, ts: this.now() }, utf8.encode(text))
    const signed: SignedRoomMessage = { ...msg, sig: this.signer.sign(signingBytes(msg)) }
    const frame = encodeFrame(signed)
    const cursor = await this.keep(signed, frame, true)
    try {
      await this.libp2p.services.pubsub.publish(roomTopic(id), frame)
    } catch (err) {
      // kept locally: members that missed the gossip fetch it from history
      this.log?.debug({ room: id, err: (err as Error).message }, 'rooms: publish failed')
    }
    const out = { room: id, cursor, epoch: room.epoch, sender: this.me, agent, seq, ts: msg.ts, text }
    this.emit('message', out)
    return out
  }

  private unsubscribe (topic: string): void {
    this.libp2p.services.pubsub.unsubscribe(topic)
    this.libp2p.services.pubsub.topicValidators.delete(topic)
    this.subscribed.delete(topic)
  }

  /**
   * Gossip on room topics flows among members only: a peer that is not one (a stranger inside its
   * pairing window) is rejected, which also lowers its gossip score, and a frame first published
   * by a non-member is dropped without blaming the member that relayed it (its log may not have
   * the revoke yet). The frame itself is checked in full by take().
   */
  private readonly validateGossip = (peer: PeerId, msg: Message): TopicValidatorResult => {
    if (!this.membership.isMember(peer.toString())) return TopicValidatorResult.Reject
    const from = msg.type === 'signed' ? msg.from.toString() : undefined
    if (from !== undefined && !this.membership.isMember(from)) return TopicValidatorResult.Ignore
    return TopicValidatorResult.Accept
  }

  private readonly onGossip = (evt: CustomEvent<Message>): void => {
    const { topic, data } = evt.detail
    const room = roomOfTopic(topic)
    // only topics this host subscribed to arrive, so the counters stay bounded by known rooms
    if (room === undefined || !this.subscribed.has(topic)) return
    this.count(room).gossip++
    void this.take(data, room, true)
  }

  private count (room: string): Counters {
    let c = this.counters.get(room)
    if (c === undefined) this.counters.set(room, c = { gossip: 0, history: 0, accepted: 0, rejected: {} })
    return c
  }

  /** What the frames of one room did here since the service started. */
  stats (id: string): RoomStats {
    this.need(id)
    const topic = roomTopic(id)
    const c = this.count(id)
    return {
      room: id,
      subscribed: this.subscribed.has(topic),
      peers: this.libp2p.services.pubsub.getSubscribers(topic).map(String).sort(),
      gossip: c.gossip,
      history: c.history,
      accepted: c.accepted,
      rejected: { ...c.rejected }
    }
  }

  /**
   * receive() for frames from the network, which came on `room`'s topic or history: a refusal
   * becomes a 'rejected' event. A frame of another room is refused, whatever it holds.
   */
  private async take (bytes: Uint8Array, room: string, reportReplays: boolean): Promise<RoomMessageOut | undefined> {
    let msg: SignedRoomMessage
    try {
      msg = decodeFrame(bytes)
      if (msg.room !== room) throw new RoomError('ROOM_FRAME_MALFORMED', `a frame of room ${msg.room} came on room ${room}'s topic or history`)
    } catch (err) {
      this.reject(err, room)
      return undefined
    }
    try {
      const out = await this.accept(msg, bytes)
      if (out !== undefined) this.count(room).accepted++
      return out
    } catch (err) {
      if (reportReplays || !(err instanceof RoomError && err.code === 'ROOM_REPLAY')) this.reject(err, room, msg)
      return undefined
    }
  }

  private reject (err: unknown, room: string, frame?: RoomMessage): void {
    const e = asRoomError(err)
    const rejected = this.count(room).rejected
    rejected[e.code] = (rejected[e.code] ?? 0) + 1
    this.log?.debug({ code: e.code, room, sender: frame?.sender }, `rooms: dropped a message: ${e.message}`)
    this.emit('rejected', { code: e.code, message: e.message, room, sender: frame?.sender, seq: frame?.seq })
  }

  /**
   * Verifies, decrypts and keeps one frame. Throws a RoomError naming why it was refused; a frame
   * of a room or epoch not known yet is held, retried when the room changes, and gives undefined.
   */
  async receive (bytes: Uint8Array): Promise<RoomMessageOut | undefined> {
    return this.accept(decodeFrame(bytes), bytes)
  }

  private async accept (msg: SignedRoomMessage, bytes: Uint8Array): Promise<RoomMessageOut | undefined> {
    const room = this.rooms_.get(msg.room)
    const why = room === undefined ? 'ROOM_UNKNOWN' : admitMessage(room, msg, this.graceMs)
    if (why === 'ROOM_UNKNOWN' || why === 'ROOM_UNKNOWN_EPOCH') {
      this.hold(msg.room, bytes)
      return undefined
    }
    if (why !== undefined) throw new RoomError(why, `${msg.sender}/${msg.agent} may not write in epoch ${msg.epoch} of room ${msg.room}`)
    // before the signature: a relay, which can open nothing, spends no verification on a frame
    const key = await this.epochKey(room!, msg.epoch)
    if (key === undefined) throw new RoomError('ROOM_NO_KEY', `this host holds no key for epoch ${msg.epoch} of room ${msg.room}`)
    if (!verifyEd25519(feedPublicKey(msg.sender), signingBytes(msg), msg.sig)) {
      throw new RoomError('ROOM_BAD_SIGNATURE', `message ${msg.sender}#${msg.seq} is not signed by its sender`)
    }
    if (!this.membership.isMember(msg.sender)) throw new RoomError('ROOM_NOT_MEMBER', `${msg.sender} is no longer a mesh member`)
    const text = this.plaintext(key, msg)
    const cursor = await this.keep(msg, bytes, false)
    const out = { room: msg.room, cursor, epoch: msg.epoch, sender: msg.sender, agent: msg.agent, seq: msg.seq, ts: msg.ts, text }
    this.emit('message', out)
    return out
  }

  private plaintext (key: Uint8Array, msg: RoomMessage): string {
    const bytes = (() => {
      try {
        return decryptRoomMessage(key, msg)
      } catch (err) {
        throw asRoomError(err)
      }
    })()
    try {
      return fromUtf8.decode(bytes)
    } catch {
      throw new RoomError('ROOM_FRAME_MALFORMED', 'the plaintext is not UTF-8')
    }
  }

  private hold (room: string, bytes: Uint8Array): void {
    const now = this.now()
    const list = (this.pending.get(room) ?? []).filter(p => now - p.at < PENDING_MS)
    this.pendingCount -= (this.pending.get(room)?.length ?? 0) - list.length
    if (this.pendingCount >= MAX_PENDING) return
    list.push({ bytes, at: now })
    this.pendingCount++
    this.pending.set(room, list)
  }

  private async retryPending (room: string): Promise<void> {
    const list = this.pending.get(room)
    if (list === undefined) return
    this.pending.delete(room)
    this.pendingCount -= list.length
    for (const p of list) {
      if (this.now() - p.at >= PENDING_MS) continue
      await this.take(p.bytes, room, true)
    }
  }

  // --- reading -------------------------------------------------------------------------------

  /** Messages that arrived after `since` (a cursor; 0 for all history), oldest first. */
  async read (id: string, opts: { since?: number, limit?: number } = {}): Promise<{ messages: RoomMessageOut[], cursor: number }> {
    const room = this.need(id)
    const since = opts.since ?? 0
    const messages: RoomMessageOut[] = []
    for await (const [key, bytes] of this.db.iterator({ gt: msgKey(id, since), lt: `m${SEP}${id}${SEP}\xff`, limit: opts.limit ?? 1000 })) {
      const msg = decodeFrame(bytes)
      const k = await this.epochKey(room, msg.epoch)
      if (k === undefined) continue
      const text = this.plaintext(k, msg)
      messages.push({ room: id, cursor: Number(key.slice(key.lastIndexOf(SEP) + 1)), epoch: msg.epoch, sender: msg.sender, agent: msg.agent, seq: msg.seq, ts: msg.ts, text })
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

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (!evt.detail.protocols.includes(HISTORY_PROTOCOL)) return
    const peer = evt.detail.peerId.toString()
    for (const room of this.rooms_.values()) {
      const hosts = memberHosts(room)
      if (hosts.includes(this.me) && hosts.includes(peer)) {
        void this.fetchHistory(room.id, evt.detail.peerId).then(
          (n) => { if (n > 0) this.log?.info({ room: room.id, peer, messages: n }, 'rooms: caught up from history') },
          (err: Error) => this.log?.warn({ room: room.id, peer, err: err.message }, 'rooms: history fetch failed'))
      }
    }
  }

  /** Fetches missed messages of one room (or every room of this host) from connected members. */
  async catchUp (id?: string): Promise<number> {
    const ids = id !== undefined ? [id] : [...this.rooms_.keys()]
    let got = 0
    for (const rid of ids) {
      const room = this.rooms_.get(rid)
      if (room === undefined || !memberHosts(room).includes(this.me)) continue
      const hosts = new Set(memberHosts(room))
      const peers = this.libp2p.getPeers().filter(p => hosts.has(p.toString()))
      const results = await Promise.allSettled(peers.map(async p => this.fetchHistory(rid, p)))
      for (const r of results) if (r.status === 'fulfilled') got += r.value
    }
    return got
  }

  /** Asks one member for a room's frames and takes in the new ones; returns how many. */
  async fetchHistory (id: string, peer: PeerId): Promise<number> {
    const m = await this.meta(id)
    const since = Math.max(0, m.latestTs - CATCHUP_MARGIN_MS)
    const stream = await this.libp2p.dialProtocol(peer, HISTORY_PROTOCOL, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    let got = 0
    try {
      await sendBytes(stream, encodeHistoryRequest({ room: id, since }))
      let ended = false
      for await (const chunk of lp.decode(stream, { maxDataLength: MAX_HISTORY_FRAME_BYTES })) {
        const res = decodeHistoryResponse(chunk.subarray())
        if (res.t === 'end') { ended = true; break }
        if (res.t === 'error') throw new RoomError('ROOM_HISTORY_FAILED', `${peer.toString()} refused: ${res.code}: ${res.message}`)
        this.count(id).history += res.msgs.length
        for (const frame of res.msgs) if (await this.take(frame, id, false) !== undefined) got++
      }
      if (!ended) throw new RoomError('ROOM_HISTORY_FAILED', 'the member closed the stream before the end')
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
    return got
  }

  /** Serves a room's kept frames to a member host, only of epochs whose key it received. */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const respond = async (r: HistoryResponse): Promise<void> => { await sendBytes(stream, encodeHistoryResponse(r)) }
    try {
      const first = await lp.decode(stream, { maxDataLength: MAX_HISTORY_REQUEST_BYTES })[Symbol.asyncIterator]().next()
      if (first.done === true) throw new RoomError('ROOM_FRAME_MALFORMED', 'stream ended before a request')
      const req = decodeHistoryRequest(first.value.subarray())
      const room = this.rooms_.get(req.room)
      if (room === undefined || !memberHosts(room).includes(peer)) throw new RoomError('ROOM_NOT_MEMBER', `${peer} is not a member host of room ${req.room} here`)
      let batch: Uint8Array[] = []
      for await (const bytes of this.db.values({ gt: `m${SEP}${req.room}${SEP}`, lt: `m${SEP}${req.room}${SEP}\xff` })) {
        const msg = decodeFrame(bytes)
        if (msg.ts < req.since || room.epochs.get(msg.epoch)?.keys.has(peer) !== true) continue
        batch.push(bytes)
        if (batch.length >= HISTORY_BATCH) {
          await respond({ t: 'msgs', msgs: batch })
          batch = []
        }
      }
      if (batch.length > 0) await respond({ t: 'msgs', msgs: batch })
      await respond({ t: 'end' })
      await stream.close()
    } catch (err) {
      const e = asRoomError(err)
      try {
        await respond({ t: 'error', code: e.code, message: e.message.slice(0, 1024) })
        await stream.close()
      } catch {
        stream.abort(e)
      }
    }
  }
}
