// Which covered entries a checkpoint keeps: the refs every host holds below the cover and a
// joiner fetches. The rule is that the folds over (retained entries ∪ entries after the cover)
// make exactly the decisions the folds over the whole log make, whatever is written after the
// cover — later revokes, back-dated grants, aborts, accepting resumes and outcomes included.
// That is why it is structural, never "this release is settled" (but for what a seal makes final,
// below): under §8 a later entry can
// change what an earlier one counts for (a revoke whose `after` is below an abort un-aborts its
// release; an accepting resume lifts a halt; aborting a release revives the one it superseded;
// rollbackTargets weighs every earlier release's gates), so any release may matter again, but
// only through what each fold reads of it:
// - membership (view.ts): every genesis, admit, grant and revoke: authority is a fixpoint over all.
// - rooms (state.ts): every room-create, room-member and room-rekey: the epochs replay them all.
// - rollout (state.ts files, authority/decide/gates/status/rollback/overdue read):
//   releases, release-controls, overdues, pins, unpins, quarantines and their clears: all (each
//   is judged by its own author's standing).
//   Outcomes, per (host feed, release id) — the fold keeps only `latest` (the highest-seq
//   apply-start/apply-ok/apply-failed/rollback/soaked), `failed` (the host ever wrote
//   apply-failed or rollback) and `health` (the highest-seq health naming the release):
//     · the highest-seq outcome: `latest`, and that the host spoke at all (applied, moved on);
//     · every apply-failed and rollback: `failed` (and holds.ts, below);
//     · the highest-seq health, only when it failed and is newer than that outcome: the gates
//       read a health only then (an ok one, an older one, or one with no outcome reads as none).
//   A later entry of the same host has a higher seq than all of these, so it replaces exactly
//   what it would have replaced in the whole log: the fold ends in the same maps.
//   Every apply-failed and rollback besides: holds.ts pairs them per attempt (failures after
//   activation quarantine a path), whatever the release. They are rare.
// - sealing (protocols/rollout/seal.ts): a counted checkpoint seals the releases numbered below
//   its `sealed`; no fold reads their outcomes any more (but the failures holds.ts pairs), so of
//   a release id that every covered release entry of it numbers below `sealed` nothing else is
//   kept, and every checkpoint entry that seals is (which seal counts is a membership question,
//   judged at query time). An id is sealed as a whole: once a counted entry of it numbers below
//   the floor, that entry is the one the id means (authority.ts effectiveRelease), so a later
//   duplicate numbered above the floor reopens nothing on any host. Every release entry is kept,
//   so a joiner judges the id as a replayer does. An id reused above the floor between two
//   covers keeps, from the second, only what the first left: less than a checkpoint over
//   everything keeps, and the same decisions. Left open: an id whose covered entries all stop
//   counting later (a revoke cutting below them, a back-dated demotion) and that a counted entry
//   reuses above the floor (release publish never reuses an id; only a hand-made entry can).
// - witnesses, checkpoints that seal nothing, health without a release, anything else: nothing
//   reads them.
// The rule composes: retaining from (retained ∪ later entries) decides as retaining from
// everything does, so successive checkpoints need only what the previous one kept, as long as
// `sealed` never goes down.
import type { Head, StoredEntry } from '../audit/index.js'
import { sortHeads } from '../audit/heads-root.js'
import { membershipSchemas } from '../membership/index.js'
import { HOLD_KINDS, rolloutSchemas } from '../rollout/index.js'
import { ROOM_KINDS } from '../rooms/index.js'
import { CHECKPOINT_KIND, validateCheckpoint } from './codec.js'

const KEEP_ALL: ReadonlySet<string> = new Set([...Object.keys(membershipSchemas), ...ROOM_KINDS, 'release', 'release-control', 'overdue', ...HOLD_KINDS, 'apply-failed', 'rollback'])
const OUTCOMES: ReadonlySet<string> = new Set(['apply-start', 'apply-ok', 'apply-failed', 'rollback', 'soaked'])

/** What the rollout fold keeps of one host's outcomes for one release (failures are all kept). */
interface Slot { latest?: StoredEntry, health?: StoredEntry }

/** The body's release when the rollout fold would file this entry as an outcome; undefined otherwise. */
function releaseOf (e: StoredEntry): string | undefined {
  const kind = e.entry.kind
  if (!OUTCOMES.has(kind) && kind !== 'health') return undefined
  try {
    rolloutSchemas[kind as keyof typeof rolloutSchemas](e.entry.body)
  } catch {
    return undefined
  }
  const release = (e.entry.body as { release?: unknown }).release
  return typeof release === 'string' ? release : undefined
}

function newer (a: StoredEntry | undefined, b: StoredEntry): boolean {
  return a === undefined || a.entry.seq < b.entry.seq
}

function ref (e: StoredEntry): Head {
  return { feed: e.entry.feed, seq: e.entry.seq, hash: e.hash }
}

/** A checkpoint entry the rollout fold files as a seal (state.ts foldSeal). */
function seals (e: StoredEntry): boolean {
  if (e.entry.kind !== CHECKPOINT_KIND) return false
  try {
    return validateCheckpoint(e.entry.body).sealed > 0
  } catch {
    return false
  }
}

/** A well-formed release entry's id and number; undefined for anything else. */
function releaseEntry (e: StoredEntry): { id: string, number: number } | undefined {
  if (e.entry.kind !== 'release') return undefined
  try {
    rolloutSchemas.release(e.entry.body)
  } catch {
    return undefined
  }
  return e.entry.body as { id: string, number: number }
}

/**
 * The refs {feed, seq, hash} to keep out of `entries` (all entries at or below a cover), sorted,
 * for a checkpoint that seals the releases numbered below `sealed`.
 */
export function retainedRefs (entries: Iterable<StoredEntry>, sealed = 0): Head[] {
  const out = new Map<string, Head>()
  const keep = (e: StoredEntry): void => { out.set(`${e.entry.feed}/${e.entry.seq}`, ref(e)) }
  const slots = new Map<string, Map<string, Slot>>()
  // per release id, the highest number any release entry gives it: sealed whichever one counts
  const numbers = new Map<string, number>()
  for (const e of entries) {
    const r = releaseEntry(e)
    if (r !== undefined) numbers.set(r.id, Math.max(r.number, numbers.get(r.id) ?? 0))
    if (KEEP_ALL.has(e.entry.kind) || seals(e)) keep(e)
    if (KEEP_ALL.has(e.entry.kind) && !OUTCOMES.has(e.entry.kind)) continue
    const release = releaseOf(e)
    if (release === undefined) continue
    let perRelease = slots.get(e.entry.feed)
    if (perRelease === undefined) slots.set(e.entry.feed, perRelease = new Map())
    let slot = perRelease.get(release)
    if (slot === undefined) perRelease.set(release, slot = {})
    if (e.entry.kind === 'health') {
      if (newer(slot.health, e)) slot.health = e
      continue
    }
    if (newer(slot.latest, e)) slot.latest = e
  }
  for (const perRelease of slots.values()) {
    for (const [release, { latest, health }] of perRelease) {
      if (latest === undefined || (numbers.get(release) ?? sealed) < sealed) continue
      keep(latest)
      if (health !== undefined && health.entry.seq > latest.entry.seq && (health.entry.body as { ok: boolean }).ok !== true) keep(health)
    }
  }
  return sortHeads([...out.values()])
}
