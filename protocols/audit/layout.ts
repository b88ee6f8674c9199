// The audit log's layout on disk, in one level sublevel (keys utf8, values raw bytes). All keys
// sortable so a range scan is one iterator:
//   e!<feed>!<seq16>                 canonical entry bytes (seq zero-padded to 16 digits)
//   h!<feed>                         head record {seq, hash}, written in the entry's batch
//   t!<ts16>!<feed>!<seq16>          empty: time index (audit log)
//   k!<kind>!<ts16>!<feed>!<seq16>   empty: kind index (views, witness checks)
//   x!<feed>!<seq16>!<hash hex>      equivocation proof {feed, seq, a, b, detectedAt}
//   f!<feed>                         fork flag {seq}: lowest seq where the feed forked
//   b!<feed>                         base {seq, hash}: the feed's chain here continues from this head
//                                    (a checkpoint's cover, or where pruning stopped); e! holds only
//                                    seqs above it
//   r!<feed>!<seq16>                 canonical bytes of a retained entry below the base: detached
//                                    (no chain), its hash one of the adopted checkpoint's refs
//   c!<number16>                     adopted checkpoint {feed, seq, hash, cover, refs}
// Feeds are base58 and kinds [a-z0-9.:-], so "!" never occurs inside a key component.
import type { AbstractLevel } from 'abstract-level'
import { decodeCanonical, encodeCanonical, type CodecLimits } from './codec.js'
import { AuditError } from './errors.js'
import type { Entry, EquivocationProof, Head } from './types.js'

/** The sublevel the store lives in: utf8 keys, Uint8Array values. */
export type AuditDb = AbstractLevel<any, string, Uint8Array>

/** The sublevel of a host's root level db that holds the audit log. */
export function auditSublevel (root: AbstractLevel<any, any, any>): AuditDb {
  return root.sublevel<string, Uint8Array>('audit', { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as AuditDb
}

const SEQ_DIGITS = 16
const SEP = '!'

/** A seq or ts as it sorts inside a key. */
export const pad = (n: number): string => n.toString().padStart(SEQ_DIGITS, '0')
export const entryKey = (feed: string, seq: number): string => `e${SEP}${feed}${SEP}${pad(seq)}`
export const headKey = (feed: string): string => `h${SEP}${feed}`
export const flagKey = (feed: string): string => `f${SEP}${feed}`
export const baseKey = (feed: string): string => `b${SEP}${feed}`
export const retainedKey = (feed: string, seq: number): string => `r${SEP}${feed}${SEP}${pad(seq)}`
export const checkpointKey = (number: number): string => `c${SEP}${pad(number)}`
export const proofKey = (feed: string, seq: number, hash: Uint8Array): string => `x${SEP}${feed}${SEP}${pad(seq)}${SEP}${Buffer.from(hash).toString('hex')}`

/** The time and kind index keys of an entry (their values are empty). */
export function indexKeys (e: Entry): string[] {
  const tail = `${pad(e.ts)}${SEP}${e.feed}${SEP}${pad(e.seq)}`
  return [`t${SEP}${tail}`, `k${SEP}${e.kind}${SEP}${tail}`]
}

/** Every key of one record type: 'e' entries, 'h' heads, 'f' fork flags, 'x' proofs, 'b' bases, 'r' retained entries, 'c' checkpoints. */
export function allKeys (type: 'e' | 'h' | 'f' | 'x' | 'b' | 'r' | 'c'): { gt: string, lt: string } {
  return { gt: `${type}${SEP}`, lt: `${type}${SEP}\xff` }
}

/** The keys of one feed's chain entries (e) or retained entries (r), seq fromSeq..toSeq. */
export function feedRange (type: 'e' | 'r', feed: string, fromSeq = 0, toSeq = Number.MAX_SAFE_INTEGER): { gte: string, lte: string } {
  return { gte: `${type}${SEP}${feed}${SEP}${pad(fromSeq)}`, lte: `${type}${SEP}${feed}${SEP}${pad(toSeq)}` }
}

/** The feed a head, base or flag key names. */
export const keyFeed = (key: string): string => key.slice(2)

/** An entry or retained key's feed and its seq as written (16 digits). */
export function parseEntryKey (key: string): { feed: string, seq: string } {
  const [, feed, seq] = key.split(SEP)
  return { feed, seq }
}

/** The range of index keys `log()` scans: all entries or one kind's, ts in [since, until). */
export function indexRange (q: { kind?: string, since?: number, until?: number }): { gte: string, lt: string } {
  const prefix = q.kind === undefined ? `t${SEP}` : `k${SEP}${q.kind}${SEP}`
  return {
    gte: `${prefix}${q.since === undefined ? '' : pad(q.since)}`,
    lt: q.until === undefined ? `${prefix}\xff` : `${prefix}${pad(q.until)}`
  }
}

/** The entry an index key points at. */
export function parseIndexKey (key: string): { feed: string, seq: number } {
  const parts = key.split(SEP)
  return { feed: parts[parts.length - 2], seq: Number(parts[parts.length - 1]) }
}

// The head, flag and proof records: one schema each, validated whenever read back.
export function encodeHead (h: Head): Uint8Array {
  return encodeCanonical({ seq: h.seq, hash: h.hash })
}

export function decodeHead (feed: string, bytes: Uint8Array): Head {
  const v = decodeCanonical(bytes, 128, 'STORE_CORRUPT', 'STORE_CORRUPT') as Record<string, unknown>
  if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.seq) || (v.seq as number) < 0 || !(v.hash instanceof Uint8Array) || v.hash.length !== 32 || Object.keys(v).length !== 2) {
    throw new AuditError('STORE_CORRUPT', `head record of ${feed} does not follow its schema`)
  }
  return { feed, seq: v.seq as number, hash: v.hash }
}

