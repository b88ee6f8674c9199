// `release why ID [HOST]`: the decision trace of one host, from the log. It runs decide() itself
// with a `cite` that collects each step of the reasoning (what holds the host: a gate, a budget,
// an edge, a pin, a quarantine, freshness, a seal…) with the entries it rests on, so the
// explanation is the decision's own reasoning, never a second reading of the log that could drift
// from it. What it adds is where the host stands in the release asked about (its wave, its class
// in the gate, its path), since the host may be deciding on another release.
import { decide, gateContext, planOf, refusedBelow } from './decide.js'
import { effectiveRelease } from './authority.js'
import { releaseFloor } from './fresh.js'
import { HostClass } from './gates.js'
import { entryRef } from './tag-budget.js'
import type { RolloutState } from './state.js'
import type { Cause, Decision, MembershipView } from './types.js'

/** HostClass names, as `release why` prints them. */
const CLASS_NAMES = Object.fromEntries(Object.entries(HostClass).map(([k, v]) => [v, k])) as Record<number, string>

export interface Why {
  host: string
  release: string
  /** what the host does next, exactly as decide() says */
  decision: Decision
  /** whether that decision is about `release` (a host decides on one release at a time) */
  about: boolean
  /** where the host stands in `release`: its wave (0-based), its class for the wave's gate, its target path; absent when not in its plan */
  standing?: { wave: number, cls: string, path: string }
  /** each step of the reasoning, in the order decide() took it, with the entries it rests on */
  causes: Cause[]
}

/** Why `host` does what it does about `release` now. Same state, view, now and timers ⇒ same answer as decide(). */
export function why (state: RolloutState, membership: MembershipView, host: string, release: string, now: number, expired?: ReadonlySet<string>): Why {
  const causes: Cause[] = []
  const decision = decide(state, membership, host, now, { cite: c => causes.push(c), ...(expired !== undefined ? { expired } : {}) })
  const c = effectiveRelease(state, membership, release)
  const out: Why = { host, release, decision, about: decision.release === release, causes }
  if (c === undefined) {
    causes.push({ what: 'idle', text: `this host holds no counted release ${release}`, entries: [] })
    return out
  }
  const below = refusedBelow(state, membership)
  if (c.body.number < below) {
    const floor = releaseFloor(state.holds.fresh, membership)
    const by = floor !== undefined && floor.body.number === below ? [entryRef(floor, 'release-floor')] : []
    causes.push({ what: 'seal', text: `${release} is numbered ${c.body.number}, below ${below} (${by.length > 0 ? 'the release floor' : 'sealed by a checkpoint'}): never applied nor reverted`, entries: [entryRef(c, 'release'), ...by] })
  }
  const plan = planOf(state, c.body, membership)
  const wave = plan?.waveOf.get(host)
  if (plan !== undefined && wave !== undefined) {
    // the gate classes as of this log (decide may have stopped before reading this release's gates)
    state.gates.progress(gateContext(state, membership), c)
    out.standing = { wave, cls: CLASS_NAMES[state.gates.classOf(release, host) ?? HostClass.quiet], path: plan.targetOf.get(host)?.path as string }
  } else if (plan !== undefined) {
    causes.push({ what: 'idle', text: `not in the plan of ${release}${plan.unassigned.includes(host) ? ': a target matches it but no wave selects it' : ''}`, entries: [entryRef(c, 'release')] })
  }
  return out
}
