// `audit export` / third-party verification. One JSON object per line, one line per entry,
// feeds contiguous and in seq order:
//   {"v":1,"feed":"12D3Koo…","seq":0,"ts":…,"kind":"genesis","hash":"<hex>","cbor":"<base64>"}
// `cbor` is the entry's canonical bytes and the only field a verifier trusts; the others are for
// people and tools and must match it. Procedure, per line:
//   1. base64-decode `cbor`; it must be a CBOR map of exactly {body, feed, kind, prev, seq, sig,
//      ts} in RFC 8949 core deterministic encoding (re-encoding the decoded value gives the same
//      bytes; no floats, tags, undefined or indefinite lengths).
//   2. hash = SHA-256(cbor) must equal `hash`; feed, seq, ts, kind must equal the line's fields.
//   3. the feed's Ed25519 public key is the identity multihash inside its peer id; `sig` must
//      verify over the canonical encoding of the same map without the `sig` key.
//   4. seq 0 has prev = 32 zero bytes; seq n has prev = hash of the same feed's line n-1.
// verifyJsonl (verify-log.ts) follows this procedure with the store's own per-entry checks.
// An export of a store that starts from a checkpoint begins with one header line naming it:
//   {"v":1,"checkpoint":{"number":…,"feed":…,"seq":…,"hash":"<hex>","cover":[[feed,seq,"<hex>"]…],
//    "refs":[…]},"bases":[[feed,seq,"<hex>"]…]}
// then the entries it retains below the bases, each line with "retained":true (no link: step 4 is
// replaced by "the line's feed, seq and hash are one of refs"), then each feed from its base:
// step 4 links the first line after a base to the base's hash. The checkpoint entry itself is
// one of the lines; its body's cover and retain roots (headsRoot of cover and of refs) must match
// the header, and each feed's chain must pass through its covered head.
import type { Writable } from 'node:stream'
import { once } from 'node:events'
import { decodeEntry, maxEntryBytes, sha256, type CodecLimits } from './codec.js'
import { AuditError } from './errors.js'
import type { CheckpointRecord } from './layout.js'
import type { Head } from './types.js'

export const JSONL_VERSION = 1

export interface Line { v: number, feed: string, seq: number, ts: number, kind: string, hash: string, cbor: string, retained?: true }

export interface Header { checkpoint: CheckpointRecord, bases: Head[] }

