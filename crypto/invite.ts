// Invite codes and the pairing proof (docs/architecture.md, membership).
//
// A code is `fm2-` + base32 (RFC 4648 alphabet, lowercase, no padding) of
//   payload || checksum
// where payload is the canonical CBOR array
//   [meshId, inviterPublicKey, founderPublicKey (libp2p protobuf), [multiaddr bytes…], secret(32), expiresAt, uses, role, [tag…]]
// and checksum = first 4 bytes of SHA-256("fm2-" || payload). The founder's key lets the joiner
// check the welcome: an inviter cannot pin the joiner's genesis to a founder of its own.
// Version 1 codes (no founder) are refused with INVITE_VERSION. Base32 survives terminals,
// chat clients and double-click selection; binary peer ids and multiaddrs keep it short; the
// checksum lets a damaged code be reported as a typo instead of as a bogus invite.
//
// The secret never leaves the code: an Ed25519 key derived from it (HKDF-SHA-256) signs the
// pairing transcript, and the inviter stores only that key's public half. Whoever reads the
// inviter's database (a backup, a local user) learns nothing that pairs: verifying is public,
// signing needs the secret.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { decode as cborDecode, encode as cborEncode, rfc8949EncodeOptions } from 'cborg'
import { ed25519 } from '@noble/curves/ed25519.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { InviteError } from './errors.js'
import { TAG_RE } from './ids.js'

export const INVITE_VERSION = 2
export const INVITE_PREFIX = `fm${INVITE_VERSION}-`
export const INVITE_SECRET_BYTES = 32
/** Longest code accepted, checked before any decoding so a pasted log file costs nothing. */
export const MAX_INVITE_CODE_CHARS = 1024
export const MAX_MESH_ID_CHARS = 128
export const MAX_INVITE_ADDRS = 8
export const MAX_ADDR_BYTES = 128
export const MAX_INVITE_USES = 10_000
/** Tags are shared with membership entries (protocols/membership), which import these. */
export const MAX_TAGS = 32

const CHECKSUM_BYTES = 4
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
const KEY_DOMAIN = 'fleetmesh invite proof key v2'
const ID_DOMAIN = 'fleetmesh invite id v2'
const PROOF_DOMAIN = 'fleetmesh pairing proof v2'
export const PROOF_KEY_BYTES = 32
export const PAIRING_PROOF_BYTES = 64
/** The inviter's fresh per-attempt nonce is at least this long (see PairingContext). */
export const MIN_CHANNEL_BINDING_BYTES = 16
const MAX_CHANNEL_BINDING_BYTES = 256

export type InviteRole = 'host' | 'admin'

export interface Invite {
  meshId: string
  /** the inviter's peer id string; must embed its public key (Ed25519) */
  inviterPeerId: string
  /** the mesh founder's peer id: the welcome must name this founder */
  founderPeerId: string
  /** multiaddrs the joiner can dial, without the /p2p suffix */
  addrs: string[]
  /** 32 random bytes; secret: never logged, never stored by the inviter */
  secret: Uint8Array
  /** unix seconds */
  expiresAt: number
  /** how many joiners may use it: 1 = single use */
  uses: number
  role: InviteRole
  tags: string[]
}

export interface CreatedInvite {
  code: string
  /** names the invite on both sides (admit entries, the inviter's store); not secret */
  inviteId: string
  /** what the inviter stores to verify proofs: an Ed25519 public key, useless for pairing */
  proofKey: Uint8Array
}

const utf8 = new TextEncoder()

function malformed (message: string): never {
  throw new InviteError('INVITE_MALFORMED', message)
}

function sha256 (...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

function base32Encode (bytes: Uint8Array): string {
  let out = ''
  let acc = 0
  let bits = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(acc >>> bits) & 31]
    }
    acc &= (1 << bits) - 1
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31]
  return out
}

