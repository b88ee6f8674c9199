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
import type { Writable } from 'node:stream'
import { once } from 'node:events'
import { decodeEntry, maxEntryBytes, sha256, type CodecLimits } from './codec.js'
import { AuditError } from './errors.js'
import type { Head } from './types.js'

export const JSONL_VERSION = 1

export interface Line { v: number, feed: string, seq: number, ts: number, kind: string, hash: string, cbor: string }

/** What an export reads of the store. */
export interface ExportSource {
  readonly limits: CodecLimits
  heads: () => Head[]
  rangeBytes: (feed: string, fromSeq: number, toSeq: number) => AsyncIterable<Uint8Array>
}

async function write (out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain')
}

/** Writes every entry of the store, feed by feed; returns the number of lines. */
export async function exportJsonl (store: ExportSource, out: Writable): Promise<number> {
  let n = 0
  for (const head of store.heads().sort((a, b) => a.feed < b.feed ? -1 : 1)) {
    for await (const bytes of store.rangeBytes(head.feed, 0, head.seq)) {
      const { feed, seq, ts, kind } = decodeEntry(bytes, store.limits)
      const line: Line = { v: JSONL_VERSION, feed, seq, ts, kind, hash: Buffer.from(sha256(bytes)).toString('hex'), cbor: Buffer.from(bytes).toString('base64') }
      await write(out, JSON.stringify(line) + '\n')
      n++
    }
  }
  return n
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
    !Number.isSafeInteger(v.ts) || typeof v.kind !== 'string' || typeof v.hash !== 'string' || typeof v.cbor !== 'string') {
    throw new AuditError('ENTRY_MALFORMED', 'line does not follow the export schema')
  }
  const bytes = new Uint8Array(Buffer.from(v.cbor, 'base64'))
  if (Buffer.from(bytes).toString('base64') !== v.cbor) throw new AuditError('ENTRY_MALFORMED', 'cbor is not canonical base64')
  return { line: v as Line, bytes }
}
