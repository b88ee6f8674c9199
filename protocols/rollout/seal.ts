// Finality. A counted checkpoint seals the releases numbered below its `sealed` (authority.ts
// sealedBelow): from then on they are final on every host, whatever is written later — no host
// applies one or reverts from one again, no resume, abort or revoke reopens one, none is a
// rollback target, and `release status` reports it as sealed. So no fold reads their outcomes
// any more, and a checkpoint need not retain them (protocols/checkpoint/retain.ts): without a
// seal, a year of releases kept each host's newest outcome of every one of them forever.
//
// What an admin seals when it writes a checkpoint: every release below the oldest that is still
// under way (not aborted, neither halted nor past every wave's gate) and never the newest, which
// hosts that join or come back still apply; never less than what is sealed already.
import { controlState, sealedBelow } from './authority.js'
import { gateContext } from './decide.js'
import type { RolloutState } from './state.js'
import type { MembershipView } from './types.js'

/** The `sealed` of a checkpoint written now. */
export function sealFloor (state: RolloutState, membership: MembershipView): number {
  const floor = sealedBelow(state, membership)
  const ctx = gateContext(state, membership)
  let newest = 0
  let open = Number.MAX_SAFE_INTEGER
  for (const c of ctx.releases.values()) {
    if (c.body.number < floor || controlState(state, membership, c.body.id).aborted) continue
    newest = Math.max(newest, c.body.number)
    const p = state.gates.progress(ctx, c)
    if (p === undefined || !(p.halt.halted || p.firstUnmet === p.waves.length)) open = Math.min(open, c.body.number)
  }
  return Math.max(floor, Math.min(newest, open))
}