function base32Decode (text: string): Uint8Array {
  // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes: a character was dropped or added.
  if ([1, 3, 6].includes(text.length % 8)) {
    throw new InviteError('INVITE_TYPO', 'invite code has a character missing or extra; copy it again')
  }
  const out = new Uint8Array(Math.floor(text.length * 5 / 8))
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < text.length; i++) {
    const v = ALPHABET.indexOf(text[i]!)
    if (v < 0) throw new InviteError('INVITE_TYPO', `invite code has an invalid character "${text[i]}" at position ${i + INVITE_PREFIX.length + 1}`)
    acc = (acc << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >>> bits) & 0xff
    }
    acc &= (1 << bits) - 1
  }
  // Non-zero leftover bits mean the last character was changed: one code, one spelling.
  if (acc !== 0) throw new InviteError('INVITE_TYPO', 'invite code ends in an invalid character; copy it again')
  return out
}

function checkInvite (inv: Invite): void {
  if (typeof inv.meshId !== 'string' || inv.meshId.length === 0 || inv.meshId.length > MAX_MESH_ID_CHARS) {
    malformed(`mesh id must be 1..${MAX_MESH_ID_CHARS} characters`)
  }
  if (!Array.isArray(inv.addrs) || inv.addrs.length > MAX_INVITE_ADDRS) malformed(`at most ${MAX_INVITE_ADDRS} addresses`)
  if (!(inv.secret instanceof Uint8Array) || inv.secret.length !== INVITE_SECRET_BYTES) malformed(`secret must be ${INVITE_SECRET_BYTES} bytes`)
  if (!Number.isSafeInteger(inv.expiresAt) || inv.expiresAt <= 0) malformed('expiry must be a positive integer (unix seconds)')
  if (!Number.isSafeInteger(inv.uses) || inv.uses < 1 || inv.uses > MAX_INVITE_USES) malformed(`uses must be 1..${MAX_INVITE_USES}`)
  if (inv.role !== 'host' && inv.role !== 'admin') malformed('role must be "host" or "admin"')
  checkTags(inv.tags, malformed)
}

/** Shared by invites and membership bodies; `fail` throws the caller's typed error. */
export function checkTags (tags: unknown, fail: (message: string) => never): asserts tags is string[] {
  if (!Array.isArray(tags) || tags.length > MAX_TAGS) fail(`tags must be an array of at most ${MAX_TAGS}`)
  const seen = new Set<string>()
  for (const t of tags as unknown[]) {
    if (typeof t !== 'string' || !TAG_RE.test(t)) fail(`tag ${JSON.stringify(t)} must match ${TAG_RE}`)
    if (seen.has(t)) fail(`tag "${t}" is repeated`)
    seen.add(t)
  }
}

function peerIdToKeyBytes (peerId: string): Uint8Array {
  let key
  try {
    key = peerIdFromString(peerId).publicKey
  } catch {
    malformed(`"${peerId}" is not a peer id`)
  }
  if (key === undefined) malformed(`peer id ${peerId} does not embed its public key`)
  return publicKeyToProtobuf(key)
}

function keyBytesToPeerId (bytes: unknown, whose: string): string {
  if (!(bytes instanceof Uint8Array)) malformed(`${whose} key must be bytes`)
  try {
    return peerIdFromPublicKey(publicKeyFromProtobuf(bytes)).toString()
  } catch {
    malformed(`${whose} key is not a libp2p public key`)
  }
}

function addrToBytes (addr: string): Uint8Array {
  let bytes
  try {
    bytes = multiaddr(addr).bytes
  } catch {
    malformed(`"${addr}" is not a multiaddr`)
  }
  if (bytes.length > MAX_ADDR_BYTES) malformed(`address ${addr} is longer than ${MAX_ADDR_BYTES} bytes`)
  return bytes
}

function checksum (payload: Uint8Array): Uint8Array {
  return sha256(utf8.encode(INVITE_PREFIX), payload).subarray(0, CHECKSUM_BYTES)
}

export function encodeInvite (inv: Invite): string {
  checkInvite(inv)
  const payload = cborEncode([
    inv.meshId, peerIdToKeyBytes(inv.inviterPeerId), peerIdToKeyBytes(inv.founderPeerId), inv.addrs.map(addrToBytes), inv.secret,
    inv.expiresAt, inv.uses, inv.role, inv.tags
  ], rfc8949EncodeOptions)
  const code = INVITE_PREFIX + base32Encode(concat(payload, checksum(payload)))
  if (code.length > MAX_INVITE_CODE_CHARS) {
    throw new InviteError('INVITE_TOO_LARGE', `invite code would be ${code.length} characters (max ${MAX_INVITE_CODE_CHARS}): use fewer addresses or tags`)
  }
  return code
}

