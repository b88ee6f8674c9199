// The audit log's storage: appends to this host's feed, verified ingest of others' feeds, and
// reads by feed, by time and by kind, in the key layout of layout.ts. Every write is one atomic
// batch, so a process killed mid-burst leaves each feed ending at its last complete entry with a
// head that points at it. A feed may start above seq 0, at a base (a checkpoint's covered head,
// or where pruning stopped): its chain continues from there, and the entries the checkpoint
// retains below it are kept detached (checkpoint-store.ts plans those writes).
import { EventEmitter } from 'node:events'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { AbstractBatchOptions } from 'abstract-level'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { createSigner, type Signer } from '../../crypto/sign.js'
import { Mutex } from '../mutex.js'
import { DEFAULT_LIMITS, KindRegistry, ZERO_HASH, asU8, attachSignature, bytesEqual, decodeEntry, encodeEntry, sha256, signingBytes, type CodecLimits } from './codec.js'
import { AuditError } from './errors.js'
import { createKindRegistry } from './kinds.js'
import {
  allKeys, decodeCheckpointRecord, decodeFlag, encodeCheckpointRecord, decodeHead, decodeProof, encodeFlag, encodeHead, encodeProof, entryKey, feedRange, flagKey, headKey, indexRange, keyFeed,
  parseIndexKey, proofKey, retainedKey, type AuditDb, type CheckpointRecord
} from './layout.js'
import { checkDetached, planAdopt, planPrune, putIndex, refId, type Op, type Plan } from './checkpoint-store.js'
import { SignatureChecker, defaultVerifyThreads } from './signatures.js'
import { checkContent, checkLink, feedPublicKey, type VerifyOptions } from './verify.js'
import { verifyStore, type VerifyAllResult } from './verify-log.js'
import type { AuthorCheck, Entry, EquivocationProof, Head, StoredEntry } from './types.js'

export interface AuditStoreOptions {
  db: AuditDb
  /** the host's key: required to append to its own feed */
  privateKey?: Ed25519PrivateKey
  limits?: CodecLimits
  /** body validators per kind (default: createKindRegistry(), this folder's own kinds) */
  kinds?: KindRegistry
  authorCheck?: AuthorCheck
  /** worker threads for signature checks of large batches (default: cores - 1, at most 2) */
  verifyThreads?: number
  /**
   * fsync every batch of entries received from others too; default false. Appends to this
   * host's own feed are always fsynced: see flushAppends.
   */
  sync?: boolean
  /** wall clock (ms since the epoch): stamps appends and bounds the claimed time of received entries */
  now?: () => number
  /** how far into the future a received entry may be stamped (default CLOCK_SKEW_MS) */
  maxClockSkewMs?: number
  /** largest received entry of a kind `kinds` has no validator for (default UNKNOWN_KIND_MAX_BYTES) */
  maxUnknownKindBytes?: number
}

/**
 * Claimed time is bounded on receipt (DESIGN §8): an entry stamped more than this ahead of the
 * receiver's clock is refused with CLOCK_AHEAD, unpenalised; its feed stops there on this host
 * and is asked for again by the next head exchange, so it is stored once this clock is within
 * the bound of its stamp. Hosts run NTP; five minutes is the usual bound (Kerberos's default).
 */
export const CLOCK_SKEW_MS = 5 * 60_000
/**
 * Entries of kinds this build does not interpret are kept (a newer build may), but only
 * small ones: nothing folds them, so they would be dead weight every host replicates forever.
 */
export const UNKNOWN_KIND_MAX_BYTES = 4096

export interface IngestResult {
  /** entries newly stored, in order */
  stored: StoredEntry[]
  /** entries already held (same hash) */
  duplicates: number
  /** why the first refused entry was refused; entries before it were stored */
  error?: AuditError
  /** index in the input of the refused entry */
  errorIndex?: number
  equivocations: EquivocationProof[]
}

export interface LogQuery {
  kind?: string
  /** inclusive lower bound on ts */
  since?: number
  /** exclusive upper bound on ts */
  until?: number
  reverse?: boolean
  limit?: number
}

