// Which checkpoints count, numbered like releases: a checkpoint counts when its signer was an
// admin as of the entry (DESIGN §8, standingAt), and of several counted ones with one number the
// first by (feed, seq). The newest is the counted one with the highest number; a checkpoint whose
// number is not above it (and that is not it) is stale.
import type { Entry } from '../audit/index.js'
import type { Standing } from '../membership/index.js'
import { CHECKPOINT_KIND, validateCheckpoint } from './codec.js'

export type StandingAt = (feed: string, seq: number, ts: number) => Standing

/** One checkpoint entry, by what orders it. */
export interface CheckpointRef { number: number, feed: string, seq: number }

/** True when a is ordered before b among checkpoints: lower number, then lower (feed, seq). */
function before (a: CheckpointRef, b: CheckpointRef): boolean {
  if (a.number !== b.number) return a.number < b.number
  if (a.feed !== b.feed) return a.feed < b.feed
  return a.seq < b.seq
}

/** True when `cp` moves nothing forward next to `newest`, the newest counted checkpoint a host holds. */
export function isStale (cp: CheckpointRef, newest: CheckpointRef | undefined): boolean {
  if (newest === undefined) return false
  if (cp.number !== newest.number) return cp.number < newest.number
  return before(newest, cp)
}

/** The newest counted checkpoint among `entries`; undefined when none counts. */
export function newestCheckpoint (entries: Iterable<Entry>, standingAt: StandingAt): CheckpointRef | undefined {
  let best: CheckpointRef | undefined
  for (const e of entries) {
    if (e.kind !== CHECKPOINT_KIND) continue
    let number: number
    try {
      number = validateCheckpoint(e.body).number
    } catch {
      continue
    }
    const cp = { number, feed: e.feed, seq: e.seq }
    if (best !== undefined && !isStale(best, cp)) continue
    if (standingAt(e.feed, e.seq, e.ts).admin) best = cp
  }
  return best
}