export function decodeInvite (input: string): Invite {
  if (typeof input !== 'string') malformed('invite code must be a string')
  // Terminals and chat clients wrap and re-case long strings; neither changes the code.
  const text = input.replace(/\s+/g, '').toLowerCase()
  if (text.length > MAX_INVITE_CODE_CHARS) {
    throw new InviteError('INVITE_TOO_LARGE', `invite code is ${text.length} characters (max ${MAX_INVITE_CODE_CHARS})`)
  }
  const prefix = /^fm(\d+)-/.exec(text)
  if (prefix === null) malformed(`not a fleetmesh invite code (expected it to start with "${INVITE_PREFIX}")`)
  if (prefix[0] !== INVITE_PREFIX) {
    throw new InviteError('INVITE_VERSION', `invite code version ${prefix[1]} is not supported (this build reads version ${INVITE_VERSION})`)
  }
  const raw = base32Decode(text.slice(prefix[0].length))
  if (raw.length <= CHECKSUM_BYTES) throw new InviteError('INVITE_TYPO', 'invite code is truncated; copy it again')
  const payload = raw.subarray(0, raw.length - CHECKSUM_BYTES)
  if (!timingSafeEqual(checksum(payload), raw.subarray(raw.length - CHECKSUM_BYTES))) {
    throw new InviteError('INVITE_TYPO', 'invite code checksum does not match: it was mistyped or cut short; copy it again')
  }
  return parsePayload(payload)
}

function parsePayload (payload: Uint8Array): Invite {
  let fields: unknown
  try {
    fields = cborDecode(payload, { strict: true, allowIndefinite: false, allowUndefined: false, allowBigInt: false, rejectDuplicateMapKeys: true })
  } catch (err) {
    malformed(`invite payload is not valid CBOR: ${(err as Error).message}`)
  }
  if (!Array.isArray(fields) || fields.length !== 9) malformed('invite payload must be an array of 9 fields')
  const [meshId, inviterKey, founderKey, addrBytes, secret, expiresAt, uses, role, tags] = fields as unknown[]
  const inviterPeerId = keyBytesToPeerId(inviterKey, 'inviter')
  const founderPeerId = keyBytesToPeerId(founderKey, 'founder')
  if (!Array.isArray(addrBytes) || addrBytes.length > MAX_INVITE_ADDRS) malformed(`at most ${MAX_INVITE_ADDRS} addresses`)
  const addrs = addrBytes.map((b: unknown) => {
    if (!(b instanceof Uint8Array) || b.length > MAX_ADDR_BYTES) malformed(`address must be bytes, at most ${MAX_ADDR_BYTES}`)
    try {
      return multiaddr(b).toString()
    } catch {
      malformed('address is not a multiaddr')
    }
  })
  const inv = { meshId, inviterPeerId, founderPeerId, addrs, secret, expiresAt, uses, role, tags } as Invite
  checkInvite(inv)
  // One invite, one encoding: anything our encoder would not have produced is rejected.
  if (!equalBytes(cborEncode([meshId, inviterKey, founderKey, addrBytes, secret, expiresAt, uses, role, tags], rfc8949EncodeOptions), payload)) {
    malformed('invite payload is not canonically encoded')
  }
  return inv
}

export interface CreateInviteParams {
  meshId: string
  inviterPeerId: string
  founderPeerId: string
  addrs: string[]
  /** unix seconds */
  expiresAt: number
  uses: number
  role: InviteRole
  tags: string[]
}

/** Makes a fresh invite. The secret lives only in `code`: print it once, store `proofKey`. */
export function createInvite (params: CreateInviteParams): CreatedInvite {
  const secret = new Uint8Array(randomBytes(INVITE_SECRET_BYTES))
  try {
    const code = encodeInvite({ ...params, secret })
    const proofKey = inviteProofKey(secret)
    return { code, inviteId: inviteIdOf(proofKey), proofKey }
  } finally {
    secret.fill(0)
  }
}