interface AuditEvents {
  entry: [StoredEntry]
  equivocation: [EquivocationProof]
}

interface PendingAppend {
  kind: string
  body: unknown
  after: Head | null | undefined
  resolve: (e: StoredEntry) => void
  reject: (err: Error) => void
}

// Group commit: appends that arrive while a batch is being written go into the next batch,
// bounded so one batch stays a few MiB at most.
const MAX_APPEND_GROUP = 512
/** Checkpoint records kept: the newest, and one older for a joiner that refuses the newest. */
export const CHECKPOINTS_KEPT = 2
/** A checkpoint record's size bound: 100 bytes a head or ref, a million of them. */
export const MAX_CHECKPOINT_RECORD_BYTES = 100 * 1_000_000

/** The retained entries and covered heads of a checkpoint, as adoptCheckpoint takes them. */
export interface CheckpointParts { cover: Head[], refs: Head[] }

/**
 * Refuses a checkpoint whose record this store could not read back on open: the writer checks
 * before it signs one (with a placeholder position of the largest encoding), a host before it adopts one.
 */
export function assertCheckpointFits (record: CheckpointRecord): void {
  const bytes = encodeCheckpointRecord(record).length
  if (bytes > MAX_CHECKPOINT_RECORD_BYTES) {
    throw new AuditError('CHECKPOINT_REFUSED', `checkpoint ${record.number}: ${record.cover.length} covered heads and ${record.refs.length} retained refs make a ${bytes}-byte record, over the ${MAX_CHECKPOINT_RECORD_BYTES}-byte cap a store reads back`)
  }
}

/** How adoptCheckpoint treats history: an archive never drops chain entries (see planAdopt). */
export interface AdoptOptions { archive?: boolean }

export class AuditStore extends EventEmitter<AuditEvents> {
  /** this host's feed id, when opened with its key */
  readonly feed: string | undefined
  readonly limits: CodecLimits
  readonly kinds: KindRegistry
  private readonly db: AuditDb
  private readonly signer: Signer | undefined
  private readonly verifyOpts: VerifyOptions
  private readonly heads_ = new Map<string, Head>()
  private readonly bases_ = new Map<string, Head>()
  private checkpoints_: CheckpointRecord[] = []
  private readonly flags = new Map<string, number>()
  private readonly now: () => number
  // `sync` is classic-level's fsync switch; the abstract type does not list it
  private readonly batchOptions: AbstractBatchOptions<string, Uint8Array>
  private readonly appendOptions = { sync: true } as AbstractBatchOptions<string, Uint8Array>
  private readonly maxClockSkewMs: number
  private readonly maxUnknownKindBytes: number
  private readonly signatures: SignatureChecker
  /** entries checkDetached returned: adoptCheckpoint takes them as checked */
  private readonly detachedChecked = new WeakSet<StoredEntry>()
  private readonly lock = new Mutex()
  private appendQueue: PendingAppend[] = []
  private closed = false

  private constructor (opts: AuditStoreOptions) {
    super()
    this.db = opts.db
    this.limits = opts.limits ?? DEFAULT_LIMITS
    this.kinds = opts.kinds ?? createKindRegistry()
    this.verifyOpts = { limits: this.limits, kinds: this.kinds, authorCheck: opts.authorCheck }
    this.signer = opts.privateKey === undefined ? undefined : createSigner(opts.privateKey)
    this.feed = opts.privateKey === undefined ? undefined : peerIdFromPrivateKey(opts.privateKey).toString()
    this.now = opts.now ?? Date.now
    this.batchOptions = { sync: opts.sync ?? false } as AbstractBatchOptions<string, Uint8Array>
    this.maxClockSkewMs = opts.maxClockSkewMs ?? CLOCK_SKEW_MS
    this.maxUnknownKindBytes = opts.maxUnknownKindBytes ?? UNKNOWN_KIND_MAX_BYTES
    this.signatures = new SignatureChecker(opts.verifyThreads ?? defaultVerifyThreads())
  }

