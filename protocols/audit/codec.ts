// The audit entry's encoding: canonical CBOR (protocols/canonical.ts) of a fixed envelope,
// with AuditError codes for what the shared encoder refuses, so the store, sync and CLI keep
// branching on one set of codes.
import { encode, rfc8949EncodeOptions } from 'cborg'
import { FEED_RE, MAX_FEED_CHARS } from '../../crypto/ids.js'
import * as canonical from '../canonical.js'
import { asU8, bytesEqual, sha256 } from '../canonical.js'
import { AuditError } from './errors.js'
import type { BodyValidator, Entry } from './types.js'

export { asU8, bytesEqual, sha256 }

export const PREV_BYTES = 32
export const HASH_BYTES = 32
export const SIG_BYTES = 64
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024
export const ZERO_HASH: Uint8Array = new Uint8Array(PREV_BYTES)

const MAX_KIND_CHARS = 64
// Every envelope field but the body has a bounded size: keys (31 bytes), map header, prev and
// sig (100), two 9-byte integers, and the feed and kind strings with their headers.
const MAX_ENVELOPE_BYTES = 1 + 31 + 34 + 66 + 9 + 9 + (2 + MAX_FEED_CHARS) + (2 + MAX_KIND_CHARS)
// Kinds are identifiers, never free text, so they can key an index without escaping.
const KIND_RE = /^[a-z][a-z0-9.:-]*$/
const ENTRY_KEYS = ['body', 'feed', 'kind', 'prev', 'seq', 'sig', 'ts']

export interface CodecLimits {
  /** largest accepted encoded body, in bytes (default 64 KiB) */
  maxBodyBytes: number
}

export const DEFAULT_LIMITS: CodecLimits = { maxBodyBytes: DEFAULT_MAX_BODY_BYTES }

/** The largest entry (all fields) that can carry a body of `limits.maxBodyBytes`. */
export function maxEntryBytes (limits: CodecLimits = DEFAULT_LIMITS): number {
  return limits.maxBodyBytes + MAX_ENVELOPE_BYTES
}

type MalformedCode = 'ENTRY_MALFORMED' | 'MESSAGE_MALFORMED' | 'STORE_CORRUPT'
type TooLargeCode = 'ENTRY_TOO_LARGE' | 'MESSAGE_TOO_LARGE' | 'STORE_CORRUPT'

function asAuditError<T> (fn: () => T, malformed: MalformedCode = 'MESSAGE_MALFORMED', tooLarge: TooLargeCode = 'MESSAGE_TOO_LARGE'): T {
  try {
    return fn()
  } catch (err) {
    if (!(err instanceof canonical.CanonicalError)) throw err
    throw new AuditError(err.code === 'NOT_CANONICAL' ? 'BODY_NOT_CANONICAL' : err.code === 'TOO_LARGE' ? tooLarge : malformed, err.message)
  }
}

/** BODY_NOT_CANONICAL unless `value` is in the canonical data model (see protocols/canonical.ts). */
export function assertCanonicalValue (value: unknown, path = 'body'): void {
  asAuditError(() => { canonical.assertCanonicalValue(value, path) })
}

/** Canonical bytes of any value in the data model (used by every record of this folder). */
export function encodeCanonical (value: unknown): Uint8Array {
  return asAuditError(() => canonical.encodeCanonical(value))
}

/** canonical.decodeStrict with this folder's error codes. */
export function decodeStrict (bytes: Uint8Array, maxBytes: number, malformed: MalformedCode = 'MESSAGE_MALFORMED', tooLarge: TooLargeCode = 'MESSAGE_TOO_LARGE'): unknown {
  return asAuditError(() => canonical.decodeStrict(bytes, maxBytes), malformed, tooLarge)
}

/** canonical.decodeCanonical with this folder's error codes. */
export function decodeCanonical (bytes: Uint8Array, maxBytes: number, malformed: MalformedCode = 'MESSAGE_MALFORMED', tooLarge: TooLargeCode = 'MESSAGE_TOO_LARGE'): unknown {
  return asAuditError(() => canonical.decodeCanonical(bytes, maxBytes), malformed, tooLarge)
}

function uintLength (n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9
}

