// Schemas of the replication messages: the sync protocol's requests and response frames, and the
// gossiped head announcements. Each is a CBOR map with a `t` tag, decoded strictly and checked
// field by field; entries inside frames stay opaque bytes here and are checked by the store.
import { FEED_RE, MAX_FEED_CHARS } from '../../crypto/ids.js'
import { lengthPrefixFault, MAX_ERROR_MESSAGE_CHARS, type EndFrame, type ErrorFrame, type Exchange } from '../reqresp.js'
import { encodeCanonical, decodeStrict, HASH_BYTES } from './codec.js'
import { AuditError } from './errors.js'
import { FINGERPRINT_BYTES, MAX_FANOUT, MAX_LEAF, MAX_QUERY_RANGES, type DigestItem, type DigestQuery, type DigestRange, type DigestReply } from './reconcile.js'
import type { Head } from './types.js'

/** The sync protocol: whole head vectors, ranges, digest queries and witnessed vectors. */
export const SYNC_PROTOCOL = '/fleetmesh/audit-sync/1.1.0'
/**
 * The sync protocol of the versions before digest reconciliation: `heads` and `range` only (they
 * answer anything else as an unknown request, and penalise it). Served, with exactly that set, to
 * such hosts during a rolling upgrade; a requester offers both ids in its negotiation, newest
 * first, and reconciles by whole head vector with a peer that speaks only this one.
 */
export const SYNC_PROTOCOL_1_0 = '/fleetmesh/audit-sync/1.0.0'
export type SyncProtocol = typeof SYNC_PROTOCOL | typeof SYNC_PROTOCOL_1_0
export const SYNC_PROTOCOLS: readonly SyncProtocol[] = [SYNC_PROTOCOL, SYNC_PROTOCOL_1_0]
export const HEADS_TOPIC = 'fleetmesh/audit/heads/1'

/** every request but a digest query */
export const MAX_REQUEST_BYTES = 512
/** a bound is a prefix of a feed id; a range is [lo, hi | null, fingerprint] */
const MAX_RANGE_BYTES = 1 + 2 * (2 + MAX_FEED_CHARS) + 1 + FINGERPRINT_BYTES
/** a digest query of MAX_QUERY_RANGES ranges with the longest bounds (~35 KB; an honest one is far smaller) */
export const MAX_DIGEST_REQUEST_BYTES = 16 + MAX_QUERY_RANGES * MAX_RANGE_BYTES
/** digest reply items per frame: a reply to a full query is MAX_QUERY_RANGES × MAX_FANOUT parts at most */
const MAX_DIGEST_ITEMS = MAX_QUERY_RANGES * MAX_FANOUT
/** heads per head-vector frame: ~100 bytes each */
export const MAX_HEADS_PER_MESSAGE = 1024
const MAX_HEADS_FRAME_BYTES = MAX_HEADS_PER_MESSAGE * 128
/**
 * An announcement names one head, its publisher's own: a host announces only its own feed
 * (the others are repaired by digest reconciliation), so anything longer is no honest announcement.
 */
export const MAX_ANNOUNCE_BYTES = 512
/** target payload of one entries frame; a single entry may exceed it up to the entry limit */
export const BATCH_BYTES = 512 * 1024
export const MAX_BATCH_ENTRIES = 512

export type SyncRequest =
  | { t: 'heads' }
  | { t: 'range', feed: string, from: number, to: number }
  | DigestQuery
  /** the head vector this host committed to in its own witness entry `seq` */
  | { t: 'witnessed', seq: number }

/** What a response carries; `end` and `error` close it (see reqresp.ts). */
export type SyncData =
  | { t: 'heads', heads: Head[] }
  | { t: 'entries', entries: Uint8Array[] }
  | DigestReply

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

/** A range bound: '' (the start) or a prefix of a feed id. */
function isBound (v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_FEED_CHARS && (v === '' || FEED_RE.test(v))
}

function decodeRange (v: unknown): { lo: string, hi: string | null, rest: unknown } {
  if (!Array.isArray(v) || v.length !== 3 || !isBound(v[0]) || !(v[1] === null || isBound(v[1]))) throw bad('a digest range is [lo, hi | null, …]')
  if (v[1] !== null && v[0] >= v[1]) throw bad('a digest range is not empty')
  return { lo: v[0], hi: v[1], rest: v[2] }
}

function decodeFingerprint (v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== FINGERPRINT_BYTES) throw bad(`a fingerprint is ${FINGERPRINT_BYTES} bytes`)
  return v
}

export function encodeRequest (r: SyncRequest): Uint8Array {
  return encodeCanonical(r.t === 'digest' ? { t: r.t, ranges: r.ranges.map(x => [x.lo, x.hi, x.fp]) } : r)
}