  static async open (opts: AuditStoreOptions): Promise<AuditStore> {
    const store = new AuditStore(opts)
    if (opts.db.status === 'opening') await opts.db.open()
    for await (const [key, value] of opts.db.iterator(allKeys('h'))) {
      const feed = keyFeed(key)
      store.heads_.set(feed, decodeHead(feed, value))
    }
    for await (const [key, value] of opts.db.iterator(allKeys('f'))) {
      const feed = keyFeed(key)
      store.flags.set(feed, decodeFlag(feed, value))
    }
    for await (const [key, value] of opts.db.iterator(allKeys('b'))) {
      const feed = keyFeed(key)
      store.bases_.set(feed, decodeHead(feed, value))
    }
    for await (const value of opts.db.values(allKeys('c'))) store.checkpoints_.push(decodeCheckpointRecord(asU8(value), MAX_CHECKPOINT_RECORD_BYTES))
    return store
  }

  /** Newest entry held per feed. */
  heads (): Head[] {
    return [...this.heads_.values()]
  }

  head (feed: string): Head | undefined {
    return this.heads_.get(feed)
  }

  /** Where `feed`'s chain here starts: entries at or below it are not held (but retained ones, detached). */
  base (feed: string): Head | undefined {
    return this.bases_.get(feed)
  }

  /** The newest checkpoint this store adopted, if any. */
  checkpoint (): CheckpointRecord | undefined {
    return this.checkpoints_[this.checkpoints_.length - 1]
  }

  /** The checkpoints whose records this store keeps, oldest first (see CHECKPOINTS_KEPT). */
  checkpoints (): CheckpointRecord[] {
    return [...this.checkpoints_]
  }

  /** Feeds caught equivocating, with the seq where they forked: not replicated past it. */
  forkedFeeds (): Map<string, number> {
    return new Map(this.flags)
  }

  /** The seq where `feed` forked, if it did. */
  forkedAt (feed: string): number | undefined {
    return this.flags.get(feed)
  }

  private assertOpen (): void {
    if (this.closed) throw new AuditError('STORE_CLOSED', 'the audit store is closed')
  }

  /**
   * Appends a signed entry to this host's feed. The body is checked now (so one bad body fails
   * alone); concurrent appends are written together in one atomic batch, in call order.
   */
  /**
   * `after`: append only if this host's feed still ends at that head (null: is still empty),
   * else reject with HEAD_MOVED; a body that names the feed's own head (a checkpoint's cover) is
   * only true right after it.
   */
  async append (kind: string, body: unknown, after?: Head | null): Promise<StoredEntry> {
    this.assertOpen()
    if (this.signer === undefined || this.feed === undefined) throw new AuditError('NO_SIGNING_KEY', 'this store was opened without a private key; it cannot append')
    // size, kind syntax and canonical form, against a placeholder position
    signingBytes({ feed: this.feed, seq: 0, prev: ZERO_HASH, ts: 0, kind, body }, this.limits)
    this.kinds.validate(kind, body)
    return new Promise((resolve, reject) => {
      this.appendQueue.push({ kind, body, after, resolve, reject })
      if (this.appendQueue.length === 1) void this.lock.run(async () => { await this.flushAppends() })
    })
  }

