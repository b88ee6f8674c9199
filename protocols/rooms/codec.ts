// Schemas of everything rooms put on the wire or in the log: the three audit entry kinds
// (room-create, room-member, room-rekey), the gossip frame of a message, and the history
// protocol's request and response frames. Every decoder is strict (canonical CBOR, exact
// fields, bounded sizes) and throws RoomError; validators refuse unknown fields, so nothing we
// do not interpret rides along under a signature.
//
// Size bound of entries: a sealed epoch key is 1169 bytes, one {host, epoch, sealed} item about
// 1245 bytes encoded, so the 64 KiB audit body limit holds at most ~50 of them. An entry carries
// at most MAX_KEYS_PER_ENTRY = 40 sealed keys (≈ 50 KB) and MAX_MEMBERS = 128 members of at most
// ~100 bytes each (≈ 13 KB): a room has at most 40 member hosts and 128 (host, agent) members.
import { createHash } from 'node:crypto'
import { isPeerId } from '../../crypto/ids.js'
import { CanonicalError, decodeCanonical, encodeCanonical } from '../canonical.js'
import { SEALED_EPOCH_KEY_BYTES } from '../../crypto/seal.js'
import { MAX_ROOM_PLAINTEXT_BYTES, ROOM_NONCE_BYTES, type RoomMessage } from '../../crypto/room-cipher.js'
import { RoomError } from './errors.js'

export const ROOM_CREATE = 'room-create'
export const ROOM_MEMBER = 'room-member'
export const ROOM_REKEY = 'room-rekey'
export const ROOM_KINDS = [ROOM_CREATE, ROOM_MEMBER, ROOM_REKEY] as const

export const HISTORY_PROTOCOL = '/fleetmesh/rooms-history/1.0.0'
export const MAX_KEYS_PER_ENTRY = 40
export const MAX_ROOM_HOSTS = MAX_KEYS_PER_ENTRY
export const MAX_MEMBERS = 128
export const KID_BYTES = 16
export const ROOM_ID_NONCE_BYTES = 16
const MAX_NAME_CHARS = 128
const SIG_BYTES = 64
const FRAME_VERSION = 1
const TAG_BYTES = 16
/** largest gossip frame: the largest ciphertext plus a generous bound on the header fields */
export const MAX_FRAME_BYTES = ROOM_NONCE_BYTES + MAX_ROOM_PLAINTEXT_BYTES + TAG_BYTES + 2048
export const MAX_HISTORY_REQUEST_BYTES = 256
/** frames per history response message, and the byte bound that follows from it */
export const HISTORY_BATCH = 64
export const MAX_HISTORY_FRAME_BYTES = HISTORY_BATCH * (MAX_FRAME_BYTES + 8) + 64

// Room ids are 128 bits in hex, derived from the creator and a random nonce (roomIdFor); agent
// names are path- and key-safe identifiers; hosts are Ed25519 libp2p peer ids, always this
// 52-character base58btc form.
const ROOM_ID_RE = /^[0-9a-f]{32}$/
const AGENT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/

export type HistoryMode = 'joined' | 'shared'

export interface RoomMember { host: string, agent: string }
/** An epoch key sealed (crypto/seal.ts) to `host` for `epoch` of the entry's room. */
export interface SealedKey { host: string, epoch: number, sealed: Uint8Array }

/**
 * Every membership change names the epoch it belongs to and a key id (`kid`) committing to
 * that epoch's key: `epoch` above the current one starts a new epoch whose key is sealed to
 * the hosts in `keys`; equal to it (with the same kid) it only adds recipients.
 */
interface EpochFields { room: string, epoch: number, kid: Uint8Array, keys: SealedKey[] }
/**
 * Epoch 0. `history`: whether members added later receive the keys of earlier epochs. `nonce`:
 * the room id is roomIdFor(author, nonce), so only its creator's feed can write its room-create.
 */
export interface RoomCreateBody extends EpochFields { name: string, history: HistoryMode, members: RoomMember[], nonce: Uint8Array }
export interface RoomMemberBody extends EpochFields { op: 'add' | 'remove', member: RoomMember }
export type RoomRekeyBody = EpochFields

