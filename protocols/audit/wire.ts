// Schemas of the replication messages: the sync protocol's requests and response frames, and the
// gossiped head announcements. Each is a CBOR map with a `t` tag, decoded strictly and checked
// field by field; entries inside frames stay opaque bytes here and are checked by the store.
import { FEED_RE } from '../../crypto/ids.js'
import { lengthPrefixFault, MAX_ERROR_MESSAGE_CHARS, type EndFrame, type ErrorFrame, type Exchange } from '../reqresp.js'
import { encodeCanonical, decodeStrict, HASH_BYTES } from './codec.js'
import { AuditError } from './errors.js'
import type { Head } from './types.js'

export const SYNC_PROTOCOL = '/fleetmesh/audit-sync/1.0.0'
export const HEADS_TOPIC = 'fleetmesh/audit/heads/1'

export const MAX_REQUEST_BYTES = 512
/** heads per head-vector frame: ~100 bytes each */
export const MAX_HEADS_PER_MESSAGE = 1024
const MAX_HEADS_FRAME_BYTES = MAX_HEADS_PER_MESSAGE * 128
/**
 * An announcement names one head, its publisher's own: a host announces only its own feed
 * (the others are repaired by head vectors), so anything longer is no honest announcement.
 */
export const MAX_ANNOUNCE_BYTES = 512
/** target payload of one entries frame; a single entry may exceed it up to the entry limit */
export const BATCH_BYTES = 512 * 1024
export const MAX_BATCH_ENTRIES = 512

export type SyncRequest =
  | { t: 'heads' }
  | { t: 'range', feed: string, from: number, to: number }

/** What a response carries; `end` and `error` close it (see reqresp.ts). */
export type SyncData =
  | { t: 'heads', heads: Head[] }
  | { t: 'entries', entries: Uint8Array[] }

export type SyncFrame = SyncData | EndFrame | ErrorFrame

/** Largest frame a peer may send, given the largest entry it may carry. */
export function maxFrameBytes (maxEntry: number): number {
  return Math.max(BATCH_BYTES, MAX_HEADS_FRAME_BYTES) + maxEntry + 64
}


function bad (why: string): AuditError {
  return new AuditError('MESSAGE_MALFORMED', why)
}

function asMap (v: unknown, keys: string[]): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw bad('message is not a map')
  const got = Object.keys(v).sort()
  if (got.length !== keys.length || got.some((k, i) => k !== keys[i])) throw bad(`message fields must be exactly ${keys.join(', ')}`)
  return v as Record<string, unknown>
}

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

function encodeHeads (heads: Head[]): unknown[] {
  return heads.map(h => [h.feed, h.seq, h.hash])
}

function decodeHeads (v: unknown, max = MAX_HEADS_PER_MESSAGE): Head[] {
  if (!Array.isArray(v) || v.length > max) throw bad(`heads must be a list of at most ${max}`)
  return v.map((h: unknown) => {
    if (!Array.isArray(h) || h.length !== 3 || typeof h[0] !== 'string' || !FEED_RE.test(h[0]) || !isSeq(h[1]) || !(h[2] instanceof Uint8Array) || h[2].length !== HASH_BYTES) {
      throw bad('a head is [feed, seq, 32-byte hash]')
    }
    return { feed: h[0], seq: h[1], hash: h[2] }
  })
}

export function encodeRequest (r: SyncRequest): Uint8Array {
  return encodeCanonical(r)
}

export function decodeRequest (bytes: Uint8Array): SyncRequest {
  const v = decodeStrict(bytes, MAX_REQUEST_BYTES)
  const t = (v as Record<string, unknown> | null)?.t
  if (t === 'heads') {
    asMap(v, ['t'])
    return { t }
  }
  if (t === 'range') {
    const m = asMap(v, ['feed', 'from', 't', 'to'])
    if (typeof m.feed !== 'string' || !FEED_RE.test(m.feed) || !isSeq(m.from) || !isSeq(m.to) || m.to < m.from) throw bad('range is {feed, from ≤ to}')
    return { t, feed: m.feed, from: m.from, to: m.to }
  }
  throw bad('unknown request type')
}

export function encodeFrame (f: SyncFrame): Uint8Array {
  return encodeCanonical(f.t === 'heads' ? { t: f.t, heads: encodeHeads(f.heads) } : f)
}

export function decodeFrame (bytes: Uint8Array, maxBytes: number): SyncFrame {
  const v = decodeStrict(bytes, maxBytes)
  const t = (v as Record<string, unknown> | null)?.t
  switch (t) {
    case 'heads':
      return { t, heads: decodeHeads(asMap(v, ['heads', 't']).heads) }
    case 'entries': {
      const entries = asMap(v, ['entries', 't']).entries
      if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_BATCH_ENTRIES || !entries.every(e => e instanceof Uint8Array)) {
        throw bad(`entries is a list of 1..${MAX_BATCH_ENTRIES} byte strings`)
      }
      return { t, entries }
    }
    case 'end':
      asMap(v, ['t'])
      return { t }
    case 'error': {
      const m = asMap(v, ['code', 'message', 't'])
      if (typeof m.code !== 'string' || typeof m.message !== 'string' || m.code.length > 64 || m.message.length > MAX_ERROR_MESSAGE_CHARS) throw bad('error is {code, message}')
      return { t, code: m.code, message: m.message }
    }
    default:
      throw bad('unknown frame type')
  }
}

export function encodeAnnouncement (head: Head): Uint8Array {
  return encodeCanonical({ heads: encodeHeads([head]) })
}

/** An announcement's heads: a list on the wire, of exactly one. */
export function decodeAnnouncement (bytes: Uint8Array): [Head] {
  const v = decodeStrict(bytes, MAX_ANNOUNCE_BYTES)
  const heads = decodeHeads(asMap(v, ['heads']).heads, 1)
  if (heads.length !== 1) throw bad('an announcement names one head')
  return [heads[0]]
}

/** Any failure of an exchange as the audit chain's typed error; length-prefix faults by what they mean. */
export function toAuditError (err: unknown): AuditError {
  if (err instanceof AuditError) return err
  const fault = lengthPrefixFault(err)
  if (fault === 'too-large') return new AuditError('MESSAGE_TOO_LARGE', (err as Error).message)
  if (fault === 'malformed') return new AuditError('MESSAGE_MALFORMED', (err as Error).message)
  return new AuditError('SYNC_FAILED', (err as Error)?.message ?? String(err))
}

/** The sync protocol's exchange, for peers whose frames may carry entries up to `maxEntry` bytes. */
export function syncExchange (maxEntry: number): Exchange<SyncRequest, SyncData, AuditError> {
  const maxFrame = maxFrameBytes(maxEntry)
  return {
    maxRequestBytes: MAX_REQUEST_BYTES,
    maxFrameBytes: maxFrame,
    encodeRequest,
    decodeRequest,
    encodeFrame,
    decodeFrame: (bytes) => decodeFrame(bytes, maxFrame),
    toError: toAuditError,
    failed: (message) => new AuditError('SYNC_FAILED', message)
  }
}
