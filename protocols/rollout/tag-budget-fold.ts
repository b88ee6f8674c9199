// The `budget` entries (per-tag budgets across releases, tag-budget.ts) as the fold files them,
// and which of them are in effect. Lifting follows the rule of pins (holds.ts): an admin's entry
// ends the earlier ones of its own feed for that selector and the ones it names ("feed:seq"); of
// the sets that stand, the smallest max holds. So any delivery order gives the same budget, and
// two admins disagreeing fail safe (the tighter one).
import type { Entry } from '../audit/types.js'
import { refOf } from './holds.js'
import type { BudgetBody, HoldRecord, MembershipView } from './types.js'

export interface TagBudgetState {
  /** selector → its budget entries, in fold order */
  readonly entries: Map<string, Array<HoldRecord<BudgetBody>>>
}

export function emptyBudgets (): TagBudgetState {
  return { entries: new Map() }
}

/** Files a `budget` entry (body already schema-checked). */
export function foldBudget (b: TagBudgetState, e: Entry): void {
  const body = e.body as BudgetBody
  const list = b.entries.get(body.selector)
  const rec = { feed: e.feed, seq: e.seq, ts: e.ts, body }
  if (list === undefined) b.entries.set(body.selector, [rec])
  else if (!list.some(x => x.feed === e.feed && x.seq === e.seq)) list.push(rec)
}


/** A budget in effect: its tag, the smallest max of the sets that stand, and those sets ("feed:seq"). */
export interface TagBudget { selector: string, tag: string, max: number, sets: Array<HoldRecord<BudgetBody>> }

/** The sets of `selector` that stand: counted (admin as of the entry), not ended by a later entry of their feed nor named. */
function standing (list: Array<HoldRecord<BudgetBody>>, m: MembershipView): Array<HoldRecord<BudgetBody>> {
  const counted = list.filter(x => m.standingAt(x.feed, x.seq, x.ts).admin)
  return counted.filter(s => s.body.max !== undefined && !counted.some(x =>
    (x.feed === s.feed && x.seq > s.seq) || (x.body.lifts?.includes(refOf(s)) ?? false)))
    .sort((a, b) => a.feed !== b.feed ? (a.feed < b.feed ? -1 : 1) : a.seq - b.seq)
}

/** Every budget in effect, by selector. */
export function tagBudgets (b: TagBudgetState, m: MembershipView): TagBudget[] {
  const out: TagBudget[] = []
  for (const [selector, list] of [...b.entries].sort(([a], [c]) => a < c ? -1 : a > c ? 1 : 0)) {
    const sets = standing(list, m)
    if (sets.length === 0) continue
    out.push({ selector, tag: selector.slice('tag:'.length), max: Math.min(...sets.map(s => s.body.max as number)), sets })
  }
  return out
}

/** The sets of `selector` a new entry for it names, so that it replaces (or clears) all of them. */
export function budgetLifts (b: TagBudgetState, m: MembershipView, selector: string): string[] {
  return standing(b.entries.get(selector) ?? [], m).map(refOf)
}