  private async flushAppends (): Promise<void> {
    // The lock starts an idle job at once: yielding first lets the appends of the same tick
    // join this batch instead of waiting for the next.
    await Promise.resolve()
    while (this.appendQueue.length > 0) {
      const group = this.appendQueue.splice(0, MAX_APPEND_GROUP)
      const feed = this.feed as string
      const signer = this.signer as Signer
      let head = this.heads_.get(feed)
      const stored: StoredEntry[] = []
      const written: PendingAppend[] = []
      const moved: PendingAppend[] = []
      const ops: Op[] = []
      try {
        if (this.flags.has(feed)) throw new AuditError('EQUIVOCATION', 'this host\'s own feed is flagged as forked; refusing to extend it')
        for (const p of group) {
          if (p.after !== undefined && (p.after === null ? head !== undefined : head === undefined || head.seq !== p.after.seq || !bytesEqual(head.hash, p.after.hash))) {
            moved.push(p)
            continue
          }
          written.push(p)
          const unsigned = { feed, seq: head === undefined ? 0 : head.seq + 1, prev: head === undefined ? ZERO_HASH : head.hash, ts: this.now(), kind: p.kind, body: p.body }
          const signed = signingBytes(unsigned, this.limits)
          const sig = signer.sign(signed)
          const bytes = attachSignature(signed, unsigned, sig)
          const hash = sha256(bytes)
          const entry: Entry = { ...unsigned, sig }
          stored.push({ entry, bytes, hash })
          this.putEntryOps(ops, entry, bytes)
          head = { feed, seq: entry.seq, hash }
        }
        if (written.length > 0) ops.push({ type: 'put', key: headKey(feed), value: encodeHead(head as Head) })
        // fsynced before anyone hears of it: an entry other hosts saw cannot be lost to a power
        // cut, so this host never signs a different entry at the same seq after one (a fork
        // that every member would flag as equivocation). Received entries need no fsync: lost,
        // they are pulled again.
        if (ops.length > 0) await this.db.batch(ops, this.appendOptions)
      } catch (err) {
        for (const p of group) p.reject(err as Error)
        continue
      }
      if (head !== undefined) this.heads_.set(feed, head)
      written.forEach((p, i) => { p.resolve(stored[i]) })
      for (const p of moved) p.reject(new AuditError('HEAD_MOVED', 'this host\'s feed moved on before the entry could follow the head it names'))
      for (const s of stored) this.emit('entry', s)
    }
  }

  private putEntryOps (ops: Op[], entry: Entry, bytes: Uint8Array): void {
    ops.push({ type: 'put', key: entryKey(entry.feed, entry.seq), value: bytes })
    putIndex(ops, entry)
  }

  /**
   * Verifies and stores entries received from others (canonical bytes, or entries). Checks run
   * before the write lock, in parallel with earlier batches, but batches are applied in call
   * order. The verified prefix is stored even if a later entry is refused.
   */
  async ingest (items: Array<Uint8Array | Entry>): Promise<IngestResult> {
    this.assertOpen()
    const checked = this.checkBatch(items)
    return await this.lock.run(async () => await this.applyBatch(await checked))
  }

  private async checkBatch (items: Array<Uint8Array | Entry>): Promise<{ ok: StoredEntry[], error?: AuditError, errorIndex?: number }> {
    const ok: Array<{ entry: Entry, bytes: Uint8Array }> = []
    let error: AuditError | undefined
    const now = this.now()
    for (const item of items) {
      try {
        const bytes = item instanceof Uint8Array ? item : encodeEntry(item, this.limits)
        const entry = decodeEntry(bytes, this.limits)
        checkContent(entry, this.verifyOpts)
        this.checkReceipt(entry, bytes.length, now)
        feedPublicKey(entry.feed)
        ok.push({ entry, bytes })
      } catch (err) {
        if (!(err instanceof AuditError)) throw err
        error = err
        break
      }
    }
    const verdicts = await this.signatures.verify(ok)
    const bad = verdicts.indexOf(false)
    if (bad !== -1) {
      const { entry } = ok[bad]
      error = new AuditError('BAD_SIGNATURE', `feed ${entry.feed} seq ${entry.seq}: signature does not verify`)
      ok.length = bad
    }
    const verified = ok.map(({ entry, bytes }) => ({ entry, bytes, hash: sha256(bytes) }))
    return error === undefined ? { ok: verified } : { ok: verified, error, errorIndex: verified.length }
  }

  /** What this host accepts from others beyond validity: a bounded claimed time, small unknown kinds. */
  private checkReceipt (entry: Entry, bytes: number, now: number): void {
    if (entry.ts > now + this.maxClockSkewMs) {
      throw new AuditError('CLOCK_AHEAD', `feed ${entry.feed} seq ${entry.seq} is stamped ${entry.ts - now} ms ahead of this host's clock (bound ${this.maxClockSkewMs} ms)`)
    }
    if (!this.kinds.has(entry.kind) && bytes > this.maxUnknownKindBytes) {
      throw new AuditError('UNKNOWN_KIND_TOO_LARGE', `feed ${entry.feed} seq ${entry.seq}: ${bytes} bytes of unknown kind "${entry.kind}" (cap ${this.maxUnknownKindBytes})`)
    }
  }