// In canonical order the keys sort as ts, seq, sig, body, feed, kind, prev (shorter encoded key
// first). The signed form is the same map without "sig", so it is the full encoding with one
// 70-byte slice (key "sig" + 64-byte byte string) taken out after ts and seq and the map header
// turned from 7 to 6 entries: one encode per entry instead of two.
const SIG_FIELD_HEAD = Uint8Array.of(0x63, 0x73, 0x69, 0x67, 0x58, 0x40)
const SIG_FIELD_BYTES = SIG_FIELD_HEAD.length + SIG_BYTES

function sigFieldOffset (ts: number, seq: number): number {
  return 1 + 3 + uintLength(ts) + 4 + uintLength(seq)
}

function bodyLength (entryBytes: number, e: Entry): number {
  const envelope = 1 + 31 + 34 + 66 + uintLength(e.ts) + uintLength(e.seq) +
    uintLength(e.feed.length) + e.feed.length + uintLength(e.kind.length) + e.kind.length
  return entryBytes - envelope
}

function malformed (why: string): AuditError {
  return new AuditError('ENTRY_MALFORMED', why)
}

function isBytes (v: unknown, length: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length === length
}

/** Checks every envelope field (not the signature, link or body schema: see verify.ts). */
function assertEnvelope (e: Record<string, unknown>, requireSig: boolean): asserts e is Entry & Record<string, unknown> {
  if (typeof e.feed !== 'string' || !FEED_RE.test(e.feed)) throw malformed('feed must be a base58btc peer id string')
  if (typeof e.seq !== 'number' || !Number.isSafeInteger(e.seq) || e.seq < 0) throw malformed('seq must be a non-negative safe integer')
  if (!isBytes(e.prev, PREV_BYTES)) throw malformed(`prev must be ${PREV_BYTES} bytes`)
  if (typeof e.ts !== 'number' || !Number.isSafeInteger(e.ts) || e.ts < 0) throw malformed('ts must be a non-negative integer of milliseconds')
  if (typeof e.kind !== 'string' || e.kind.length === 0 || e.kind.length > MAX_KIND_CHARS || !KIND_RE.test(e.kind)) throw malformed(`kind must match ${KIND_RE} and be at most ${MAX_KIND_CHARS} characters`)
  if (requireSig && !isBytes(e.sig, SIG_BYTES)) throw malformed(`sig must be ${SIG_BYTES} bytes`)
}

/** Canonical bytes of the signed part {feed, seq, prev, ts, kind, body} of an entry. */
export function signingBytes (entry: Omit<Entry, 'sig'>, limits: CodecLimits = DEFAULT_LIMITS): Uint8Array {
  assertEnvelope(entry as unknown as Record<string, unknown>, false)
  assertCanonicalValue(entry.body)
  const unsigned = { feed: entry.feed, seq: entry.seq, prev: entry.prev, ts: entry.ts, kind: entry.kind, body: entry.body }
  const bytes = asU8(encode(unsigned, rfc8949EncodeOptions))
  const bodyBytes = bodyLength(bytes.length + SIG_FIELD_BYTES, entry as Entry)
  if (bodyBytes > limits.maxBodyBytes) throw new AuditError('ENTRY_TOO_LARGE', `body is ${bodyBytes} bytes, the limit is ${limits.maxBodyBytes}`)
  return bytes
}

/** The full canonical bytes of a signed entry, given the bytes signingBytes() returned for it. */
export function attachSignature (unsignedBytes: Uint8Array, entry: Pick<Entry, 'ts' | 'seq'>, sig: Uint8Array): Uint8Array {
  if (sig.length !== SIG_BYTES) throw malformed(`sig must be ${SIG_BYTES} bytes`)
  const at = sigFieldOffset(entry.ts, entry.seq)
  const out = new Uint8Array(unsignedBytes.length + SIG_FIELD_BYTES)
  out[0] = 0xa7
  out.set(unsignedBytes.subarray(1, at), 1)
  out.set(SIG_FIELD_HEAD, at)
  out.set(sig, at + SIG_FIELD_HEAD.length)
  out.set(unsignedBytes.subarray(at), at + SIG_FIELD_BYTES)
  return out
}

