// The disruption budget of one release: at most N of its hosts in flight at once (apply-start
// without a final outcome, or applied and not yet soaked), never exceeded even when every host
// decides at the same instant on a different part of the log. Slots are not raced for: they
// follow from the plan's slot order (plan.ts: plan order, but in a wave with an ordering edge the
// hosts it waits for first, so an edge and the budget never wait on each other) and the log.
//
// The rule: the host at place r of that order may start only when fewer than N hosts before it
// are unfinished. Finished is what a host's own entries say for good: its final outcome (apply-failed
// or rollback; `soaked`, or apply-ok when its wave's gate has no soak), an outcome for a newer
// release (moved on: its agent ends one apply before it starts another), its stale verdict; and
// one fact others write: declared past the apply deadline (overdue.ts), after which it counts as
// failed — so a host that started and went silent holds its slot no longer than the release's
// apply deadline (if it was only slow, it may then overlap one more host: the price of not
// waiting forever). Everything else may be in flight: quiet, applying, soaking, pinned (a pin can
// be lifted), and hosts declared silent — that declaration races with the declared host's own
// apply-start, so it cannot free a slot without letting two hosts take it.
//
// Why it holds: take the hosts in flight at some moment and the one of them last in that order,
// at place r. When it decided to start, every other one of them was already unfinished in the
// whole log (finished stays finished, and they are unfinished now), so unfinished in the part it
// held; all come before r; and it saw fewer than N such hosts. So fewer than N others are in flight with
// it: at most N in all. Which entries a host holds only delays it; test/rollout/edges-budget.test.ts
// checks this with fast-check over every order of decisions and every subset of entries held.
//
// What it costs: a host early in the order that never writes (offline for good, or pinned) and
// never started holds a slot of the release for good; with N = 1 the hosts after it wait, and
// say so. An admin then aborts and publishes again without it (a new release ranks hosts anew).
import { HostClass, type Progress } from './gates.js'
import type { RolloutState } from './state.js'
import type { ReleaseBody } from './types.js'

/** The release's budget in hosts over a plan of `hosts`; undefined: no budget. */
export function maxInFlight (body: ReleaseBody, hosts: number): number | undefined {
  const b = body.budget
  if (b?.maxInFlight !== undefined) return b.maxInFlight
  if (b?.maxInFlightPercent !== undefined) return Math.max(1, Math.ceil(b.maxInFlightPercent * hosts / 100))
  return undefined
}

/** Finished for good by the host's own entries (header). */
function finished (state: RolloutState, progress: Progress, release: string, h: string): boolean {
  const o = state.outcomes.get(release)
  if (o?.failed.has(h) === true) return true
  const latest = o?.latest.get(h)
  if (latest?.kind === 'soaked') return true
  if (latest?.kind === 'apply-ok' && progress.waves[progress.plan.waveOf.get(h) as number].wave.gate.soakMs === 0) return true
  const cls = state.gates.classOf(release, h)
  return cls === HostClass.movedOn || cls === HostClass.stale || cls === HostClass.failed
}

/** Hosts before `host` in the plan's slot order that are not finished (stops counting at `limit`). */
function unfinishedBefore (state: RolloutState, progress: Progress, release: string, host: string, limit: number): number {
  let n = 0
  for (const h of progress.plan.slots) {
    if (h === host) return n
    if (!finished(state, progress, release, h) && ++n >= limit) return n
  }
  return n
}

/** Why the budget holds `host` back from starting the release now; undefined when it may start. */
export function budgetWait (state: RolloutState, progress: Progress, body: ReleaseBody, host: string): string | undefined {
  const n = maxInFlight(body, progress.plan.rank.size)
  if (n === undefined) return undefined
  const before = unfinishedBefore(state, progress, body.id, host, n)
  if (before < n) return undefined
  return `budget: ${before} hosts before this one in the plan may be in flight, at most ${n} at once`
}

/** Hosts of the release in flight now, as this host's log says (status). */
export function inFlight (state: RolloutState, progress: Progress, release: string): number {
  let n = 0
  for (const h of progress.plan.rank.keys()) {
    if (state.outcomes.get(release)?.latest.has(h) === true && !finished(state, progress, release, h)) n++
  }
  return n
}
