// Where `fleetmesh rollback --release ID` sends ID's targets: for each, the path the newest earlier
// release gave the same selector, among releases that were healthy on the fleet — counted, not
// aborted, not halted, every wave's gate met and at least one host healthy. A halted or
// never-healthy release is never a rollback target, however recent.
import { controlState, outranks, sealedBelow } from './authority.js'
import { gateContext } from './decide.js'
import { HostClass } from './gates.js'
import type { RolloutState } from './state.js'
import type { MembershipView, ReleaseCandidate, Target } from './types.js'

export interface RollbackTarget {
  /** the target of the release being rolled back */
  target: Target
  /** the healthy earlier release whose target (same selector, another path) it goes back to; undefined: none */
  from?: { release: ReleaseCandidate, target: Target }
}

function selector (t: Target): string {
  return `${t.tag ?? ''}|${t.host ?? ''}`
}

/** Each target of release `id` with the healthy release to return it to; undefined for an unknown release. */
export function rollbackTargets (state: RolloutState, membership: MembershipView, id: string): RollbackTarget[] | undefined {
  const ctx = gateContext(state, membership)
  const bad = ctx.releases.get(id)
  if (bad === undefined) return undefined
  // a sealed release (seal.ts) is final: its outcomes are no longer kept, so it is no target
  const floor = sealedBelow(state, membership)
  const healthy = [...ctx.releases.values()]
    .filter(c => c.body.number >= floor && outranks(bad, c) && !controlState(state, membership, c.body.id).aborted)
    .filter(c => {
      const p = state.gates.progress(ctx, c)
      return p !== undefined && !p.halt.halted && p.firstUnmet === p.waves.length && p.waves.some(w => w.n[HostClass.healthy] > 0)
    })
    .sort((a, b) => outranks(a, b) ? -1 : 1)
  return bad.body.targets.map(target => {
    for (const release of healthy) {
      const prev = release.body.targets.find(p => selector(p) === selector(target) && p.path !== target.path)
      if (prev !== undefined) return { target, from: { release, target: prev } }
    }
    return { target }
  })
}