/** The signed part of full canonical entry bytes (inverse of attachSignature). */
export function detachSignature (entryBytes: Uint8Array, entry: Pick<Entry, 'ts' | 'seq'>): Uint8Array {
  const at = sigFieldOffset(entry.ts, entry.seq)
  const out = new Uint8Array(entryBytes.length - SIG_FIELD_BYTES)
  out[0] = 0xa6
  out.set(entryBytes.subarray(1, at), 1)
  out.set(entryBytes.subarray(at + SIG_FIELD_BYTES), at)
  return out
}

/** Canonical bytes of a complete entry; throws ENTRY_MALFORMED, BODY_NOT_CANONICAL or ENTRY_TOO_LARGE. */
export function encodeEntry (entry: Entry, limits: CodecLimits = DEFAULT_LIMITS): Uint8Array {
  if (!isBytes(entry.sig, SIG_BYTES)) throw malformed(`sig must be ${SIG_BYTES} bytes`)
  return attachSignature(signingBytes(entry, limits), entry, entry.sig)
}

/**
 * Strictly decodes one entry: size first (before parsing), then strict CBOR, exact envelope
 * schema, body size, and canonical form. Returns fresh Uint8Arrays (not views into `bytes`).
 */
export function decodeEntry (bytes: Uint8Array, limits: CodecLimits = DEFAULT_LIMITS): Entry {
  const value = decodeCanonical(bytes, maxEntryBytes(limits), 'ENTRY_MALFORMED', 'ENTRY_TOO_LARGE')
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) throw malformed('an entry must be a map')
  const keys = Object.keys(value).sort()
  if (keys.length !== ENTRY_KEYS.length || keys.some((k, i) => k !== ENTRY_KEYS[i])) throw malformed(`an entry has exactly the fields ${ENTRY_KEYS.join(', ')}`)
  const e = value as Record<string, unknown>
  assertEnvelope(e, true)
  const bodyBytes = bodyLength(bytes.length, e)
  if (bodyBytes > limits.maxBodyBytes) throw new AuditError('ENTRY_TOO_LARGE', `body is ${bodyBytes} bytes, the limit is ${limits.maxBodyBytes}`)
  return { feed: e.feed, seq: e.seq, prev: e.prev, ts: e.ts, kind: e.kind, body: e.body, sig: e.sig }
}

/** SHA-256 of the full canonical bytes (signature included): what `prev` and heads point at. */
export function entryHash (entry: Entry | Uint8Array): Uint8Array {
  return sha256(entry instanceof Uint8Array ? entry : encodeEntry(entry))
}

/**
 * Per-kind body schemas. Kinds nobody registered are stored and replicated as they are, but not
 * interpreted; a registered kind's body must pass its validator on append and on receive.
 */
export class KindRegistry {
  private readonly validators = new Map<string, BodyValidator>()

  register (kind: string, validator: BodyValidator): void {
    if (!KIND_RE.test(kind) || kind.length > MAX_KIND_CHARS) throw malformed(`kind must match ${KIND_RE}`)
    if (this.validators.has(kind)) throw new AuditError('KIND_REGISTERED', `a body validator for kind "${kind}" is already registered`)
    this.validators.set(kind, validator)
  }

  /**
   * The one way a folder registers its kinds: its table of parsers, each of which returns the
   * typed body or throws its folder's typed error (reported as BODY_INVALID).
   */
  registerParsers (parsers: Readonly<Record<string, (body: unknown) => unknown>>): void {
    for (const [kind, parse] of Object.entries(parsers)) this.register(kind, (body) => { parse(body); return true })
  }

  has (kind: string): boolean {
    return this.validators.has(kind)
  }

  /** The registered kinds, for a "did you mean" when a query names none of them. */
  kinds (): string[] {
    return [...this.validators.keys()]
  }

  /** Throws BODY_INVALID when a registered validator refuses (returns false or throws). */
  validate (kind: string, body: unknown): void {
    const validator = this.validators.get(kind)
    if (validator === undefined) return
    let ok: boolean
    try {
      ok = validator(body)
    } catch (err) {
      throw new AuditError('BODY_INVALID', `${kind} body: ${(err as Error).message}`)
    }
    if (!ok) throw new AuditError('BODY_INVALID', `${kind} body does not follow its schema`)
  }
}
