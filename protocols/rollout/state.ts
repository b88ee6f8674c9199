// The rollout fold: applyEntry(state, entry) files each rollout entry where the decisions look
// for it. It does not judge authority (who is admin) — membership is itself a fold of the same
// log and may arrive later than a release — so it keeps every well-formed entry and authority.ts
// judges them against the membership view at query time. Everything kept is keyed by
// (feed, seq) or "highest seq wins", so entries from different feeds, and duplicates, give the
// same state in any delivery order.
//
// The state is updated in place: copying per-host maps on every entry would make folding a
// 10,000-host log quadratic. The caller owns it; nothing else mutates it.
import { rolloutSchemas } from './schema.js'
import type { RolloutKind } from './schema.js'
import { GateEvaluator } from './gates.js'
import { PlanCache } from './plan.js'
import { emptyHolds, foldHold, HOLD_KINDS, type HoldsState } from './holds.js'
import { emptyBudgets, foldBudget, type TagBudgetState } from './tag-budget-fold.js'
import type { Entry } from '../audit/types.js'
import { CHECKPOINT_KIND, validateCheckpoint } from '../checkpoint/codec.js'
import type { ControlRecord, FirstOutcome, Flag, OverdueBody, ReleaseBody, ReleaseCandidate, ReleaseControlBody, ReleaseOutcomes } from './types.js'

// The maps are filled in place and never replaced: the gate evaluator holds `outcomes`.
export interface RolloutState {
  /** release id → every well-formed release entry using that id (normally one) */
  readonly releases: Map<string, ReleaseCandidate[]>
  readonly controls: Map<string, ControlRecord[]>
  readonly outcomes: Map<string, ReleaseOutcomes>
  readonly flagged: Flag[]
  /** append-only: each host's first outcome per release, in fold order; the gates read it with a cursor */
  readonly firstOutcomes: FirstOutcome[]
  /** the decisions' incremental reader of `outcomes`, with its plans */
  readonly gates: GateEvaluator
  /** pins, quarantines and failures after activation (holds.ts) */
  readonly holds: HoldsState
  /** per-tag budgets across releases (tag-budget.ts) */
  readonly budgets: TagBudgetState
  /** checkpoint entries that seal releases (authority.ts sealedBelow judges which count) */
  readonly seals: SealRecord[]
}

/** A checkpoint entry sealing the releases numbered below `sealed`. */
export interface SealRecord { feed: string, seq: number, ts: number, sealed: number }

// Bodies that passed their kind's schema, by identity: parsing is pure, so its result can be memoised.
const validBodies = new WeakMap<object, RolloutKind>()

/** `plans` may be shared by states that fold the same body objects under one view (a simulator's hosts). */
export function emptyState (plans: PlanCache = new PlanCache()): RolloutState {
  const outcomes = new Map<string, ReleaseOutcomes>()
  const controls = new Map<string, ControlRecord[]>()
  const firstOutcomes: FirstOutcome[] = []
  return { releases: new Map(), controls, outcomes, flagged: [], firstOutcomes, gates: new GateEvaluator(outcomes, controls, firstOutcomes, plans), holds: emptyHolds(), budgets: emptyBudgets(), seals: [] }
}

export function isRolloutKind (kind: string): kind is RolloutKind {
  return Object.hasOwn(rolloutSchemas, kind)
}

/** Entries applyEntry files: the rollout kinds and checkpoints (their seals, seal.ts). */
export function foldsIntoRollout (kind: string): boolean {
  return kind === CHECKPOINT_KIND || isRolloutKind(kind)
}

export function outcomesOf (state: RolloutState, release: string): ReleaseOutcomes {
  let o = state.outcomes.get(release)
  if (o === undefined) {
    o = { latest: new Map(), failed: new Set(), health: new Map(), overdue: [], pending: [] }
    state.outcomes.set(release, o)
  }
  return o
}