export interface RoomBodies { 'room-create': RoomCreateBody, 'room-member': RoomMemberBody, 'room-rekey': RoomRekeyBody }
export type RoomKind = keyof RoomBodies

function invalid (kind: string, message: string): never {
  throw new RoomError('ROOM_BODY_INVALID', `${kind}: ${message}`)
}

function fields (kind: string, body: unknown, keys: string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) invalid(kind, 'body must be a map')
  const b = body as Record<string, unknown>
  for (const k of Object.keys(b)) if (!keys.includes(k)) invalid(kind, `unknown field "${k}"`)
  for (const k of keys) if (!(k in b)) invalid(kind, `missing field "${k}"`)
  return b
}

export function isRoomId (v: unknown): v is string {
  return typeof v === 'string' && ROOM_ID_RE.test(v)
}

export function isAgentName (v: unknown): v is string {
  return typeof v === 'string' && AGENT_RE.test(v)
}

const isEpoch = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

export function checkMember (kind: string, v: unknown): RoomMember {
  const m = fields(kind, v, ['agent', 'host'])
  if (!isPeerId(m.host)) invalid(kind, 'member host must be an Ed25519 peer id')
  if (!isAgentName(m.agent)) invalid(kind, `member agent must match ${AGENT_RE}`)
  return { host: m.host, agent: m.agent }
}

function epochFields (kind: string, b: Record<string, unknown>): EpochFields {
  if (!isRoomId(b.room)) invalid(kind, 'room must be 32 hex characters')
  if (!isEpoch(b.epoch)) invalid(kind, 'epoch must be a non-negative integer')
  if (!(b.kid instanceof Uint8Array) || b.kid.length !== KID_BYTES) invalid(kind, `kid must be ${KID_BYTES} bytes`)
  if (!Array.isArray(b.keys) || b.keys.length > MAX_KEYS_PER_ENTRY) invalid(kind, `keys must be a list of at most ${MAX_KEYS_PER_ENTRY}`)
  const seen = new Set<string>()
  const keys = b.keys.map((k: unknown): SealedKey => {
    const s = fields(kind, k, ['epoch', 'host', 'sealed'])
    if (!isPeerId(s.host)) invalid(kind, 'key host must be an Ed25519 peer id')
    if (!isEpoch(s.epoch) || s.epoch > (b.epoch as number)) invalid(kind, 'key epoch must be an integer no later than the entry\'s epoch')
    if (!(s.sealed instanceof Uint8Array) || s.sealed.length !== SEALED_EPOCH_KEY_BYTES) invalid(kind, `sealed must be ${SEALED_EPOCH_KEY_BYTES} bytes`)
    const id = `${s.host}/${s.epoch}`
    if (seen.has(id)) invalid(kind, `two keys for ${id}`)
    seen.add(id)
    return { host: s.host, epoch: s.epoch, sealed: s.sealed }
  })
  return { room: b.room, epoch: b.epoch, kid: b.kid, keys }
}

export function validateRoomCreate (body: unknown): RoomCreateBody {
  const b = fields(ROOM_CREATE, body, ['epoch', 'history', 'keys', 'kid', 'members', 'name', 'nonce', 'room'])
  const e = epochFields(ROOM_CREATE, b)
  if (e.epoch !== 0) invalid(ROOM_CREATE, 'a room starts at epoch 0')
  if (typeof b.name !== 'string' || b.name.length === 0 || b.name.length > MAX_NAME_CHARS) invalid(ROOM_CREATE, `name must be 1..${MAX_NAME_CHARS} characters`)
  if (b.history !== 'joined' && b.history !== 'shared') invalid(ROOM_CREATE, 'history must be "joined" or "shared"')
  if (!Array.isArray(b.members) || b.members.length === 0 || b.members.length > MAX_MEMBERS) invalid(ROOM_CREATE, `members must be a list of 1..${MAX_MEMBERS}`)
  const members = b.members.map((m: unknown) => checkMember(ROOM_CREATE, m))
  if (new Set(members.map(memberId)).size !== members.length) invalid(ROOM_CREATE, 'a member is listed twice')
  if (!(b.nonce instanceof Uint8Array) || b.nonce.length !== ROOM_ID_NONCE_BYTES) invalid(ROOM_CREATE, `nonce must be ${ROOM_ID_NONCE_BYTES} bytes`)
  return { ...e, name: b.name, history: b.history, members, nonce: b.nonce }
}

