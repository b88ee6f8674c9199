// What adopting a checkpoint and pruning below it write, planned as one batch of level ops over
// the store's records (layout.ts) so the store applies each atomically under its write lock.
// Adopting: every covered feed this host still lacks part of (its caller fetched what peers could
// serve) continues from the covered head (its base), but an archive refuses instead; the entries
// it held below that head are dropped unless the checkpoint retains them, which become detached
// retained records, as do the retained entries fetched with the checkpoint, and detached records
// the checkpoint no longer retains go. Pruning: a
// feed's oldest entries below the cover and older than the window go the same way, and its base
// moves up to the last of them. Both keep every index key of a kept entry and drop those of the rest.
import { ZERO_HASH, bytesEqual, decodeEntry, sha256, type CodecLimits, type KindRegistry } from './codec.js'
import { AuditError } from './errors.js'
import type { SignatureChecker } from './signatures.js'
import { feedPublicKey } from './verify.js'
import {
  allKeys, baseKey, checkpointKey, encodeCheckpointRecord, encodeHead, entryKey, feedRange, headKey, indexKeys, retainedKey,
  type AuditDb, type CheckpointRecord
} from './layout.js'
import type { Entry, Head, StoredEntry } from './types.js'

export type Op = { type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }

const EMPTY = new Uint8Array(0)

/** What the plans read of the store: its records and the heads and bases it holds in memory. */
export interface PlanSource {
  db: AuditDb
  limits: CodecLimits
  heads: ReadonlyMap<string, Head>
  bases: ReadonlyMap<string, Head>
}

export interface Plan {
  ops: Op[]
  /** heads and bases that change */
  heads: Map<string, Head>
  bases: Map<string, Head>
  /** entries this host did not hold before, in the order they were planned */
  stored: StoredEntry[]
  /** entries this host no longer holds after it */
  dropped: number
}

/** An entry reference's identity: feed, seq and hash. */
export const refId = (r: { feed: string, seq: number, hash: Uint8Array }): string => `${r.feed}/${r.seq}/${Buffer.from(r.hash).toString('hex')}`

/** Decoded, schema- and signature-checked entries that no chain links (a checkpoint, what it retains, a fork's two sides). */
export async function checkDetached (items: Uint8Array[], limits: CodecLimits, kinds: KindRegistry, signatures: SignatureChecker): Promise<StoredEntry[]> {
  const decoded = items.map((bytes) => {
    const entry = decodeEntry(bytes, limits)
    kinds.validate(entry.kind, entry.body)
    feedPublicKey(entry.feed)
    return { entry, bytes }
  })
  const bad = (await signatures.verify(decoded)).indexOf(false)
  if (bad !== -1) throw new AuditError('BAD_SIGNATURE', `feed ${decoded[bad].entry.feed} seq ${decoded[bad].entry.seq}: signature does not verify`)
  return decoded.map(({ entry, bytes }) => ({ entry, bytes, hash: sha256(bytes) }))
}

export function putIndex (ops: Op[], entry: Entry): void {
  for (const key of indexKeys(entry)) ops.push({ type: 'put', key, value: EMPTY })
}

function delIndex (ops: Op[], entry: Entry): void {
  for (const key of indexKeys(entry)) ops.push({ type: 'del', key })
}

/**
 * Takes `feed`'s chain entries from..upto out of the chain (up to the first one `stop` halts
 * at), keeping those in `retained` as detached records (their ids added to `kept`) and
 * dropping the rest; returns the last one's head.
 */
async function dropChain (src: PlanSource, plan: Plan, feed: string, from: number, upto: number, retained: ReadonlySet<string>, stop?: (e: Entry) => boolean, kept?: Set<string>): Promise<Head | undefined> {
  const ops = plan.ops
  let last: Head | undefined
  for await (const [key, bytes] of src.db.iterator(feedRange('e', feed, from, upto))) {
    const entry = decodeEntry(bytes, src.limits)
    if (stop?.(entry) === true) break
    const hash = sha256(bytes)
    ops.push({ type: 'del', key })
    const id = refId({ feed, seq: entry.seq, hash })
    if (retained.has(id)) {
      ops.push({ type: 'put', key: retainedKey(feed, entry.seq), value: bytes })
      kept?.add(id)
    } else {
      delIndex(ops, entry)
      plan.dropped++
    }
    last = { feed, seq: entry.seq, hash }
  }
  return last
}