function pushOnce<T extends { feed: string, seq: number }> (map: Map<string, T[]>, key: string, item: T): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [item])
  // a duplicate delivery of one entry; two different entries at one (feed, seq) are an
  // equivocation that the audit layer catches before anything reaches this fold
  else if (!list.some(x => x.feed === item.feed && x.seq === item.seq)) list.push(item)
}

/** Files a checkpoint's seal; a checkpoint that seals nothing, or breaks its schema, files nothing. */
function foldSeal (state: RolloutState, entry: Entry): void {
  let sealed: number
  try {
    sealed = validateCheckpoint(entry.body).sealed
  } catch {
    return
  }
  if (sealed === 0 || state.seals.some(s => s.feed === entry.feed && s.seq === entry.seq)) return
  state.seals.push({ feed: entry.feed, seq: entry.seq, ts: entry.ts, sealed })
}

/** Files one entry (signature and chain already verified by the caller); other kinds pass through untouched. */
export function applyEntry (state: RolloutState, entry: Entry): RolloutState {
  if (entry.kind === CHECKPOINT_KIND) foldSeal(state, entry)
  if (!isRolloutKind(entry.kind)) return state
  try {
    // one body object is often folded by many states (a simulator's hosts share entries)
    if (validBodies.get(entry.body as object) !== entry.kind) {
      rolloutSchemas[entry.kind](entry.body)
      // only reached for maps: every parser refuses anything else first
      validBodies.set(entry.body as object, entry.kind)
    }
  } catch (err) {
    // the audit codec normally refuses these already; a store written before the schema was
    // registered can still hold them, and they must not count for anything
    if (!state.flagged.some(f => f.feed === entry.feed && f.seq === entry.seq)) {
      state.flagged.push({ feed: entry.feed, seq: entry.seq, kind: entry.kind, reason: (err as Error).message })
    }
    return state
  }
  foldHold(state.holds, entry)
  if (entry.kind === 'budget') foldBudget(state.budgets, entry)
  if (HOLD_KINDS.has(entry.kind)) return state
  const body = entry.body as Record<string, unknown>
  switch (entry.kind) {
    case 'release':
      pushOnce(state.releases, body.id as string, { feed: entry.feed, seq: entry.seq, ts: entry.ts, body: entry.body as ReleaseBody })
      break
    case 'release-control':
      pushOnce(state.controls, body.release as string, { feed: entry.feed, seq: entry.seq, ts: entry.ts, action: (body as ReleaseControlBody).action, body: body as ReleaseControlBody })
      break
    case 'overdue': {
      const o = outcomesOf(state, body.release as string)
      if (o.overdue.some(x => x.feed === entry.feed && x.seq === entry.seq)) break
      o.overdue.push({ feed: entry.feed, seq: entry.seq, ts: entry.ts, body: body as OverdueBody })
      break
    }
    case 'health': {
      if (body.release === undefined) break
      const o = outcomesOf(state, body.release as string)
      const prev = o.health.get(entry.feed)
      if (prev !== undefined && prev.seq >= entry.seq) break
      o.health.set(entry.feed, entry)
      const latest = o.latest.get(entry.feed)
      o.pending.push({ host: entry.feed, before: latest, after: latest, beforeHealth: prev, afterHealth: entry, newlyFailed: false })
      break
    }
    default: {
      const o = outcomesOf(state, body.release as string)
      const newlyFailed = (entry.kind === 'apply-failed' || entry.kind === 'rollback') && !o.failed.has(entry.feed)
      if (newlyFailed) o.failed.add(entry.feed)
      const prev = o.latest.get(entry.feed)
      const replaces = prev === undefined || prev.seq < entry.seq
      if (replaces) o.latest.set(entry.feed, entry)
      if (prev === undefined) state.firstOutcomes.push({ host: entry.feed, release: body.release as string })
      const health = o.health.get(entry.feed)
      if (replaces || newlyFailed) o.pending.push({ host: entry.feed, before: prev, after: o.latest.get(entry.feed), beforeHealth: health, afterHealth: health, newlyFailed })
    }
  }
  return state
}