export function validateRoomMember (body: unknown): RoomMemberBody {
  const b = fields(ROOM_MEMBER, body, ['epoch', 'keys', 'kid', 'member', 'op', 'room'])
  if (b.op !== 'add' && b.op !== 'remove') invalid(ROOM_MEMBER, 'op must be "add" or "remove"')
  return { ...epochFields(ROOM_MEMBER, b), op: b.op, member: checkMember(ROOM_MEMBER, b.member) }
}

export function validateRoomRekey (body: unknown): RoomRekeyBody {
  return epochFields(ROOM_REKEY, fields(ROOM_REKEY, body, ['epoch', 'keys', 'kid', 'room']))
}

/** kind → validator returning the typed body; throws RoomError(ROOM_BODY_INVALID). */
export const roomSchemas: { [K in RoomKind]: (body: unknown) => RoomBodies[K] } = {
  'room-create': validateRoomCreate,
  'room-member': validateRoomMember,
  'room-rekey': validateRoomRekey
}

/** Registers the three kinds with the audit codec's registry (protocols/audit KindRegistry). */

export function memberId (m: RoomMember): string {
  return `${m.host}/${m.agent}`
}

const ROOM_ID_DOMAIN = 'fleetmesh room id v1\0'

/**
 * The id of the room `creator` creates with `nonce`: a room-create counts only when its room is
 * the id of its author and nonce, so no other feed can write one for an existing room (finding
 * a second preimage of 128 bits is out of reach), however it dates it.
 */
export function roomIdFor (creator: string, nonce: Uint8Array): string {
  return createHash('sha256').update(ROOM_ID_DOMAIN).update(`${creator}\0`).update(nonce).digest().subarray(0, 16).toString('hex')
}

const KID_DOMAIN = 'fleetmesh room key id v1\0'

/**
 * A commitment to an epoch's key, bound to the room and epoch: two managers who start the same
 * epoch concurrently seal different keys, and the kid tells which key an entry's seals carry.
 * SHA-256 of 32 random bytes reveals nothing about them.
 */
export function keyId (room: string, epoch: number, key: Uint8Array): Uint8Array {
  const h = createHash('sha256').update(KID_DOMAIN).update(`${room}\0${epoch}\0`).update(key).digest()
  return new Uint8Array(h.subarray(0, KID_BYTES))
}

const TOPIC_PREFIX = 'fleetmesh/room/'
const TOPIC_SUFFIX = '/1'

/** Gossip topic of one room: its member hosts and relays subscribe (see service.ts, topics.ts). */
export function roomTopic (room: string): string {
  return `${TOPIC_PREFIX}${room}${TOPIC_SUFFIX}`
}

/** The room a gossip topic belongs to, or undefined for any other topic. */
export function roomOfTopic (topic: string): string | undefined {
  if (!topic.startsWith(TOPIC_PREFIX) || !topic.endsWith(TOPIC_SUFFIX)) return undefined
  const room = topic.slice(TOPIC_PREFIX.length, -TOPIC_SUFFIX.length)
  return isRoomId(room) ? room : undefined
}

// --- message frames --------------------------------------------------------------------------

/** A room message with the sending host's Ed25519 signature over signingBytes(msg). */
export interface SignedRoomMessage extends RoomMessage { sig: Uint8Array }

function wrap<T> (fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof CanonicalError) throw new RoomError(err.code === 'TOO_LARGE' ? 'ROOM_FRAME_TOO_LARGE' : 'ROOM_FRAME_MALFORMED', err.message)
    throw err
  }
}

function frameMalformed (why: string): never {
  throw new RoomError('ROOM_FRAME_MALFORMED', why)
}

