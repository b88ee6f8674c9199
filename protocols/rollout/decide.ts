// What a host does next, as a pure function of the rollout state, the membership view and `now`:
// authority.ts says which entries count, the state's gate evaluator (gates.ts) how far each
// release's waves have come; this module turns both into one action with its reasons.
import { controlState, outranks, validReleases } from './authority.js'
import { secs, soakEnd } from './gates.js'
import type { Plan } from './plan.js'
import type { RolloutState } from './state.js'
import type { Entry } from '../audit/types.js'
import type { DecideOptions, Decision, MembershipView, ReleaseBody, ReleaseCandidate } from './types.js'

/** The release's plan under this membership, from the state's cache (kept while the view's revision stays the same). */
export function planOf (state: RolloutState, body: ReleaseBody, membership: MembershipView): Plan {
  return state.gates.plans.of(body, membership)
}

/**
 * The next action of `host`: apply its active release when its wave may start, wait, revert a
 * halted release it is on (autoRevert), or nothing. Same state + view + now ⇒ same decision on
 * every host.
 */
export function decide (state: RolloutState, membership: MembershipView, host: string, now: number, opts: DecideOptions = {}): Decision {
  const trace: string[] = []
  const note = opts.trace === false ? () => {} : (s: string) => { trace.push(s) }
  if (!membership.isMember(host)) return { action: 'none', reason: 'not a member', trace }
  const releases = validReleases(state, membership)
  let applied = 0
  let current: ReleaseCandidate | undefined
  let active: ReleaseCandidate | undefined
  for (const c of releases) {
    const latest = state.outcomes.get(c.body.id)?.latest.get(host)
    if (latest !== undefined) {
      applied = Math.max(applied, c.body.number)
      if ((latest.kind === 'apply-ok' || latest.kind === 'apply-start') && (current === undefined || outranks(c, current))) current = c
    }
    if (controlState(state, membership, c.body.id).aborted) {
      note(`${c.body.id}: aborted`)
      continue
    }
    if (!planOf(state, c.body, membership).waveOf.has(host)) continue
    if (active === undefined || outranks(c, active)) active = c
  }
  const revert = revertOf(state, membership, host, current, now, trace, note)
  if (active === undefined) {
    return revert ?? { action: 'none', reason: 'not targeted by any active release', trace }
  }
  const id = active.body.id
  note(`active release: ${id} #${active.body.number} signed by ${active.feed}`)
  if (active.body.number < applied) {
    return revert ?? { action: 'none', release: id, reason: `superseded here: this host already applied a release numbered ${applied}`, trace }
  }
  const progress = state.gates.progress(membership, active, now)
  const k = progress.plan.waveOf.get(host) as number
  const latest = state.outcomes.get(id)?.latest.get(host)
  if (progress.halt.halted) {
    note(`halted: ${progress.halt.reason}`)
    return revert ?? { action: 'none', release: id, reason: `halted: ${progress.halt.reason}`, trace }
  }
  if (latest !== undefined) {
    const why = latest.kind === 'apply-ok' ? 'already on it' : latest.kind === 'apply-start' ? 'apply in progress' : `${latest.kind} here: not retried`
    return revert ?? { action: 'none', release: id, reason: why, trace }
  }
  if (revert !== undefined) return revert
  const control = controlState(state, membership, id)
  if (control.paused) return { action: 'wait', release: id, wave: k, reason: `paused by ${control.by?.feed}`, trace }
  const notBefore = active.body.notBefore ?? 0
  if (now < notBefore) return { action: 'wait', release: id, wave: k, reason: `not before ${notBefore}: ${secs(notBefore - now)} left`, until: notBefore, trace }
  if (progress.firstUnmet < k) {
    const j = progress.firstUnmet
    const g = progress.gates[j]
    const agg = progress.waves[j]
    let reason = `wave ${k} waits: wave ${j} has ${agg.healthy}/${g.counted} healthy, needs ${agg.wave.gate.healthy} %`
    if (g.soakUntil !== undefined) reason += `, soak ${secs(g.soakUntil - now)} left`
    note(reason)
    return g.soakUntil !== undefined
      ? { action: 'wait', release: id, wave: k, reason, until: g.soakUntil, trace }
      : { action: 'wait', release: id, wave: k, reason, trace }
  }
  const target = progress.plan.targetOf.get(host)
  if (target === undefined) return { action: 'none', release: id, reason: 'not targeted', trace }
  note(`wave ${k} open: every earlier wave meets its gate`)
  return { action: 'apply', release: id, number: active.body.number, path: target.path, sources: target.sources, wave: k, trace }
}

/** A wave gate's soak that `host` is inside of: it must stay healthy until `until`. */
export interface SoakWatch { release: string, path: string, until: number }

/**
 * The soak this host is serving, if any: its newest outcome for a live release is apply-ok, with
 * no failing health report since, and its wave's gate soak has not ended. The host keeps probing
 * until then and reports a failure as a `health` entry, which takes it out of the gate's count.
 */
export function soakWatchOf (state: RolloutState, membership: MembershipView, host: string, now: number): SoakWatch | undefined {
  let best: { c: ReleaseCandidate, watch: SoakWatch } | undefined
  for (const c of validReleases(state, membership)) {
    const o = state.outcomes.get(c.body.id)
    const latest = o?.latest.get(host)
    if (latest?.kind !== 'apply-ok' || controlState(state, membership, c.body.id).aborted) continue
    const k = planOf(state, c.body, membership).waveOf.get(host)
    if (k === undefined) continue
    const until = soakEnd(latest, o?.health.get(host), c.body.waves[k].gate.soakMs)
    if (until === undefined || until <= now) continue
    if (best === undefined || outranks(c, best.c)) best = { c, watch: { release: c.body.id, path: (latest.body as { path: string }).path, until } }
  }
  return best?.watch
}

function revertOf (state: RolloutState, membership: MembershipView, host: string, current: ReleaseCandidate | undefined, now: number, trace: string[], note: (s: string) => void): Decision | undefined {
  if (current === undefined || current.body.autoRevert !== true) return undefined
  const id = current.body.id
  let why: string | undefined
  if (controlState(state, membership, id).aborted) why = 'aborted'
  else {
    const halt = state.gates.progress(membership, current, now).halt
    if (halt.halted) why = `halted: ${halt.reason}`
  }
  if (why === undefined) return undefined
  note(`on ${id}, which is ${why}; autoRevert`)
  const latest = state.outcomes.get(id)?.latest.get(host) as Entry
  return { action: 'revert', release: id, path: (latest.body as { path: string }).path, trace }
}
