// The witness entry's body. Version 2 commits to the heads a host holds of other feeds with 32
// bytes (headsRoot) and their count, so it costs the same at 3 hosts or 10,000; the vector
// itself stays with the witness (witness-vectors.ts) and is served on request, checked by the
// auditor against the signed root. Version 1 bodies ({heads}: the list itself, only the heads
// that moved) are still valid, so logs written before stay verifiable.
import { FEED_RE } from '../../crypto/ids.js'
import { HASH_BYTES, bytesEqual } from './codec.js'
import { AuditError } from './errors.js'
import { headsRoot, sortHeads } from './heads-root.js'
import type { Head, StoredEntry } from './types.js'

export const WITNESS_KIND = 'witness'
// ~100 bytes per head keeps one v1 body far below the 64 KiB body limit
const V1_MAX_HEADS = 500

/** Version 1, still valid in old logs: the heads themselves. */
export interface WitnessBodyV1 { heads: Array<[string, number, Uint8Array]> }
export interface WitnessBodyV2 { v: 2, root: Uint8Array, count: number }
export type WitnessBody = WitnessBodyV1 | WitnessBodyV2

export function isHeadTuple (h: unknown): h is [string, number, Uint8Array] {
  return Array.isArray(h) && h.length === 3 && typeof h[0] === 'string' && FEED_RE.test(h[0]) &&
    Number.isSafeInteger(h[1]) && h[1] >= 0 && h[2] instanceof Uint8Array && h[2].length === HASH_BYTES
}

export function validateWitnessBody (body: unknown): boolean {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || body instanceof Uint8Array) return false
  const b = body as Record<string, unknown>
  const keys = Object.keys(b)
  if (keys.length === 1) {
    return Array.isArray(b.heads) && b.heads.length > 0 && b.heads.length <= V1_MAX_HEADS && b.heads.every(isHeadTuple)
  }
  return keys.length === 3 && b.v === 2 && b.root instanceof Uint8Array && b.root.length === HASH_BYTES &&
    Number.isSafeInteger(b.count) && (b.count as number) > 0
}

export function isV2 (body: WitnessBody): body is WitnessBodyV2 {
  return 'v' in body
}

/** What a host witnesses of the heads it holds: other feeds', not forked ones, sorted. */
export function witnessVector (heads: Iterable<Head>, self: string | undefined, forked: ReadonlyMap<string, number>): Head[] {
  return sortHeads([...heads].filter(h => h.feed !== self && !forked.has(h.feed)))
}

export function witnessBody (heads: readonly Head[]): WitnessBodyV2 {
  return { v: 2, root: headsRoot(heads), count: heads.length }
}

/** The heads a v1 witness entry lists. */
export function v1Heads (body: WitnessBodyV1): Head[] {
  return body.heads.map(([feed, seq, hash]) => ({ feed, seq, hash }))
}

/**
 * A vector claimed to be what a v2 witness entry committed to (fetched from anyone, or read
 * back from disk): refused with WITNESS_VECTOR_MISMATCH unless it hashes to the signed root.
 */
export function checkWitnessedVector (witness: StoredEntry, heads: readonly Head[]): Head[] {
  const { entry } = witness
  const body = entry.body as WitnessBody
  if (entry.kind !== WITNESS_KIND || !validateWitnessBody(body) || !isV2(body)) {
    throw new AuditError('WITNESS_VECTOR_MISMATCH', `feed ${entry.feed} seq ${entry.seq} is not a version 2 witness entry`)
  }
  if (heads.length !== body.count || !bytesEqual(headsRoot(heads), body.root)) {
    throw new AuditError('WITNESS_VECTOR_MISMATCH', `the vector offered for witness ${entry.feed} seq ${entry.seq} does not hash to its signed root`)
  }
  return sortHeads(heads)
}
