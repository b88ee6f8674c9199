// Ordering edges: what a release or a wave waits for besides its gates.
//
// A release with `after: X` waits until release X is complete: every wave of X meets its gate and
// none of X's hosts is still applying or soaking (what `release status` calls done, less the hosts
// that are merely online and quiet, which no log entry tells apart). X sealed by a checkpoint is
// complete unless aborted (sealing happens only to releases nothing is under way in). X aborted,
// halted or under the release floor never completes: the release waits, with that reason, until
// an admin aborts it or lifts X's halt. While it waits it is not active: a host it targets keeps
// following older releases (X itself above all, which may target the same hosts) — else X's later
// waves would wait on a release that waits on them.
//
// A wave with `after: {tag: T}` holds its hosts that do not carry T until every plan host with T
// is healthy or out of the gate (pinned, silent, moved on, accepted, stale); failed ones hold it,
// and the failure budget halts the release. The T hosts of that wave are not held (they are what
// it waits for). A T host in a later wave would wait for this one: publishing refuses such a plan
// (edgeDeadlock). While the edge holds, the wave's silent timer does not run (overdue.ts): its
// held hosts are waiting, not silent.
import { controlState, sealedBelow } from './authority.js'
import { releaseFloor } from './fresh.js'
import { HostClass, type GateContext, type Progress } from './gates.js'
import type { Plan } from './plan.js'
import type { RolloutState } from './state.js'
import type { ReleaseBody } from './types.js'

/** Classes a `--after tag:T` edge does not wait for any more. */
const SETTLED: readonly HostClass[] = [HostClass.healthy, HostClass.pinned, HostClass.silent, HostClass.movedOn, HostClass.accepted, HostClass.stale]
/** Classes that mean a release's host is still between apply-start and a final outcome. */
const IN_FLIGHT: readonly HostClass[] = [HostClass.applying, HostClass.soaking, HostClass.unhealthy]

/** Why `body` cannot become active yet because of its `after`; undefined when it may. */
export function releaseEdgeWait (state: RolloutState, ctx: GateContext, body: ReleaseBody): string | undefined {
  const id = body.after
  if (id === undefined) return undefined
  const x = ctx.releases.get(id)
  if (x === undefined) return `waits for release ${id}, which this host does not hold`
  if (controlState(state, ctx.membership, id).aborted) return `waits for release ${id}, which was aborted: it never completes`
  if (x.body.number < sealedBelow(state, ctx.membership)) return undefined
  const floor = releaseFloor(state.holds.fresh, ctx.membership)
  if (floor !== undefined && x.body.number < floor.body.number) return `waits for release ${id}, which is below the release floor #${floor.body.number}: it never completes`
  const p = state.gates.progress(ctx, x)
  if (p === undefined) return `waits for release ${id}: this host does not hold its basis yet`
  if (p.halt.halted) return `waits for release ${id}, which halted: ${p.halt.reason ?? ''}`
  if (p.firstUnmet < p.waves.length) return `waits for release ${id} to complete: its wave ${p.firstUnmet + 1} does not meet its gate`
  let busy = 0
  for (const w of p.waves) for (const c of IN_FLIGHT) busy += w.n[c]
  if (busy > 0) return `waits for release ${id} to complete: ${busy} of its hosts still applying or soaking`
  return undefined
}

/** Why wave `k`'s edge holds `host` (undefined when it does not, or to ask whether the wave's edge is met: host undefined). */
export function waveEdgeWait (state: RolloutState, progress: Progress, release: string, k: number, host?: string): string | undefined {
  const tagged = progress.plan.edges[k]
  if (tagged === undefined || (host !== undefined && tagged.includes(host))) return undefined
  let settled = 0
  for (const h of tagged) if (SETTLED.includes(state.gates.classOf(release, h) ?? HostClass.quiet)) settled++
  if (settled === tagged.length) return undefined
  const tag = progress.waves[k].wave.after?.tag as string
  return `wave ${k + 1} waits for every host tagged ${tag}: ${settled}/${tagged.length} healthy or out of the gate`
}

/** Why a plan's edges could never be met (a tagged host in a later wave than one its edge holds), or undefined. */
export function edgeDeadlock (plan: Plan, body: ReleaseBody): string | undefined {
  for (let k = 0; k < plan.edges.length; k++) {
    const tagged = plan.edges[k]
    if (tagged === undefined || plan.waves[k].every(h => tagged.includes(h))) continue
    const late = tagged.find(h => (plan.waveOf.get(h) as number) > k)
    if (late !== undefined) {
      return `wave ${k + 1} waits for every host tagged ${body.waves[k].after?.tag as string}, but ${late} is one and is in wave ${(plan.waveOf.get(late) as number) + 1}, which opens only after wave ${k + 1}: put those hosts in an earlier wave`
    }
  }
  return undefined
}