/** What an export reads of the store. */
export interface ExportSource {
  readonly limits: CodecLimits
  heads: () => Head[]
  base: (feed: string) => Head | undefined
  checkpoint: () => CheckpointRecord | undefined
  retainedBytes: () => AsyncIterable<Uint8Array>
  rangeBytes: (feed: string, fromSeq: number, toSeq: number) => AsyncIterable<Uint8Array>
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const headRow = (h: Head): [string, number, string] => [h.feed, h.seq, hex(h.hash)]

function entryLine (bytes: Uint8Array, limits: CodecLimits, retained: boolean): string {
  const { feed, seq, ts, kind } = decodeEntry(bytes, limits)
  const line: Line = { v: JSONL_VERSION, feed, seq, ts, kind, hash: hex(sha256(bytes)), cbor: Buffer.from(bytes).toString('base64'), ...(retained ? { retained: true as const } : {}) }
  return JSON.stringify(line) + '\n'
}

async function write (out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain')
}

/**
 * Writes every entry of the store, feed by feed; returns the number of entry lines. A store
 * that starts from a checkpoint is exported from it: the header, the retained entries, then
 * each feed from its base.
 */
export async function exportJsonl (store: ExportSource, out: Writable): Promise<number> {
  let n = 0
  const heads = store.heads().sort((a, b) => a.feed < b.feed ? -1 : 1)
  const cp = store.checkpoint()
  const bases = heads.map(h => store.base(h.feed)).filter((b): b is Head => b !== undefined)
  if (cp !== undefined && bases.length > 0) {
    const checkpoint = { number: cp.number, feed: cp.feed, seq: cp.seq, hash: hex(cp.hash), cover: cp.cover.map(headRow), refs: cp.refs.map(headRow) }
    await write(out, JSON.stringify({ v: JSONL_VERSION, checkpoint, bases: bases.map(headRow) }) + '\n')
    for await (const bytes of store.retainedBytes()) {
      await write(out, entryLine(bytes, store.limits, true))
      n++
    }
  }
  for (const head of heads) {
    for await (const bytes of store.rangeBytes(head.feed, (store.base(head.feed)?.seq ?? -1) + 1, head.seq)) {
      await write(out, entryLine(bytes, store.limits, false))
      n++
    }
  }
  return n
}

function headRows (v: unknown, max: number): Head[] {
  if (!Array.isArray(v) || v.length > max) throw new AuditError('ENTRY_MALFORMED', 'header heads must be a list of [feed, seq, hash]')
  return v.map((r: unknown) => {
    if (!Array.isArray(r) || r.length !== 3 || typeof r[0] !== 'string' || !Number.isSafeInteger(r[1]) || r[1] < 0 || typeof r[2] !== 'string' || !/^[0-9a-f]{64}$/.test(r[2])) {
      throw new AuditError('ENTRY_MALFORMED', 'header heads must be a list of [feed, seq, hash]')
    }
    return { feed: r[0], seq: r[1], hash: new Uint8Array(Buffer.from(r[2], 'hex')) }
  })
}

/** The header line of an export that starts from a checkpoint, checked against its schema. */
export function parseHeader (text: string): Header {
  // a header names at most a million heads and refs of ~120 characters each
  if (text.length > 300_000_000) throw new AuditError('ENTRY_TOO_LARGE', 'header line is too long')
  let v: Record<string, unknown>
  try {
    v = JSON.parse(text)
  } catch {
    throw new AuditError('ENTRY_MALFORMED', 'header is not JSON')
  }
  const c = v?.checkpoint as Record<string, unknown> | undefined
  if (v === null || typeof v !== 'object' || v.v !== JSONL_VERSION || Object.keys(v).length !== 3 || c === null || typeof c !== 'object' ||
    !Number.isSafeInteger(c.number) || typeof c.feed !== 'string' || !Number.isSafeInteger(c.seq) || typeof c.hash !== 'string' || !/^[0-9a-f]{64}$/.test(c.hash)) {
    throw new AuditError('ENTRY_MALFORMED', 'header does not follow the export schema')
  }
  const checkpoint = { number: c.number as number, feed: c.feed, seq: c.seq as number, hash: new Uint8Array(Buffer.from(c.hash, 'hex')), cover: headRows(c.cover, 1_000_000), refs: headRows(c.refs, 1_000_000) }
  return { checkpoint, bases: headRows(v.bases, 1_000_000) }
}

/** One line's fields, checked against the schema, and its canonical bytes (not yet verified). */
export function parseLine (text: string, limits: CodecLimits): { line: Line, bytes: Uint8Array } {
  // base64 inflates by 4/3; the rest of a line is a few hundred bytes at most
  if (text.length > Math.ceil(maxEntryBytes(limits) * 4 / 3) + 1024) throw new AuditError('ENTRY_TOO_LARGE', 'line is longer than any valid entry')
  let v: Partial<Line>
  try {
    v = JSON.parse(text)
  } catch {
    throw new AuditError('ENTRY_MALFORMED', 'line is not JSON')
  }
  if (v === null || typeof v !== 'object' || v.v !== JSONL_VERSION || typeof v.feed !== 'string' || !Number.isSafeInteger(v.seq) ||
    !Number.isSafeInteger(v.ts) || typeof v.kind !== 'string' || typeof v.hash !== 'string' || typeof v.cbor !== 'string' || (v.retained !== undefined && v.retained !== true)) {
    throw new AuditError('ENTRY_MALFORMED', 'line does not follow the export schema')
  }
  const bytes = new Uint8Array(Buffer.from(v.cbor, 'base64'))
  if (Buffer.from(bytes).toString('base64') !== v.cbor) throw new AuditError('ENTRY_MALFORMED', 'cbor is not canonical base64')
  return { line: v as Line, bytes }
}
