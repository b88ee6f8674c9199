// Verification of a whole log: a store's raw records (`audit verify`, after a crash or a copy of
// the data dir) or an export's lines (a third party with only the file). Both walk the entries
// feed by feed in seq order through one LogWalk, so they apply the very same checks, and both
// stop at the first bad entry and name it. A log that starts from a checkpoint (a pruned store,
// or an export of one) also passes the checkpoint-verify.ts checks: chains from each base through
// the covered heads, detached entries retained by the checkpoint.
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { DEFAULT_LIMITS, bytesEqual, decodeEntry, sha256, type CodecLimits } from './codec.js'
import { AuditError } from './errors.js'
import { parseHeader, parseLine, type Header } from './jsonl.js'
import { allKeys, entryKey, pad, parseEntryKey, type AuditDb, type CheckpointRecord } from './layout.js'
import { CoverCheck } from './checkpoint-verify.js'
import { SignatureChecker } from './signatures.js'
import { checkContent, checkLink, feedPublicKey, type Link, type VerifyOptions } from './verify.js'
import type { Entry, Head } from './types.js'

export type VerifyAllResult =
  | { ok: true, entries: number, feeds: number }
  | { ok: false, entries: number, feed: string, seq: number, error: AuditError }

type Failure = Extract<VerifyAllResult, { ok: false }>

/** Entries whose signatures are checked together (on worker threads, when the checker has them). */
const VERIFY_CHUNK = 512

/**
 * The checks each entry of a log passes, in order: strict decode, what its container says it is
 * (its key, its export line), content (kind schema, author), a feed key, the link to the same
 * feed's previous entry, then the signature. Signatures are checked a chunk at a time; a failure
 * is reported once every entry before it is known good, so it always names the first bad entry.
 */
class LogWalk {
  /** entries known good */
  entries = 0
  private readonly links = new Map<string, Link>()
  private chunk: Array<{ entry: Entry, bytes: Uint8Array }> = []
  private readonly limits: CodecLimits

  constructor (
    private readonly opts: VerifyOptions,
    private readonly signatures: SignatureChecker,
    private readonly onProgress?: (entries: number) => void
  ) {
    this.limits = opts.limits ?? DEFAULT_LIMITS
  }

  get feeds (): number {
    return this.links.size
  }

  /** The last entry of `feed` that passed every check but its signature, if any. */
  link (feed: string): Link | undefined {
    return this.links.get(feed)
  }

  /** `feed`'s chain here continues from `base` (a checkpoint's covered head, or where pruning stopped). */
  startAt (base: Head): void {
    this.links.set(base.feed, { seq: base.seq, hash: base.hash })
  }

  /**
   * Checks one entry found at `at`; `expect` throws when the entry is not what its container
   * says. Returns the first failure, if this entry or a pending signature before it is bad.
   */
  async add (bytes: Uint8Array, at: { feed: string, seq: number }, expect?: (entry: Entry, hash: Uint8Array) => void, detached = false): Promise<Failure | undefined> {
    let entry: Entry
    let hash: Uint8Array
    try {
      entry = decodeEntry(bytes, this.limits)
      hash = sha256(bytes)
      expect?.(entry, hash)
      // a detached entry's author check was the checkpoint's to make: it retains it
      checkContent(entry, detached ? { ...this.opts, authorCheck: undefined } : this.opts)
      feedPublicKey(entry.feed)
      if (!detached) checkLink(entry, this.links.get(entry.feed))
    } catch (err) {
      if (!(err instanceof AuditError)) throw err
      return await this.fail(at, err)
    }
    this.chunk.push({ entry, bytes })
    if (!detached) this.links.set(entry.feed, { seq: entry.seq, hash })
    return this.chunk.length >= VERIFY_CHUNK ? await this.flush() : undefined
  }

  /** `error` at `at`, unless a pending signature before it fails first. */
  async fail (at: { feed: string, seq: number }, error: AuditError): Promise<Failure> {
    return (await this.flush()) ?? { ok: false, entries: this.entries, feed: at.feed, seq: at.seq, error }
  }

  /** Checks the pending signatures. */
  async flush (): Promise<Failure | undefined> {
    const verdicts = await this.signatures.verify(this.chunk)
    const bad = verdicts.indexOf(false)
    if (bad !== -1) {
      const { feed, seq } = this.chunk[bad].entry
      return { ok: false, entries: this.entries + bad, feed, seq, error: new AuditError('BAD_SIGNATURE', `feed ${feed} seq ${seq}: signature does not verify`) }
    }
    this.entries += this.chunk.length
    this.onProgress?.(this.entries)
    this.chunk = []
    return undefined
  }
}

/** What the store check reads: the raw records, and the heads, bases and checkpoint the store loaded from them. */
export interface StoreRecords {
  db: AuditDb
  heads: ReadonlyMap<string, Head>
  bases: ReadonlyMap<string, Head>
  checkpoint: CheckpointRecord | undefined
}

function startCover (walk: LogWalk, checkpoint: CheckpointRecord | undefined, bases: ReadonlyMap<string, Head>): CoverCheck | Failure | undefined {
  for (const b of bases.values()) walk.startAt(b)
  if (checkpoint === undefined) {
    const b = bases.values().next().value
    return b === undefined ? undefined : { ok: false, entries: 0, feed: b.feed, seq: b.seq, error: new AuditError('STORE_CORRUPT', `feed ${b.feed} starts at seq ${b.seq} with no checkpoint`) }
  }
  try {
    return new CoverCheck(checkpoint, bases)
  } catch (err) {
    if (!(err instanceof AuditError)) throw err
    return { ok: false, entries: 0, feed: checkpoint.feed, seq: checkpoint.seq, error: err }
  }
}


