// The shapes the room service shows the rest of the node: its options, what it reports of a
// room, and the messages agents read. Kept apart so the helpers can share them without
// importing the service.
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p } from 'libp2p'
import type { HostIdentity } from '../../crypto/identity.js'
import type { AuditStore } from '../audit/index.js'
import type { RoomBudgetLimits } from './budgets.js'
import type { RoomErrorCode } from './errors.js'
import type { RoomDb } from './history-store.js'
import type { Room, StandingAt } from './state.js'

/** What rooms need to know of the mesh's member set (protocols/membership's view). */
export interface RoomMembershipView {
  isMember: (peer: string) => boolean
  xwingOf: (peer: string) => Uint8Array | undefined
  /** mesh admins may manage every room; without it only a room's creator may */
  isAdmin?: (peer: string) => boolean
  /** an author's standing as of one of its entries: judges every room entry (state.ts) */
  standingAt: StandingAt
}

export interface RoomLogger {
  debug: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

/** The audit log as rooms use it: their entries replicate with it. */
export type RoomLog = Pick<AuditStore, 'log' | 'append' | 'on' | 'off'>

export interface RoomServiceOptions {
  libp2p: Libp2p<{ pubsub: GossipSub }>
  store: RoomLog
  identity: HostIdentity
  membership: RoomMembershipView
  db: RoomDb
  /** bounded history per room (defaults: 1000 messages, 7 days) */
  history?: { maxMessages?: number, maxAgeMs?: number }
  /** how long after this host saw an epoch end its gossip is still accepted (10 s, epoch-ends.ts) */
  epochGraceMs?: number
  /** how long a manager other than the last one waits before repairing a stale room (5 s) */
  repairDelayMs?: number
  /** per-peer budgets on room frames and history (budgets.ts DEFAULT_ROOM_BUDGETS) */
  budgets?: Partial<RoomBudgetLimits>
  /** what a history peer over budget suffers (default: a gossipsub score penalty) */
  penalise?: (peer: string) => void
  /** forward the gossip of rooms this host is not a member of (default true, see service.ts) */
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

/** What this host reports of a room: the fold's public fields, and this host's standing in it. */
export interface RoomInfo extends Pick<Room, 'id' | 'name' | 'creator' | 'createdAt' | 'history' | 'epoch' | 'members'> {
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
