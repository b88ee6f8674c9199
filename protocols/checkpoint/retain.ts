// Which covered entries a checkpoint keeps: the refs every host holds below the cover and a
// joiner fetches. The rule is that the folds over (retained entries ∪ entries after the cover)
// make exactly the decisions the folds over the whole log make, whatever is written after the
// cover — later revokes, back-dated grants, aborts, accepting resumes and outcomes included.
// That is why it is structural, never "this release is settled": under §8 a later entry can
// change what an earlier one counts for (a revoke whose `after` is below an abort un-aborts its
// release; an accepting resume lifts a halt; aborting a release revives the one it superseded;
// rollbackTargets weighs every earlier release's gates), so any release may matter again, but
// only through what each fold reads of it:
// - membership (view.ts): every genesis, admit, grant and revoke: authority is a fixpoint over all.
// - rooms (state.ts): every room-create, room-member and room-rekey: the epochs replay them all.
// - rollout (state.ts files, authority/decide/gates/status/rollback/overdue read):
//   releases, release-controls and overdues: all (each is judged by its own author's standing).
//   Outcomes, per (host feed, release id) — the fold keeps only `latest` (the highest-seq
//   apply-start/apply-ok/apply-failed/rollback/soaked), `failed` (the host ever wrote
//   apply-failed or rollback) and `health` (the highest-seq health naming the release):
//     · the highest-seq outcome: `latest`, and that the host spoke at all (applied, moved on);
//     · the highest-seq apply-failed or rollback, when it is not that one already: `failed`;
//     · the highest-seq health, only when it failed and is newer than that outcome: the gates
//       read a health only then (an ok one, an older one, or one with no outcome reads as none).
//   A later entry of the same host has a higher seq than all of these, so it replaces exactly
//   what it would have replaced in the whole log: the fold ends in the same maps.
// - witnesses, checkpoints, health without a release, anything else: nothing reads them.
// The rule composes: retaining from (retained ∪ later entries) keeps what retaining from
// everything keeps, so successive checkpoints need only what the previous one kept.
import type { Head, StoredEntry } from '../audit/index.js'
import { sortHeads } from '../audit/heads-root.js'
import { membershipSchemas } from '../membership/index.js'
import { rolloutSchemas } from '../rollout/index.js'
import { ROOM_KINDS } from '../rooms/index.js'

const KEEP_ALL: ReadonlySet<string> = new Set([...Object.keys(membershipSchemas), ...ROOM_KINDS, 'release', 'release-control', 'overdue'])
const OUTCOMES: ReadonlySet<string> = new Set(['apply-start', 'apply-ok', 'apply-failed', 'rollback', 'soaked'])
const FAILURES: ReadonlySet<string> = new Set(['apply-failed', 'rollback'])

/** What the rollout fold keeps of one host's outcomes for one release. */
interface Slot { latest?: StoredEntry, failed?: StoredEntry, health?: StoredEntry }

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

/** The refs {feed, seq, hash} to keep out of `entries` (all entries at or below a cover), sorted. */
export function retainedRefs (entries: Iterable<StoredEntry>): Head[] {
  const out = new Map<string, Head>()
  const keep = (e: StoredEntry): void => { out.set(`${e.entry.feed}/${e.entry.seq}`, ref(e)) }
  const slots = new Map<string, Map<string, Slot>>()
  for (const e of entries) {
    if (KEEP_ALL.has(e.entry.kind)) {
      keep(e)
      continue
    }
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
    if (FAILURES.has(e.entry.kind) && newer(slot.failed, e)) slot.failed = e
  }
  for (const perRelease of slots.values()) {
    for (const { latest, failed, health } of perRelease.values()) {
      if (latest === undefined) continue
      keep(latest)
      if (failed !== undefined) keep(failed)
      if (health !== undefined && health.entry.seq > latest.entry.seq && (health.entry.body as { ok: boolean }).ok !== true) keep(health)
    }
  }
  return sortHeads([...out.values()])
}