/** The Ed25519 signing key of an invite; the caller zeroises it after use. */
function proofSigningKey (secret: Uint8Array): Uint8Array {
  if (!(secret instanceof Uint8Array) || secret.length !== INVITE_SECRET_BYTES) malformed(`secret must be ${INVITE_SECRET_BYTES} bytes`)
  return hkdf(nobleSha256, secret, undefined, utf8.encode(KEY_DOMAIN), 32)
}

/** The public key that checks an invite's pairing proofs: what the inviter stores. */
export function inviteProofKey (secret: Uint8Array): Uint8Array {
  const signing = proofSigningKey(secret)
  try {
    return ed25519.getPublicKey(signing)
  } finally {
    signing.fill(0)
  }
}

/** 32 hex characters naming the invite; derived from its proof key so both sides compute it. */
export function inviteIdOf (proofKey: Uint8Array): string {
  return Buffer.from(sha256(utf8.encode(ID_DOMAIN), proofKey).subarray(0, 16)).toString('hex')
}

/** The joiner's side of inviteIdOf: the id its code names. */
export function inviteIdOfSecret (secret: Uint8Array): string {
  return inviteIdOf(inviteProofKey(secret))
}

export function isExpired (invite: Pick<Invite, 'expiresAt'>, nowSeconds: number): boolean {
  return nowSeconds >= invite.expiresAt
}

/**
 * What a pairing proof is bound to. `channelBinding` must be unique to this pairing attempt:
 * the pairing protocol has the inviter send a fresh random nonce (32 bytes recommended, at
 * least 16) on the authenticated connection, and both sides pass it here (append the Noise
 * handshake hash to it if the encrypter exposes one). The peer ids must be the ones the Noise
 * handshake authenticated, not ones read from the messages: that, with the nonce, stops a
 * proof from being replayed on another connection or relayed by a third peer.
 */
export interface PairingContext {
  meshId: string
  joinerPeerId: string
  inviterPeerId: string
  channelBinding: Uint8Array
}

function transcript (ctx: PairingContext): Uint8Array {
  if (!(ctx.channelBinding instanceof Uint8Array) || ctx.channelBinding.length < MIN_CHANNEL_BINDING_BYTES || ctx.channelBinding.length > MAX_CHANNEL_BINDING_BYTES) {
    malformed(`channel binding must be ${MIN_CHANNEL_BINDING_BYTES}..${MAX_CHANNEL_BINDING_BYTES} bytes`)
  }
  // Length-prefixing every field keeps ("ab","c") and ("a","bc") from producing one input.
  const fields = [utf8.encode(PROOF_DOMAIN), utf8.encode(ctx.meshId), utf8.encode(ctx.joinerPeerId), utf8.encode(ctx.inviterPeerId), ctx.channelBinding]
  const out = new Uint8Array(fields.reduce((n, f) => n + 4 + f.length, 0))
  const view = new DataView(out.buffer)
  let at = 0
  for (const f of fields) {
    view.setUint32(at, f.length)
    out.set(f, at + 4)
    at += 4 + f.length
  }
  return out
}

/** Computed by the joiner, who holds the secret from the code: an Ed25519 signature, 64 bytes. */
export function pairingProof (secret: Uint8Array, ctx: PairingContext): Uint8Array {
  const message = transcript(ctx)
  const signing = proofSigningKey(secret)
  try {
    return ed25519.sign(message, signing)
  } finally {
    signing.fill(0)
  }
}

/** Checked by the inviter with the stored public key (strict RFC 8032 verification). */
export function verifyPairingProof (proofKey: Uint8Array, ctx: PairingContext, proof: Uint8Array): boolean {
  if (!(proofKey instanceof Uint8Array) || proofKey.length !== PROOF_KEY_BYTES) malformed(`proof key must be ${PROOF_KEY_BYTES} bytes`)
  const message = transcript(ctx)
  if (!(proof instanceof Uint8Array) || proof.length !== PAIRING_PROOF_BYTES) return false
  try {
    return ed25519.verify(proof, message, proofKey, { zip215: false })
  } catch {
    return false
  }
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}