  private async applyBatch (checked: { ok: StoredEntry[], error?: AuditError, errorIndex?: number }): Promise<IngestResult> {
    this.assertOpen()
    const result: IngestResult = { stored: [], duplicates: 0, equivocations: [] }
    const ops: Op[] = []
    const newHeads = new Map<string, Head>()
    const newFlags = new Map<string, number>()
    let stopAt: { error: AuditError, index: number } | undefined
    for (let i = 0; i < checked.ok.length; i++) {
      const s = checked.ok[i]
      const { feed, seq } = s.entry
      const forkedAt = newFlags.get(feed) ?? this.flags.get(feed)
      if (forkedAt !== undefined && seq >= forkedAt) {
        stopAt = { error: new AuditError('EQUIVOCATION', `feed ${feed} forked at seq ${forkedAt}; not replicated past it`), index: i }
        break
      }
      const head = newHeads.get(feed) ?? this.heads_.get(feed)
      // below a checkpoint's cover this host keeps only what the checkpoint retains, already held
      if (seq <= (this.bases_.get(feed)?.seq ?? -1)) {
        result.duplicates++
        continue
      }
      if (head !== undefined && seq <= head.seq) {
        const held = result.stored.find(x => x.entry.feed === feed && x.entry.seq === seq)?.bytes ?? (await this.get(feed, seq))?.bytes
        if (held !== undefined && bytesEqual(sha256(held), s.hash)) {
          result.duplicates++
          continue
        }
        if (held === undefined) throw new AuditError('STORE_CORRUPT', `feed ${feed}: head at ${head.seq} but no entry at ${seq}`)
        const proof: EquivocationProof = { feed, seq, a: held, b: s.bytes, detectedAt: this.now() }
        ops.push({ type: 'put', key: proofKey(feed, seq, s.hash), value: encodeProof(proof) })
        const flagged = Math.min(seq, forkedAt ?? seq)
        newFlags.set(feed, flagged)
        ops.push({ type: 'put', key: flagKey(feed), value: encodeFlag(flagged) })
        result.equivocations.push(proof)
        stopAt = { error: new AuditError('EQUIVOCATION', `feed ${feed} has two different valid entries at seq ${seq}`), index: i }
        break
      }
      try {
        checkLink(s.entry, head)
      } catch (err) {
        stopAt = { error: err as AuditError, index: i }
        break
      }
      this.putEntryOps(ops, s.entry, s.bytes)
      newHeads.set(feed, { feed, seq, hash: s.hash })
      result.stored.push(s)
    }
    for (const h of newHeads.values()) ops.push({ type: 'put', key: headKey(h.feed), value: encodeHead(h) })
    if (ops.length > 0) await this.db.batch(ops, this.batchOptions)
    for (const h of newHeads.values()) this.heads_.set(h.feed, h)
    for (const [feed, seq] of newFlags) this.flags.set(feed, seq)
    if (stopAt !== undefined) {
      result.error = stopAt.error
      result.errorIndex = stopAt.index
    } else if (checked.error !== undefined) {
      result.error = checked.error
      result.errorIndex = checked.errorIndex
    }
    for (const s of result.stored) this.emit('entry', s)
    for (const p of result.equivocations) this.emit('equivocation', p)
    return result
  }

  /** The entry at feed/seq: in the chain, or a retained entry below the feed's base. */
  async get (feed: string, seq: number): Promise<StoredEntry | undefined> {
    const bytes = await this.db.get(seq > (this.bases_.get(feed)?.seq ?? -1) ? entryKey(feed, seq) : retainedKey(feed, seq))
    return bytes === undefined ? undefined : this.parseStored(asU8(bytes))
  }