export function encodeFlag (seq: number): Uint8Array {
  return encodeCanonical({ seq })
}

export function decodeFlag (feed: string, bytes: Uint8Array): number {
  const v = decodeCanonical(bytes, 64, 'STORE_CORRUPT', 'STORE_CORRUPT') as Record<string, unknown>
  if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.seq) || Object.keys(v).length !== 1) {
    throw new AuditError('STORE_CORRUPT', `fork flag of ${feed} does not follow its schema`)
  }
  return v.seq as number
}

export function encodeProof (proof: EquivocationProof): Uint8Array {
  return encodeCanonical({ ...proof })
}

export function decodeProof (bytes: Uint8Array, limits: CodecLimits): EquivocationProof {
  const v = decodeCanonical(bytes, 2 * (limits.maxBodyBytes + 1024), 'STORE_CORRUPT', 'STORE_CORRUPT') as Record<string, unknown>
  if (v === null || typeof v !== 'object' || typeof v.feed !== 'string' || !Number.isSafeInteger(v.seq) || !(v.a instanceof Uint8Array) || !(v.b instanceof Uint8Array) || !Number.isSafeInteger(v.detectedAt)) {
    throw new AuditError('STORE_CORRUPT', 'equivocation proof does not follow its schema')
  }
  return { feed: v.feed, seq: v.seq as number, a: v.a, b: v.b, detectedAt: v.detectedAt as number }
}

/** A checkpoint this store adopted: its entry's position and hash, the heads it covers and the entries it keeps. */
export interface CheckpointRecord { number: number, feed: string, seq: number, hash: Uint8Array, cover: Head[], refs: Head[] }

const asRefs = (heads: Head[]): Array<[string, number, Uint8Array]> => heads.map(h => [h.feed, h.seq, h.hash])

function fromRefs (v: unknown): Head[] | undefined {
  if (!Array.isArray(v)) return undefined
  const out: Head[] = []
  for (const r of v) {
    if (!Array.isArray(r) || r.length !== 3 || typeof r[0] !== 'string' || !Number.isSafeInteger(r[1]) || r[1] < 0 || !(r[2] instanceof Uint8Array) || r[2].length !== 32) return undefined
    out.push({ feed: r[0], seq: r[1], hash: r[2] })
  }
  return out
}

export function encodeCheckpointRecord (c: CheckpointRecord): Uint8Array {
  return encodeCanonical({ number: c.number, feed: c.feed, seq: c.seq, hash: c.hash, cover: asRefs(c.cover), refs: asRefs(c.refs) })
}

/** Bounded by what a store writes: a head or ref is under 100 bytes, a record holds at most `maxBytes`. */
export function decodeCheckpointRecord (bytes: Uint8Array, maxBytes: number): CheckpointRecord {
  const v = decodeCanonical(bytes, maxBytes, 'STORE_CORRUPT', 'STORE_CORRUPT') as Record<string, unknown>
  const cover = fromRefs(v?.cover)
  const refs = fromRefs(v?.refs)
  if (v === null || typeof v !== 'object' || Object.keys(v).length !== 6 || !Number.isSafeInteger(v.number) || typeof v.feed !== 'string' || !Number.isSafeInteger(v.seq) ||
    !(v.hash instanceof Uint8Array) || v.hash.length !== 32 || cover === undefined || refs === undefined) {
    throw new AuditError('STORE_CORRUPT', 'checkpoint record does not follow its schema')
  }
  return { number: v.number as number, feed: v.feed, seq: v.seq as number, hash: v.hash, cover, refs }
}
