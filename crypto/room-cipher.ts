// Room messages (docs/architecture.md, rooms): the body is XChaCha20-Poly1305 under the room's epoch key, with
// the canonical header (every field but the ciphertext) as associated data, so a relay can
// neither read a message nor move it to another room, epoch, sender, agent, seq or time.
//
// ciphertext = nonce(24) || AEAD(plaintext) || tag(16)
//
// The nonce is random, not derived from (sender, seq): many agents on many hosts share one
// epoch key, and a host that crashes before persisting its seq, or two processes speaking for
// one host, would reuse a derived nonce, which under ChaCha20-Poly1305 leaks the plaintexts'
// XOR and the one-time MAC key. 192 random bits make a collision negligible for any number of
// messages an epoch will ever carry, and cost nothing to keep.
//
// The sending host signs `signingBytes(msg)` with its Ed25519 key (crypto/sign.ts); the
// signature and the wire framing belong to the rooms protocol.
import { randomBytes } from 'node:crypto'
import { encode as cborEncode, rfc8949EncodeOptions } from 'cborg'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { RoomCipherError } from './errors.js'
import { EPOCH_KEY_BYTES } from './seal.js'

export const ROOM_NONCE_BYTES = 24
const TAG_BYTES = 16
export const MAX_ROOM_PLAINTEXT_BYTES = 64 * 1024
const MAX_ID_CHARS = 256
const HEADER_VERSION = 1
const SIGNING_DOMAIN = new TextEncoder().encode('fleetmesh room message v1\0')

export interface RoomHeader {
  room: string
  /** the epoch whose key encrypts this message */
  epoch: number
  /** the sending host's peer id */
  sender: string
  /** the agent on the sending host */
  agent: string
  /** per (sender, agent) counter, for ordering and gap detection by readers */
  seq: number
  /** milliseconds since the epoch, as claimed by the sender */
  ts: number
}

export interface RoomMessage extends RoomHeader {
  ciphertext: Uint8Array
}

function malformed (message: string): never {
  throw new RoomCipherError('ROOM_MSG_MALFORMED', message)
}

function checkHeader (h: RoomHeader): void {
  for (const f of ['room', 'sender', 'agent'] as const) {
    const v: unknown = h[f]
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_CHARS) malformed(`${f} must be a string of 1..${MAX_ID_CHARS} characters`)
  }
  for (const f of ['epoch', 'seq', 'ts'] as const) {
    const v: unknown = h[f]
    if (!Number.isSafeInteger(v) || (v as number) < 0) malformed(`${f} must be a non-negative integer`)
  }
}

function checkKey (key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== EPOCH_KEY_BYTES) malformed(`epoch key must be ${EPOCH_KEY_BYTES} bytes`)
}

/** The associated data: deterministic CBOR of the header fields and a format version. */
export function headerBytes (h: RoomHeader): Uint8Array {
  checkHeader(h)
  return cborEncode({ v: HEADER_VERSION, room: h.room, epoch: h.epoch, sender: h.sender, agent: h.agent, seq: h.seq, ts: h.ts }, rfc8949EncodeOptions)
}

export function encryptRoomMessage (key: Uint8Array, header: RoomHeader, plaintext: Uint8Array): RoomMessage {
  checkKey(key)
  if (plaintext.length > MAX_ROOM_PLAINTEXT_BYTES) {
    throw new RoomCipherError('ROOM_MSG_TOO_LARGE', `room message is ${plaintext.length} bytes (max ${MAX_ROOM_PLAINTEXT_BYTES})`)
  }
  const aad = headerBytes(header)
  const nonce = new Uint8Array(randomBytes(ROOM_NONCE_BYTES))
  const sealed = xchacha20poly1305(key, nonce, aad).encrypt(plaintext)
  const ciphertext = new Uint8Array(ROOM_NONCE_BYTES + sealed.length)
  ciphertext.set(nonce, 0)
  ciphertext.set(sealed, ROOM_NONCE_BYTES)
  const { room, epoch, sender, agent, seq, ts } = header
  return { room, epoch, sender, agent, seq, ts, ciphertext }
}

export function decryptRoomMessage (key: Uint8Array, msg: RoomMessage): Uint8Array {
  checkKey(key)
  const aad = headerBytes(msg)
  const ct = msg.ciphertext
  if (!(ct instanceof Uint8Array) || ct.length < ROOM_NONCE_BYTES + TAG_BYTES) malformed('ciphertext is shorter than nonce and tag')
  if (ct.length > ROOM_NONCE_BYTES + MAX_ROOM_PLAINTEXT_BYTES + TAG_BYTES) {
    throw new RoomCipherError('ROOM_MSG_TOO_LARGE', `room ciphertext is ${ct.length} bytes`)
  }
  try {
    return xchacha20poly1305(key, ct.subarray(0, ROOM_NONCE_BYTES), aad).decrypt(ct.subarray(ROOM_NONCE_BYTES))
  } catch {
    throw new RoomCipherError('ROOM_MSG_AUTH_FAILED', `message ${msg.sender}/${msg.agent}#${msg.seq} in room ${msg.room} epoch ${msg.epoch} does not authenticate under this epoch key`)
  }
}

/**
 * What the sending host signs: a domain tag (so a room signature can never pass as an audit
 * entry signature by the same key) then deterministic CBOR of the whole message.
 */
export function signingBytes (msg: RoomMessage): Uint8Array {
  checkHeader(msg)
  if (!(msg.ciphertext instanceof Uint8Array)) malformed('ciphertext must be bytes')
  const body = cborEncode({ room: msg.room, epoch: msg.epoch, sender: msg.sender, agent: msg.agent, seq: msg.seq, ts: msg.ts, ciphertext: msg.ciphertext }, rfc8949EncodeOptions)
  const out = new Uint8Array(SIGNING_DOMAIN.length + body.length)
  out.set(SIGNING_DOMAIN, 0)
  out.set(body, SIGNING_DOMAIN.length)
  return out
}