  private parseStored (bytes: Uint8Array): StoredEntry {
    return { entry: decodeEntry(bytes, this.limits), bytes, hash: sha256(bytes) }
  }

  /**
   * Canonical bytes of feed's chain entries fromSeq..toSeq (inclusive), in order, streamed.
   * Nothing when fromSeq is at or below the feed's base: this host cannot hand out a range
   * that links to what the asker holds, so it claims none (the asker joins from a checkpoint).
   */
  async * rangeBytes (feed: string, fromSeq: number, toSeq: number): AsyncGenerator<Uint8Array> {
    if (toSeq < fromSeq || fromSeq <= (this.bases_.get(feed)?.seq ?? -1)) return
    for await (const bytes of this.db.values(feedRange('e', feed, fromSeq, toSeq))) yield asU8(bytes)
  }

  /** Canonical bytes of every retained entry held below a base, by feed then seq. */
  async * retainedBytes (): AsyncGenerator<Uint8Array> {
    for await (const bytes of this.db.values(allKeys('r'))) yield asU8(bytes)
  }

  async range (feed: string, fromSeq: number, toSeq: number): Promise<StoredEntry[]> {
    const out: StoredEntry[] = []
    for await (const bytes of this.rangeBytes(feed, fromSeq, toSeq)) out.push(this.parseStored(bytes))
    return out
  }

  /** Entries by time (all kinds, or one), oldest first unless `reverse`; for `audit log` and views. */
  async * log (q: LogQuery = {}): AsyncGenerator<StoredEntry> {
    for await (const key of this.db.keys({ ...indexRange(q), reverse: q.reverse ?? false, limit: q.limit ?? -1 })) {
      const { feed, seq } = parseIndexKey(key)
      const got = await this.get(feed, seq)
      if (got !== undefined) yield got
    }
  }

  async equivocations (): Promise<EquivocationProof[]> {
    const out: EquivocationProof[] = []
    for await (const value of this.db.values(allKeys('x'))) out.push(decodeProof(asU8(value), this.limits))
    return out
  }

  /**
   * Adopts a checkpoint: `cp` is its entry, `parts` its covered heads and retained refs (the
   * caller has checked them against the entry: protocols/checkpoint's checkCheckpoint), and
   * `retained` the retained entries this host may lack. Covered feeds this host lags on (the
   * caller fetched what its peers could still serve) continue from the covered head, but an
   * archive refuses rather than drop what it holds; retained entries are checked (schema,
   * signature, a ref of `parts`) and kept detached, and detached ones `parts` no longer names
   * dropped; the checkpoint entry is stored; all in one atomic batch.
   */
  async adoptCheckpoint (cp: Uint8Array | StoredEntry, parts: CheckpointParts, retained: Array<Uint8Array | StoredEntry> = [], opts: AdoptOptions = {}): Promise<StoredEntry[]> {
    this.assertOpen()
    const [checkpoint, ...kept] = await this.checkedOnce([cp, ...retained])
    const number = (checkpoint.entry.body as { number?: unknown } | null)?.number
    if (!Number.isSafeInteger(number)) throw new AuditError('CHECKPOINT_REFUSED', 'the checkpoint entry has no number')
    const record: CheckpointRecord = { number: number as number, feed: checkpoint.entry.feed, seq: checkpoint.entry.seq, hash: checkpoint.hash, cover: parts.cover, refs: parts.refs }
    assertCheckpointFits(record)
    return await this.lock.run(async () => {
      const plan = await planAdopt(this.planSource(), { record, checkpoint, retained: kept, held: this.checkpoints_.map(c => c.number), keep: CHECKPOINTS_KEPT, archive: opts.archive === true })
      await this.applyPlan(plan)
      this.checkpoints_ = [...this.checkpoints_.filter(c => c.number < record.number), record].slice(-CHECKPOINTS_KEPT)
      for (const s of plan.stored) this.emit('entry', s)
      return plan.stored
    })
  }