const REQUESTS: Record<SyncProtocol, ReadonlySet<unknown>> = {
  [SYNC_PROTOCOL]: new Set<SyncRequest['t']>(['heads', 'range', 'digest', 'witnessed']),
  [SYNC_PROTOCOL_1_0]: new Set<SyncRequest['t']>(['heads', 'range'])
}

/** The largest request `protocol` admits: digest queries are larger than the others. */
function maxRequestBytes (protocol: SyncProtocol): number {
  return REQUESTS[protocol].has('digest') ? MAX_DIGEST_REQUEST_BYTES : MAX_REQUEST_BYTES
}

/** A request of one of `protocol`'s types; bounded at MAX_REQUEST_BYTES, digest queries at MAX_DIGEST_REQUEST_BYTES. */
export function decodeRequest (bytes: Uint8Array, protocol: SyncProtocol = SYNC_PROTOCOL): SyncRequest {
  const v = decodeStrict(bytes, maxRequestBytes(protocol))
  const t = (v as Record<string, unknown> | null)?.t
  if (!REQUESTS[protocol].has(t)) throw bad('unknown request type')
  if (t === 'digest') {
    const ranges = asMap(v, ['ranges', 't']).ranges
    if (!Array.isArray(ranges) || ranges.length === 0 || ranges.length > MAX_QUERY_RANGES) throw bad(`a digest query has 1..${MAX_QUERY_RANGES} ranges`)
    return { t, ranges: ranges.map((x: unknown): DigestRange => { const r = decodeRange(x); return { lo: r.lo, hi: r.hi, fp: decodeFingerprint(r.rest) } }) }
  }
  if (bytes.length > MAX_REQUEST_BYTES) throw new AuditError('MESSAGE_TOO_LARGE', `a ${String(t)} request is at most ${MAX_REQUEST_BYTES} bytes`)
  if (t === 'heads') {
    asMap(v, ['t'])
    return { t }
  }
  if (t === 'range') {
    const m = asMap(v, ['feed', 'from', 't', 'to'])
    if (typeof m.feed !== 'string' || !FEED_RE.test(m.feed) || !isSeq(m.from) || !isSeq(m.to) || m.to < m.from) throw bad('range is {feed, from ≤ to}')
    return { t, feed: m.feed, from: m.from, to: m.to }
  }
  if (t === 'witnessed') {
    const m = asMap(v, ['seq', 't'])
    if (!isSeq(m.seq)) throw bad('witnessed is {seq}')
    return { t, seq: m.seq }
  }
  throw bad('unknown request type')
}

function encodeItem (i: DigestItem): unknown[] {
  return [i.lo, i.hi, 'fp' in i ? i.fp : encodeHeads(i.heads)]
}

function decodeItems (v: unknown): DigestItem[] {
  if (!Array.isArray(v) || v.length > MAX_DIGEST_ITEMS) throw bad(`digest items are a list of at most ${MAX_DIGEST_ITEMS}`)
  let heads = 0
  return v.map((x: unknown): DigestItem => {
    const r = decodeRange(x)
    if (r.rest instanceof Uint8Array) return { lo: r.lo, hi: r.hi, fp: decodeFingerprint(r.rest) }
    const h = decodeHeads(r.rest, MAX_LEAF)
    heads += h.length
    if (heads > MAX_HEADS_PER_MESSAGE) throw bad(`a digest frame carries at most ${MAX_HEADS_PER_MESSAGE} heads`)
    return { lo: r.lo, hi: r.hi, heads: h }
  })
}

export function encodeFrame (f: SyncFrame): Uint8Array {
  if (f.t === 'heads') return encodeCanonical({ t: f.t, heads: encodeHeads(f.heads) })
  if (f.t === 'digest') return encodeCanonical({ t: f.t, items: f.items.map(encodeItem) })
  return encodeCanonical(f)
}

export function decodeFrame (bytes: Uint8Array, maxBytes: number): SyncFrame {
  const v = decodeStrict(bytes, maxBytes)
  const t = (v as Record<string, unknown> | null)?.t
  switch (t) {
    case 'heads':
      return { t, heads: decodeHeads(asMap(v, ['heads', 't']).heads) }
    case 'digest':
      return { t, items: decodeItems(asMap(v, ['items', 't']).items) }
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

/** The exchange of one sync protocol id, for peers whose frames may carry entries up to `maxEntry` bytes. */
export function syncExchange (maxEntry: number, protocol: SyncProtocol = SYNC_PROTOCOL): Exchange<SyncRequest, SyncData, AuditError> {
  const maxFrame = maxFrameBytes(maxEntry)
  return {
    maxRequestBytes: maxRequestBytes(protocol),
    maxFrameBytes: maxFrame,
    encodeRequest,
    decodeRequest: (bytes) => decodeRequest(bytes, protocol),
    encodeFrame,
    decodeFrame: (bytes) => decodeFrame(bytes, maxFrame),
    toError: toAuditError,
    failed: (message) => new AuditError('SYNC_FAILED', message)
  }
}