const headOf = (src: PlanSource, plan: Plan, feed: string): Head | undefined => plan.heads.get(feed) ?? src.heads.get(feed)
const baseOf = (src: PlanSource, plan: Plan, feed: string): Head | undefined => plan.bases.get(feed) ?? src.bases.get(feed)

/** The hash this store holds (after `plan`) for feed at seq, in its chain, at its base or as a retained entry. */
async function heldHash (src: PlanSource, plan: Plan, feed: string, seq: number): Promise<Uint8Array | undefined> {
  const head = headOf(src, plan, feed)
  if (head === undefined || seq > head.seq) return undefined
  const base = baseOf(src, plan, feed)
  if (base !== undefined && seq === base.seq) return base.hash
  const bytes = await src.db.get(base !== undefined && seq < base.seq ? retainedKey(feed, seq) : entryKey(feed, seq))
  return bytes === undefined ? undefined : sha256(bytes)
}

export interface AdoptInput {
  record: CheckpointRecord
  /** the checkpoint entry itself */
  checkpoint: StoredEntry
  /** retained entries, signatures already checked */
  retained: StoredEntry[]
  /** numbers of the checkpoint records held, oldest first */
  held: number[]
  /** records kept: this one and the newest keep - 1 with lower numbers (which counts is the caller's check) */
  keep: number
  /** an archive: it never drops chain entries, so a feed it holds part of must not lag the cover */
  archive: boolean
}

