// Writing and judging a checkpoint, pure. The writer (an admin) signs the roots of its cover
// and of the refs retain.ts keeps; a host that is handed the entry with the two lists (by
// anyone: the roots make them self-checking) accepts it only when its signer had the standing
// as of the entry, the lists hash to what was signed, it covers no forked feed, it agrees with
// every entry this host already holds, and it is newer than what this host counts already.
import { bytesEqual } from '../audit/codec.js'
import { headsRoot, sortHeads } from '../audit/heads-root.js'
import type { Head, StoredEntry } from '../audit/index.js'
import { CHECKPOINT_KIND, checkpointBody, validateCheckpoint, type CheckpointBody } from './codec.js'
import { isStale, type CheckpointRef, type StandingAt } from './count.js'
import { CheckpointError } from './errors.js'
import { retainedRefs } from './retain.js'

const HASH_BYTES = 32

export type CheckpointRefusal =
  /** its signer was not an admin as of the entry (never admitted, revoked before it, demoted) */
  | 'NOT_ADMIN'
  /** its cover names a feed this host knows forked at or below the covered seq */
  | 'FORKED_FEED'
  /** the cover does not hash to the signed root or count, or does not end the signer's own feed at the entry before */
  | 'COVER_MISMATCH'
  /** the refs do not hash to the signed root or count, or name an entry outside the cover */
  | 'RETAIN_MISMATCH'
  /** a covered head or a ref differs from the entry this host holds at that seq */
  | 'CONFLICT'
  /** its number is not above the newest checkpoint this host counts */
  | 'STALE'

export interface CheckContext {
  standingAt: StandingAt
  /** the lowest seq at which this host holds proof that `feed` forked; undefined: not forked */
  forkedAt: (feed: string) => number | undefined
  /** hash of the entry this host holds at (feed, seq), if any */
  held: (feed: string, seq: number) => Uint8Array | undefined
  /** the newest counted checkpoint this host holds (count.ts newestCheckpoint); undefined: none */
  newest?: CheckpointRef
}

/**
 * The checkpoint body (as signed) for `cover` (heads, forked feeds already left out) and every
 * entry at or below it, sealing the releases numbered below `sealed` (protocols/rollout's
 * sealFloor: never below what an earlier counted checkpoint sealed, or retention stops composing).
 */
export function buildCheckpoint (number: number, cover: Head[], entries: Iterable<StoredEntry>, sealed = 0): { body: Record<string, unknown>, cover: Head[], refs: Head[] } {
  const top = new Map(cover.map(h => [h.feed, h.seq]))
  const covered = function * (): Iterable<StoredEntry> {
    for (const e of entries) if (e.entry.seq <= (top.get(e.entry.feed) ?? -1)) yield e
  }
  const refs = retainedRefs(covered(), sealed)
  const body = checkpointBody({ number, cover: headsRoot(cover), count: cover.length, retain: headsRoot(refs), retained: refs.length, sealed })
  validateCheckpoint(body)
  return { body, cover: sortHeads(cover), refs }
}

function wellFormed (heads: readonly Head[], key: (h: Head) => string): boolean {
  const seen = new Set<string>()
  for (const h of heads) {
    if (!Number.isSafeInteger(h.seq) || h.seq < 0 || !(h.hash instanceof Uint8Array) || h.hash.length !== HASH_BYTES) return false
    const k = key(h)
    if (seen.has(k)) return false
    seen.add(k)
  }
  return true
}

function coverFits (cp: StoredEntry, body: CheckpointBody, cover: readonly Head[]): boolean {
  if (cover.length !== body.count || !wellFormed(cover, h => h.feed) || !bytesEqual(headsRoot(cover), body.cover)) return false
  // the signer's own feed is covered up to the entry before the checkpoint, which `prev` names
  const own = cover.find(h => h.feed === cp.entry.feed)
  if (cp.entry.seq === 0) return own === undefined
  return own !== undefined && own.seq === cp.entry.seq - 1 && bytesEqual(own.hash, cp.entry.prev)
}

function refsFit (body: CheckpointBody, cover: readonly Head[], refs: readonly Head[]): boolean {
  if (refs.length !== body.retained || !wellFormed(refs, h => `${h.feed}/${h.seq}`) || !bytesEqual(headsRoot(refs), body.retain)) return false
  const top = new Map(cover.map(h => [h.feed, h]))
  return refs.every(r => {
    const head = top.get(r.feed)
    return head !== undefined && (r.seq < head.seq || (r.seq === head.seq && bytesEqual(r.hash, head.hash)))
  })
}

/**
 * Why this host must not adopt checkpoint `cp` with these parts; undefined when it may. Throws
 * CheckpointError(CHECKPOINT_BODY_INVALID) for an entry that is no checkpoint at all.
 */
export function checkCheckpoint (cp: StoredEntry, parts: { cover: Head[], refs: Head[] }, ctx: CheckContext): CheckpointRefusal | undefined {
  if (cp.entry.kind !== CHECKPOINT_KIND) throw new CheckpointError('CHECKPOINT_BODY_INVALID', `checkpoint: an entry of kind "${cp.entry.kind}"`)
  const body = validateCheckpoint(cp.entry.body)
  if (!ctx.standingAt(cp.entry.feed, cp.entry.seq, cp.entry.ts).admin) return 'NOT_ADMIN'
  if (isStale({ number: body.number, feed: cp.entry.feed, seq: cp.entry.seq }, ctx.newest)) return 'STALE'
  if (!coverFits(cp, body, parts.cover)) return 'COVER_MISMATCH'
  if (!refsFit(body, parts.cover, parts.refs)) return 'RETAIN_MISMATCH'
  for (const h of parts.cover) {
    const at = ctx.forkedAt(h.feed)
    if (at !== undefined && at <= h.seq) return 'FORKED_FEED'
  }
  for (const h of [...parts.cover, ...parts.refs]) {
    const held = ctx.held(h.feed, h.seq)
    if (held !== undefined && !bytesEqual(held, h.hash)) return 'CONFLICT'
  }
  return undefined
}
