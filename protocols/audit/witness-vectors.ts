// The head vectors behind this host's version 2 witness entries, kept beside the log in the
// audit sublevel:
//   w!<at16>!<root hex>   {heads: [[feed, seq, hash], …]} sorted; `at` is when it was written
// Keyed by the root the entry signs, not by the entry's seq: the vector is written (fsynced)
// before the entry is appended, and the seq an append gets is not known until it lands (other
// appends may share its batch). A crash between the two leaves a vector no entry names, which
// ages out like the others; never an entry whose vector is lost. `at` in the key lets pruning
// by age read keys only. Fetched vectors are checked against the signed root
// (checkWitnessedVector) and not stored.
import { decodeCanonical, encodeCanonical, bytesEqual } from './codec.js'
import { AuditError } from './errors.js'
import { headsRoot, sortHeads } from './heads-root.js'
import { pad } from './layout.js'
import type { Head } from './types.js'
import { isHeadTuple } from './witness-body.js'

/** What the vectors need of the audit db (an AuditDb is one). */
export interface VectorDb {
  get: (key: string) => Promise<Uint8Array | undefined>
  put: (key: string, value: Uint8Array, opts: { sync: boolean }) => Promise<void>
  del: (key: string) => Promise<void>
  keys: (range: { gt: string, lt: string }) => AsyncIterable<string>
}

// a vector of a million feeds (~110 MB) is far beyond any fleet this mesh is built for
const MAX_VECTOR_BYTES = 128 * 1024 * 1024
const PREFIX = 'w!'
const ALL = { gt: PREFIX, lt: `${PREFIX}\xff` }

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function parseKey (key: string): { at: number, root: string } {
  const [, at, root] = key.split('!')
  return { at: Number(at), root }
}

export function encodeVector (heads: readonly Head[]): Uint8Array {
  return encodeCanonical({ heads: sortHeads(heads).map(h => [h.feed, h.seq, h.hash]) })
}

export function decodeVector (bytes: Uint8Array, root: Uint8Array): Head[] {
  const v = decodeCanonical(bytes, MAX_VECTOR_BYTES, 'STORE_CORRUPT', 'STORE_CORRUPT') as Record<string, unknown>
  const ok = v !== null && typeof v === 'object' && Object.keys(v).length === 1 && Array.isArray(v.heads) && v.heads.every(isHeadTuple)
  if (!ok) throw new AuditError('STORE_CORRUPT', 'witnessed vector record does not follow its schema')
  const heads = (v.heads as Array<[string, number, Uint8Array]>).map(([feed, seq, hash]) => ({ feed, seq, hash }))
  if (!bytesEqual(headsRoot(heads), root)) throw new AuditError('STORE_CORRUPT', `witnessed vector ${hex(root)} does not hash to its key`)
  return heads
}

export class WitnessVectors {
  constructor (private readonly db: VectorDb) {}

  /** Durable when it resolves: written before the entry that signs its root. */
  async put (at: number, heads: readonly Head[]): Promise<Uint8Array> {
    const root = headsRoot(heads)
    await this.db.put(`${PREFIX}${pad(at)}!${hex(root)}`, encodeVector(heads), { sync: true })
    return root
  }

  async get (root: Uint8Array): Promise<Head[] | undefined> {
    const want = hex(root)
    for await (const key of this.db.keys(ALL)) {
      if (parseKey(key).root !== want) continue
      const bytes = await this.db.get(key)
      if (bytes !== undefined) return decodeVector(bytes, root)
    }
    return undefined
  }

  /** Drops the vectors written before `before` (the history window) but `keep`'s, and the orphans of crashes with them. */
  async prune (before: number, keep?: Uint8Array): Promise<number> {
    const spare = keep === undefined ? undefined : hex(keep)
    const old: string[] = []
    for await (const key of this.db.keys({ gt: PREFIX, lt: `${PREFIX}${pad(before)}` })) if (parseKey(key).root !== spare) old.push(key)
    for (const key of old) await this.db.del(key)
    return old.length
  }
}
