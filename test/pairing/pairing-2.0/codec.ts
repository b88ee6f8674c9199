// FROZEN: protocols/pairing/codec.ts as release 42a2a15 shipped it (before host names), byte for
// byte but for import paths: the peer that compat.test.ts pairs the current code with. Never edit.
// The pairing messages: one schema each, canonical CBOR, validated on decode.
//   joiner  -> inviter  hello     { t, v, mesh, invite }
//   inviter -> joiner   challenge { t, nonce }                 | error
//   joiner  -> inviter  proof     { t, proof, xwing }
//   inviter -> joiner   welcome   { t, mesh, name, founder, addrs } | error
import { PAIRING_PROOF_BYTES } from '../../../crypto/invite.js'
import { decodeCanonical, encodeCanonical } from '../../../protocols/canonical.js'
import { PairingError, WIRE_ERROR_CODES, type PairingErrorCode } from './errors.js'

/** 2: the proof is an Ed25519 signature by a key derived from the invite secret (was an HMAC). */
export const PAIRING_VERSION = 2
export const MAX_PAIRING_MESSAGE_BYTES = 8 * 1024
export const NONCE_BYTES = 32
const XWING_PUBLIC_KEY_BYTES = 1216
const MAX_ADDRS = 32

export interface Hello { t: 'hello', v: number, mesh: string, invite: string }
export interface Challenge { t: 'challenge', nonce: Uint8Array }
export interface Proof { t: 'proof', proof: Uint8Array, xwing: Uint8Array }
export interface Welcome { t: 'welcome', mesh: string, name: string, founder: string, addrs: string[] }
export interface ErrorReply { t: 'error', code: PairingErrorCode, message: string }
export type PairingMessage = Hello | Challenge | Proof | Welcome | ErrorReply

function bad (why: string): never {
  throw new PairingError('PAIRING_MALFORMED', `malformed pairing message: ${why}`)
}

const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length > 0 && v.length <= max
const isBytes = (v: unknown, len: number): v is Uint8Array => v instanceof Uint8Array && v.length === len

function exactKeys (m: Record<string, unknown>, keys: string[]): void {
  const got = Object.keys(m).sort()
  if (got.length !== keys.length || got.some((k, i) => k !== [...keys].sort()[i])) bad(`fields ${got.join(',')} (expected ${keys.join(',')})`)
}

function validate (m: Record<string, unknown>): PairingMessage {
  switch (m.t) {
    case 'hello':
      exactKeys(m, ['t', 'v', 'mesh', 'invite'])
      if (m.v !== PAIRING_VERSION) bad(`version ${String(m.v)}`)
      if (!isStr(m.mesh, 128) || !isStr(m.invite, 64)) bad('hello fields')
      return m as unknown as Hello
    case 'challenge':
      exactKeys(m, ['t', 'nonce'])
      if (!isBytes(m.nonce, NONCE_BYTES)) bad('nonce')
      return m as unknown as Challenge
    case 'proof':
      exactKeys(m, ['t', 'proof', 'xwing'])
      if (!isBytes(m.proof, PAIRING_PROOF_BYTES) || !isBytes(m.xwing, XWING_PUBLIC_KEY_BYTES)) bad('proof fields')
      return m as unknown as Proof
    case 'welcome':
      exactKeys(m, ['t', 'mesh', 'name', 'founder', 'addrs'])
      if (!isStr(m.mesh, 128) || typeof m.name !== 'string' || m.name.length > 128 || !isStr(m.founder, 128)) bad('welcome fields')
      if (!Array.isArray(m.addrs) || m.addrs.length > MAX_ADDRS || !m.addrs.every((a) => isStr(a, 512))) bad('addrs')
      return m as unknown as Welcome
    case 'error':
      exactKeys(m, ['t', 'code', 'message'])
      if (!isStr(m.code, 64) || !WIRE_ERROR_CODES.has(m.code) || typeof m.message !== 'string' || m.message.length > 512) bad('error fields')
      return m as unknown as ErrorReply
    default:
      bad(`unknown type ${String(m.t)}`)
  }
}

export function encodePairing (msg: PairingMessage): Uint8Array {
  const bytes = encodeCanonical(msg)
  if (bytes.length > MAX_PAIRING_MESSAGE_BYTES) bad('too large')
  return bytes
}

export function decodePairing (bytes: Uint8Array): PairingMessage {
  let value: unknown
  try {
    value = decodeCanonical(bytes, MAX_PAIRING_MESSAGE_BYTES)
  } catch (err) {
    bad((err as Error).message)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) bad('not a map')
  return validate(value as Record<string, unknown>)
}