/**
 * Re-checks a whole store from its raw records: each entry's key, canonical form, schema,
 * signature, seq continuity and prev link, and that every head names its feed's last entry.
 * Returns the first bad entry and why.
 */
export async function verifyStore (records: StoreRecords, opts: VerifyOptions, signatures: SignatureChecker, onProgress?: (entries: number) => void): Promise<VerifyAllResult> {
  const walk = new LogWalk(opts, signatures, onProgress)
  const cover = startCover(walk, records.checkpoint, records.bases)
  if (cover !== undefined && !(cover instanceof CoverCheck)) return cover
  for await (const [key, bytes] of records.db.iterator(allKeys('r'))) {
    const at = parseEntryKey(key)
    const failed = await walk.add(bytes, { feed: at.feed, seq: Number(at.seq) }, (entry, hash) => {
      if (entry.feed !== at.feed || pad(entry.seq) !== at.seq || entry.seq > (records.bases.get(entry.feed)?.seq ?? -1)) throw new AuditError('STORE_CORRUPT', `retained entry stored under ${key} is ${entry.feed} seq ${entry.seq}, above its feed's base`)
      if (cover === undefined) throw new AuditError('STORE_CORRUPT', 'retained entries with no checkpoint')
      cover.retained(entry, hash)
    }, true)
    if (failed !== undefined) return failed
  }
  const headOf = async (feed: string): Promise<Failure | undefined> => {
    const failed = await walk.flush()
    if (failed !== undefined) return failed
    const head = records.heads.get(feed)
    const last = walk.link(feed)
    if (head === undefined || last === undefined || head.seq !== last.seq || !bytesEqual(head.hash, last.hash)) {
      return { ok: false, entries: walk.entries, feed, seq: head?.seq ?? -1, error: new AuditError('STORE_CORRUPT', `head of ${feed} does not name its last stored entry`) }
    }
    return undefined
  }
  let feed: string | undefined
  for await (const [key, bytes] of records.db.iterator(allKeys('e'))) {
    const at = parseEntryKey(key)
    if (at.feed !== feed) {
      const failed = feed === undefined ? undefined : await headOf(feed)
      if (failed !== undefined) return failed
      feed = at.feed
    }
    const failed = await walk.add(bytes, { feed: at.feed, seq: Number(at.seq) }, (entry, hash) => {
      if (entry.feed !== at.feed || pad(entry.seq) !== at.seq) throw new AuditError('STORE_CORRUPT', `entry stored under ${key} is ${entry.feed} seq ${entry.seq}`)
      cover?.chain(entry, hash)
    })
    if (failed !== undefined) return failed
  }
  if (feed !== undefined) {
    const failed = await headOf(feed)
    if (failed !== undefined) return failed
  }
  for (const [f, head] of records.heads) {
    const base = records.bases.get(f)
    const starts = base === undefined ? (await records.db.get(entryKey(f, 0))) !== undefined : base.seq === head.seq ? bytesEqual(base.hash, head.hash) : (await records.db.get(entryKey(f, base.seq + 1))) !== undefined
    if (!starts) return { ok: false, entries: walk.entries, feed: f, seq: (base?.seq ?? -1) + 1, error: new AuditError('STORE_CORRUPT', `head of ${f} exists but its entries do not`) }
  }
  const missed = cover?.finish()
  if (missed !== undefined) return await walk.fail(missed, missed.error)
  return (await walk.flush()) ?? { ok: true, entries: walk.entries, feeds: walk.feeds }
}

/** Checks an export line by line as jsonl.ts describes; stops at the first bad line. */
export async function verifyJsonl (input: Readable, opts: VerifyOptions = {}): Promise<VerifyAllResult> {
  const walk = new LogWalk(opts, new SignatureChecker(0))
  let lineNo = 0
  let cover: CoverCheck | undefined
  let bases = new Map<string, Head>()
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    lineNo++
    if (text === '') continue
    if (lineNo === 1 && text.startsWith('{"v":1,"checkpoint"')) {
      let header: Header
      try {
        header = parseHeader(text)
      } catch (err) {
        if (!(err instanceof AuditError)) throw err
        return await walk.fail({ feed: 'line 1', seq: -1 }, err)
      }
      bases = new Map(header.bases.map(b => [b.feed, b]))
      const started = startCover(walk, header.checkpoint, bases)
      if (!(started instanceof CoverCheck)) return started as Failure
      cover = started
      continue
    }
    let parsed: ReturnType<typeof parseLine>
    try {
      parsed = parseLine(text, opts.limits ?? DEFAULT_LIMITS)
    } catch (err) {
      if (!(err instanceof AuditError)) throw err
      return await walk.fail({ feed: `line ${lineNo}`, seq: -1 }, err)
    }
    const { line, bytes } = parsed
    const detached = line.retained === true
    const failed = await walk.add(bytes, line, (e, hash) => {
      if (e.feed !== line.feed || e.seq !== line.seq || e.ts !== line.ts || e.kind !== line.kind || Buffer.from(hash).toString('hex') !== line.hash) {
        throw new AuditError('ENTRY_MALFORMED', `line ${lineNo}: readable fields do not match the cbor`)
      }
      if (!detached) return cover?.chain(e, hash)
      const base = bases.get(e.feed)
      if (cover === undefined || base === undefined || e.seq > base.seq) throw new AuditError('ENTRY_MALFORMED', `line ${lineNo}: a retained entry must sit at or below its feed's base, after a checkpoint header`)
      cover.retained(e, hash)
    }, detached)
    if (failed !== undefined) return failed
  }
  const missed = cover?.finish()
  if (missed !== undefined) return await walk.fail(missed, missed.error)
  return (await walk.flush()) ?? { ok: true, entries: walk.entries, feeds: walk.feeds }
}
