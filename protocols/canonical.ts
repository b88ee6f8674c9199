// The one canonical encoding of every record and message of this layer: deterministic CBOR
// (RFC 8949 §4.2.1 core deterministic: bytewise-sorted map keys, shortest integers and lengths,
// definite lengths) with no floats, no undefined, no tags and only string map keys. Decoders
// re-encode what they decoded and compare, so two different byte strings can never mean the
// same record: a signature or hash over the bytes is then a signature or hash over the meaning.
import { createHash } from 'node:crypto'
import { decode, encode, rfc8949EncodeOptions } from 'cborg'

const MAX_DEPTH = 32

const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true
}

export type CanonicalErrorCode =
  /** a value outside the data model that has one deterministic encoding (float, undefined, …) */
  | 'NOT_CANONICAL'
  /** bytes that are not strict CBOR, or not the canonical encoding of their value */
  | 'MALFORMED'
  /** input over the caller's size limit, refused before it is parsed */
  | 'TOO_LARGE'

/** Each folder maps these codes onto its own typed errors (a sync frame, a room frame, a stored record). */
export class CanonicalError extends Error {
  override readonly name = 'CanonicalError'
  constructor (readonly code: CanonicalErrorCode, message: string) {
    super(message)
  }
}

/**
 * Throws NOT_CANONICAL unless `value` is in the data model that has exactly one deterministic
 * encoding here: plain objects with string keys, arrays, strings (well-formed UTF-16), safe
 * integers other than -0, Uint8Array, booleans and null.
 */
export function assertCanonicalValue (value: unknown, path = 'value', depth = 0): void {
  if (depth > MAX_DEPTH) throw new CanonicalError('NOT_CANONICAL', `${path}: nested deeper than ${MAX_DEPTH}`)
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new CanonicalError('NOT_CANONICAL', `${path}: string with a lone surrogate`)
      return
    case 'number':
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) throw new CanonicalError('NOT_CANONICAL', `${path}: ${value} is not a safe integer (floats are not allowed)`)
      return
    case 'boolean':
      return
    case 'object': {
      if (value === null || value instanceof Uint8Array) return
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertCanonicalValue(value[i], `${path}[${i}]`, depth + 1)
        return
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalError('NOT_CANONICAL', `${path}: ${proto?.constructor?.name ?? 'object'} is not a plain object`)
      }
      if (Object.getOwnPropertySymbols(value).length > 0) throw new CanonicalError('NOT_CANONICAL', `${path}: symbol keys are not allowed`)
      for (const [k, v] of Object.entries(value)) assertCanonicalValue(v, `${path}.${k}`, depth + 1)
      return
    }
    default:
      throw new CanonicalError('NOT_CANONICAL', `${path}: ${typeof value} is not allowed`)
  }
}

/** Canonical CBOR of a value that assertCanonicalValue has already accepted. */
export function encodeChecked (value: unknown): Uint8Array {
  return asU8(encode(value, rfc8949EncodeOptions))
}

/** Canonical bytes of any value in the data model above. */
export function encodeCanonical (value: unknown): Uint8Array {
  assertCanonicalValue(value)
  return encodeChecked(value)
}

/**
 * Strict decode without the canonical check: oversize input, anything cborg refuses in strict
 * mode, and trailing bytes are rejected. For containers (sync frames) whose items are themselves
 * checked canonically; re-encoding a whole frame would only cost time.
 */
export function decodeStrict (bytes: Uint8Array, maxBytes: number): unknown {
  if (bytes.length > maxBytes) throw new CanonicalError('TOO_LARGE', `${bytes.length} bytes exceeds the limit of ${maxBytes}`)
  try {
    // decode() itself rejects trailing bytes
    return decode(bytes, DECODE_OPTIONS)
  } catch (err) {
    throw new CanonicalError('MALFORMED', `not strict CBOR: ${(err as Error).message}`)
  }
}

/** decodeStrict, then: the bytes must be the one canonical encoding of the value they decode to. */
export function decodeCanonical (bytes: Uint8Array, maxBytes: number): unknown {
  const value = decodeStrict(bytes, maxBytes)
  let again: Uint8Array
  try {
    again = encodeCanonical(value)
  } catch (err) {
    throw new CanonicalError('MALFORMED', `not in the canonical data model: ${(err as Error).message}`)
  }
  if (!bytesEqual(again, bytes)) throw new CanonicalError('MALFORMED', 'not the canonical encoding of its value (key order, float or length form)')
  return value
}

/** A plain Uint8Array view of the same memory: cborg and level hand out Buffers, callers compare with deepEqual. */
export function asU8 (b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}

export function sha256 (bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}