  /** Entries that no chain links (a checkpoint offered, retained entries fetched), checked: schema, feed key, signature. */
  async checkDetached (items: Uint8Array[]): Promise<StoredEntry[]> {
    const checked = await checkDetached(items, this.limits, this.kinds, this.signatures)
    for (const s of checked) this.detachedChecked.add(s)
    return checked
  }

  // A joiner checks a year of retained entries before it judges a checkpoint, then adopts them:
  // what this store checked itself (the very objects it returned) is not verified a second time.
  private async checkedOnce (items: Array<Uint8Array | StoredEntry>): Promise<StoredEntry[]> {
    const fresh = (x: Uint8Array | StoredEntry): boolean => x instanceof Uint8Array || !this.detachedChecked.has(x)
    const checked = await checkDetached(items.filter(fresh).map(x => x instanceof Uint8Array ? x : x.bytes), this.limits, this.kinds, this.signatures)
    let next = 0
    return items.map(x => fresh(x) ? checked[next++] : x as StoredEntry)
  }

  /**
   * Records a fork proven by two entries (checked: schema, signatures, same feed and seq,
   * different bytes), as ingest does when it meets one: a joiner learns the forks below a
   * checkpoint's cover, which it never pulls, from its peers. True when it is news here.
   */
  async addFork (a: Uint8Array, b: Uint8Array): Promise<boolean> {
    this.assertOpen()
    const [x, y] = await checkDetached([a, b], this.limits, this.kinds, this.signatures)
    const { feed, seq } = x.entry
    if (y.entry.feed !== feed || y.entry.seq !== seq || bytesEqual(x.hash, y.hash)) throw new AuditError('MESSAGE_MALFORMED', 'a fork is two different entries of one feed at one seq')
    return await this.lock.run(async () => {
      this.assertOpen()
      const forkedAt = this.flags.get(feed)
      if (forkedAt !== undefined && forkedAt <= seq) return false
      const proof: EquivocationProof = { feed, seq, a, b, detectedAt: this.now() }
      await this.db.batch([
        { type: 'put', key: proofKey(feed, seq, y.hash), value: encodeProof(proof) },
        { type: 'put', key: flagKey(feed), value: encodeFlag(seq) }
      ], this.batchOptions)
      this.flags.set(feed, seq)
      this.emit('equivocation', proof)
      return true
    })
  }

  /**
   * Drops what the newest adopted checkpoint lets go: per covered feed, its oldest entries at
   * or below the covered head, stamped before `before`, that the checkpoint does not retain.
   * One atomic batch per feed, each leaving a whole store. Returns the entries dropped.
   */
  async prune (before: number): Promise<number> {
    this.assertOpen()
    const cp = this.checkpoint()
    if (cp === undefined) return 0
    const retained = new Set(cp.refs.map(refId))
    let dropped = 0
    for (const cover of cp.cover) {
      dropped += await this.lock.run(async () => {
        this.assertOpen()
        const plan = await planPrune(this.planSource(), cover, before, retained)
        if (plan === undefined) return 0
        await this.applyPlan(plan)
        return plan.dropped
      })
    }
    return dropped
  }

  private planSource () {
    return { db: this.db, limits: this.limits, heads: this.heads_, bases: this.bases_ }
  }

  private async applyPlan (plan: Plan): Promise<void> {
    await this.db.batch(plan.ops, this.batchOptions)
    for (const [feed, h] of plan.heads) this.heads_.set(feed, h)
    for (const [feed, b] of plan.bases) this.bases_.set(feed, b)
  }

  /** Re-checks the whole store from its raw records (see verifyStore); the first bad entry and why. */
  async verifyAll (onProgress?: (entries: number) => void): Promise<VerifyAllResult> {
    return await verifyStore({ db: this.db, heads: this.heads_, bases: this.bases_, checkpoint: this.checkpoint() }, this.verifyOpts, this.signatures, onProgress)
  }

  /** Waits for pending writes, then releases the worker threads (the db stays the caller's). */
  async close (): Promise<void> {
    if (this.closed) return
    await this.lock.run(async () => {})
    this.closed = true
    await this.signatures.close()
  }
}
