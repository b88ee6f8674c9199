// Schemas of the checkpoint protocol's requests. Its answers are the sync protocol's frames
// (wire.ts): `entries` (checkpoint entries, retained entries) and `heads` (a cover, refs), so a
// frame is decoded and bounded by the one codec. Each request is a CBOR map with a `t` tag,
// decoded strictly and checked field by field.
import { FEED_RE } from '../../crypto/ids.js'
import type { Exchange } from '../reqresp.js'
import { decodeStrict, encodeCanonical, HASH_BYTES } from './codec.js'
import { AuditError } from './errors.js'
import { decodeFrame, encodeFrame, maxFrameBytes, toAuditError, type SyncData } from './wire.js'
import type { Head } from './types.js'

export const CHECKPOINT_PROTOCOL = '/fleetmesh/audit-checkpoint/1.0.0'
/** refs asked for in one retained request: ~90 bytes each */
export const MAX_REFS_PER_REQUEST = 512
export const MAX_CHECKPOINT_REQUEST_BYTES = 64 + MAX_REFS_PER_REQUEST * 100

export type CheckpointRequest =
  /** the checkpoint entries this host keeps the parts of, newest first */
  | { t: 'checkpoints' }
  /** the covered heads, or the retained refs, of the checkpoint entry at feed/seq */
  | { t: 'cover' | 'refs', feed: string, seq: number }
  /** retained entries, by ref, in the order asked */
  | { t: 'retained', refs: Head[] }
  /** the forks this host holds proof of: pairs of entries */
  | { t: 'forks' }

function bad (why: string): AuditError {
  return new AuditError('MESSAGE_MALFORMED', why)
}

function fields (v: unknown, keys: string[]): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw bad('request is not a map')
  const got = Object.keys(v).sort()
  if (got.length !== keys.length || got.some((k, i) => k !== keys[i])) throw bad(`request fields must be exactly ${keys.join(', ')}`)
  return v as Record<string, unknown>
}

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isFeed = (v: unknown): v is string => typeof v === 'string' && FEED_RE.test(v)

export function encodeCheckpointRequest (r: CheckpointRequest): Uint8Array {
  return encodeCanonical(r.t === 'retained' ? { t: r.t, refs: r.refs.map(h => [h.feed, h.seq, h.hash]) } : r)
}

export function decodeCheckpointRequest (bytes: Uint8Array): CheckpointRequest {
  const v = decodeStrict(bytes, MAX_CHECKPOINT_REQUEST_BYTES)
  const t = (v as Record<string, unknown> | null)?.t
  if (t === 'checkpoints' || t === 'forks') {
    fields(v, ['t'])
    return { t }
  }
  if (t === 'cover' || t === 'refs') {
    const m = fields(v, ['feed', 'seq', 't'])
    if (!isFeed(m.feed) || !isSeq(m.seq)) throw bad(`${t} is {feed, seq}`)
    return { t, feed: m.feed, seq: m.seq }
  }
  if (t === 'retained') {
    const refs = fields(v, ['refs', 't']).refs
    if (!Array.isArray(refs) || refs.length === 0 || refs.length > MAX_REFS_PER_REQUEST) throw bad(`retained names 1..${MAX_REFS_PER_REQUEST} refs`)
    return {
      t,
      refs: refs.map((r: unknown) => {
        if (!Array.isArray(r) || r.length !== 3 || !isFeed(r[0]) || !isSeq(r[1]) || !(r[2] instanceof Uint8Array) || r[2].length !== HASH_BYTES) throw bad('a ref is [feed, seq, 32-byte hash]')
        return { feed: r[0], seq: r[1], hash: r[2] }
      })
    }
  }
  throw bad('unknown request type')
}

export function checkpointExchange (maxEntry: number): Exchange<CheckpointRequest, SyncData, AuditError> {
  const maxFrame = maxFrameBytes(maxEntry)
  return {
    maxRequestBytes: MAX_CHECKPOINT_REQUEST_BYTES,
    maxFrameBytes: maxFrame,
    encodeRequest: encodeCheckpointRequest,
    decodeRequest: decodeCheckpointRequest,
    encodeFrame,
    decodeFrame: (bytes) => decodeFrame(bytes, maxFrame),
    toError: toAuditError,
    failed: (message) => new AuditError('SYNC_FAILED', message)
  }
}