export async function planAdopt (src: PlanSource, a: AdoptInput): Promise<Plan> {
  const { record, checkpoint: cp } = a
  const plan: Plan = { ops: [], heads: new Map(), bases: new Map(), stored: [], dropped: 0 }
  const refs = new Set(record.refs.map(refId))
  const kept = new Set<string>()
  for (const s of a.retained) {
    if (!refs.has(refId({ feed: s.entry.feed, seq: s.entry.seq, hash: s.hash }))) throw new AuditError('CHECKPOINT_REFUSED', `feed ${s.entry.feed} seq ${s.entry.seq} is not an entry the checkpoint retains`)
  }
  for (const c of record.cover) {
    const head = headOf(src, plan, c.feed)
    if (head !== undefined && head.seq >= c.seq) {
      const held = await heldHash(src, plan, c.feed, c.seq)
      if (held !== undefined && !bytesEqual(held, c.hash)) throw new AuditError('CHECKPOINT_REFUSED', `the checkpoint covers feed ${c.feed} at seq ${c.seq} with an entry other than the one this host holds`)
      continue
    }
    // this host lacks part of the feed below the covered head, which its caller could not fetch
    // (pruned everywhere): it continues from there, unless it is an archive, which keeps its history
    if (head !== undefined && a.archive) throw new AuditError('CHECKPOINT_REFUSED', `an archive keeps its history: feed ${c.feed} ends at seq ${head.seq} here, below the covered seq ${c.seq}, and no member served the rest`)
    await dropChain(src, plan, c.feed, 0, Number.MAX_SAFE_INTEGER, refs, undefined, kept)
    plan.ops.push({ type: 'put', key: baseKey(c.feed), value: encodeHead(c) }, { type: 'put', key: headKey(c.feed), value: encodeHead(c) })
    plan.heads.set(c.feed, c)
    plan.bases.set(c.feed, c)
  }
  for (const s of a.retained) {
    const { feed, seq } = s.entry
    const base = baseOf(src, plan, feed)
    // a feed this store held nothing of has no records to read (a joiner's every feed): what it
    // holds after the plan is the base alone
    const fresh = !src.heads.has(feed)
    const held = fresh ? (seq === base?.seq ? base.hash : undefined) : await heldHash(src, plan, feed, seq)
    if (held !== undefined && !bytesEqual(held, s.hash)) throw new AuditError('CHECKPOINT_REFUSED', `the checkpoint retains feed ${feed} seq ${seq}, which differs from the entry this host holds`)
    // a retained entry never sits above its feed's covered head: above the base the chain holds
    // it; at or below, a detached record does, unless one is there already
    if (base === undefined || seq > base.seq || kept.has(refId({ feed, seq, hash: s.hash })) || (!fresh && (await src.db.get(retainedKey(feed, seq))) !== undefined)) continue
    plan.ops.push({ type: 'put', key: retainedKey(feed, seq), value: s.bytes })
    putIndex(plan.ops, s.entry)
    plan.stored.push(s)
  }
  const { feed, seq } = cp.entry
  const head = headOf(src, plan, feed)
  if (head !== undefined && head.seq >= seq) {
    const held = await heldHash(src, plan, feed, seq)
    if (held !== undefined && !bytesEqual(held, cp.hash)) throw new AuditError('CHECKPOINT_REFUSED', `feed ${feed} holds another entry at the checkpoint's seq ${seq}`)
  } else {
    const follows = head === undefined ? seq === 0 && bytesEqual(cp.entry.prev, ZERO_HASH) : head.seq === seq - 1 && bytesEqual(head.hash, cp.entry.prev)
    if (!follows) throw new AuditError('CHECKPOINT_REFUSED', `the checkpoint does not follow its own feed's covered head`)
    plan.ops.push({ type: 'put', key: entryKey(feed, seq), value: cp.bytes }, { type: 'put', key: headKey(feed), value: encodeHead({ feed, seq, hash: cp.hash }) })
    putIndex(plan.ops, cp.entry)
    plan.heads.set(feed, { feed, seq, hash: cp.hash })
    plan.stored.push(cp)
  }
  await dropUnretained(src, plan, refs)
  plan.ops.push({ type: 'put', key: checkpointKey(record.number), value: encodeCheckpointRecord(record) })
  const lower = a.held.filter(n => n < record.number)
  for (const n of [...lower.slice(0, Math.max(0, lower.length + 1 - a.keep)), ...a.held.filter(n => n > record.number)]) plan.ops.push({ type: 'del', key: checkpointKey(n) })
  return plan
}

/** Detached records the new checkpoint no longer retains go, with their index keys: a store holds detached only what its newest checkpoint names. */
async function dropUnretained (src: PlanSource, plan: Plan, refs: ReadonlySet<string>): Promise<void> {
  for await (const [key, bytes] of src.db.iterator(allKeys('r'))) {
    const entry = decodeEntry(bytes, src.limits)
    if (refs.has(refId({ feed: entry.feed, seq: entry.seq, hash: sha256(bytes) }))) continue
    plan.ops.push({ type: 'del', key })
    delIndex(plan.ops, entry)
    plan.dropped++
  }
}

/**
 * Pruning of one feed below the checkpoint's covered head `cover`: its oldest chain entries
 * stamped before `before` (a prefix, so the chain stays whole), retained ones kept detached.
 * Stamps are claims (DESIGN §8), but what a host keeps locally is its own affair.
 */
export async function planPrune (src: PlanSource, cover: Head, before: number, retained: ReadonlySet<string>): Promise<Plan | undefined> {
  const base = src.bases.get(cover.feed)
  const plan: Plan = { ops: [], heads: new Map(), bases: new Map(), stored: [], dropped: 0 }
  const last = await dropChain(src, plan, cover.feed, (base?.seq ?? -1) + 1, cover.seq, retained, (e) => e.ts >= before)
  if (last === undefined) return undefined
  plan.ops.push({ type: 'put', key: baseKey(cover.feed), value: encodeHead(last) })
  plan.bases.set(cover.feed, last)
  return plan
}