function exactMap (v: unknown, keys: string[]): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) frameMalformed('not a map')
  const got = Object.keys(v).sort()
  if (got.length !== keys.length || got.some((k, i) => k !== keys[i])) frameMalformed(`fields must be exactly ${keys.join(', ')}`)
  return v as Record<string, unknown>
}

export function encodeFrame (m: SignedRoomMessage): Uint8Array {
  return encodeCanonical({ v: FRAME_VERSION, room: m.room, epoch: m.epoch, sender: m.sender, agent: m.agent, seq: m.seq, ts: m.ts, ct: m.ciphertext, sig: m.sig })
}

export function decodeFrame (bytes: Uint8Array): SignedRoomMessage {
  const v = wrap(() => decodeCanonical(bytes, MAX_FRAME_BYTES))
  const f = exactMap(v, ['agent', 'ct', 'epoch', 'room', 'sender', 'seq', 'sig', 'ts', 'v'])
  if (f.v !== FRAME_VERSION) frameMalformed(`frame version ${String(f.v)} is not ${FRAME_VERSION}`)
  if (!isRoomId(f.room)) frameMalformed('room must be 32 hex characters')
  if (!isPeerId(f.sender)) frameMalformed('sender must be an Ed25519 peer id')
  if (!isAgentName(f.agent)) frameMalformed('agent is not a valid agent name')
  for (const k of ['epoch', 'seq', 'ts'] as const) if (!isEpoch(f[k])) frameMalformed(`${k} must be a non-negative integer`)
  if (!(f.ct instanceof Uint8Array) || f.ct.length < ROOM_NONCE_BYTES + TAG_BYTES) frameMalformed('ciphertext is shorter than nonce and tag')
  if (!(f.sig instanceof Uint8Array) || f.sig.length !== SIG_BYTES) frameMalformed(`sig must be ${SIG_BYTES} bytes`)
  return { room: f.room, epoch: f.epoch as number, sender: f.sender, agent: f.agent, seq: f.seq as number, ts: f.ts as number, ciphertext: f.ct, sig: f.sig }
}

// --- history protocol ------------------------------------------------------------------------

/** Ask a member for the frames of `room` it keeps with ts >= `since`. */
export interface HistoryRequest { room: string, since: number }

export type HistoryResponse =
  | { t: 'msgs', msgs: Uint8Array[] }
  | { t: 'end' }
  | { t: 'error', code: string, message: string }

export function encodeHistoryRequest (r: HistoryRequest): Uint8Array {
  return encodeCanonical({ room: r.room, since: r.since })
}

export function decodeHistoryRequest (bytes: Uint8Array): HistoryRequest {
  const m = exactMap(wrap(() => decodeCanonical(bytes, MAX_HISTORY_REQUEST_BYTES)), ['room', 'since'])
  if (!isRoomId(m.room) || !isEpoch(m.since)) frameMalformed('a history request is {room, since}')
  return { room: m.room, since: m.since }
}

export function encodeHistoryResponse (r: HistoryResponse): Uint8Array {
  return encodeCanonical(r)
}

export function decodeHistoryResponse (bytes: Uint8Array): HistoryResponse {
  const v = wrap(() => decodeCanonical(bytes, MAX_HISTORY_FRAME_BYTES))
  switch ((v as Record<string, unknown> | null)?.t) {
    case 'msgs': {
      const msgs = exactMap(v, ['msgs', 't']).msgs
      if (!Array.isArray(msgs) || msgs.length === 0 || msgs.length > HISTORY_BATCH || !msgs.every(m => m instanceof Uint8Array)) frameMalformed(`msgs is a list of 1..${HISTORY_BATCH} frames`)
      return { t: 'msgs', msgs }
    }
    case 'end':
      exactMap(v, ['t'])
      return { t: 'end' }
    case 'error': {
      const m = exactMap(v, ['code', 'message', 't'])
      if (typeof m.code !== 'string' || typeof m.message !== 'string' || m.code.length > 64 || m.message.length > 1024) frameMalformed('error is {code, message}')
      return { t: 'error', code: m.code, message: m.message }
    }
    default:
      return frameMalformed('unknown history response type')
  }
}
