// Local timeouts and their logged consequence (DESIGN §8: local time only starts timeouts, and a
// timeout's consequence is an entry every host then decides from). Two can block a release:
// - silent hosts: the first wave whose gate is not met is open; its hosts that have written
//   nothing for the release are declared silent once the wave's waitOfflineMs (at least
//   MIN_SILENT_WAIT_MS, so that hosts that are online have written their apply-start) has run on
//   the writer's clock since it saw the wave open. The next wave opens only on that entry, and
//   its own wait starts only when the writer sees it open: one wave at a time.
// - the apply deadline: a wave has hosts whose apply-start has no outcome, or whose apply-ok has
//   no `soaked` yet; once the release's applyDeadlineMs plus the wave's soak has run since the
//   writer saw the latest first apply-start of the wave (each one restarts the timer, so no host
//   is declared before its own deadline), those still without an outcome or attestation are
//   declared overdue and count as failed.
// Who writes: every plan host that is not itself one of the declared hosts has a place in line
// (one that moved on to a newer release too: decide.ts asks it for this one's chore), computed
// from the frozen plan alone (hosts of other waves first, in plan order, then the
// wave's own). Places fall into tiers that double in size — tier t holds places 2^t − 1 ..
// 2^(t+1) − 2 — and tier t writes t × OVERDUE_FALLBACK_MS after the timeout. So normally one
// entry is written; a dead first in line delays it by a minute, not forever; and however many
// hosts are down, the entry comes within log2(plan size) minutes while at most the hosts of one
// tier write it, never the whole fleet. Duplicates are harmless: the gates take the union.
import { HostClass, type Progress } from './gates.js'
import { waveEdgeWait } from './edges.js'
import type { Plan } from './plan.js'
import type { RolloutState } from './state.js'
import type { OverdueBody, OverdueWhy, ReleaseBody, Timer } from './types.js'
import { DEFAULT_APPLY_DEADLINE_MS } from './types.js'

/** How much later each next host in line writes an overdue entry itself. */
export const OVERDUE_FALLBACK_MS = 60_000
/** The shortest wait for a wave's silent hosts, whatever its waitOfflineMs (0 included). */
export const MIN_SILENT_WAIT_MS = 5_000

const SILENT_CLASSES: readonly HostClass[] = [HostClass.quiet]
/** A host that died after its apply-ok, before it attested its soak, would otherwise hold its wave forever. */
const DEADLINE_CLASSES: readonly HostClass[] = [HostClass.applying, HostClass.soaking]

/** The tier of a place in line: 0 for place 0, 1 for places 1–2, 2 for 3–6, … */
function tierOf (place: number): number {
  return Math.floor(Math.log2(place + 1))
}

export type Chore = { timer: Timer } | { attest: OverdueBody }

/** `host`'s place in line for declaring hosts of wave `w`: other waves' hosts first, in plan order. */
function placeInLine (plan: Plan, host: string, w: number): number {
  const r = plan.rank.get(host) as number
  const start = plan.waveStart[w]
  const size = plan.waves[w].length
  if (r < start) return r
  if (r >= start + size) return r - size
  return plan.rank.size - size + r - start
}

/** The timer `host` runs for release `id`, or the overdue entry to write once it ran out. */
export function choreOf (state: RolloutState, progress: Progress, release: ReleaseBody, host: string, expired: ReadonlySet<string> | undefined): Chore | undefined {
  if (progress.halt.halted) return undefined
  const id = release.id
  const { plan, waves } = progress
  /** `only`: of the hosts in `classes`, the ones that may be declared (the rest are not late) */
  const chore = (key: string, ms: number, why: OverdueWhy, w: number, only?: readonly string[]): Chore | undefined => {
    const classes = why === 'silent' ? SILENT_CLASSES : DEADLINE_CLASSES
    const mine = state.gates.classOf(id, host)
    if (plan.waveOf.get(host) === w && mine !== undefined && classes.includes(mine) && (only === undefined || only.includes(host))) return undefined
    const hosts = classes.flatMap(c => state.gates.hostsOf(id, w, c)).filter(h => only === undefined || only.includes(h))
    if (hosts.length === 0) return undefined
    if (expired?.has(key) !== true) return { timer: { key, ms: ms + tierOf(placeInLine(plan, host, w)) * OVERDUE_FALLBACK_MS } }
    return { attest: { release: id, wave: w, hosts: hosts.sort((a, b) => (plan.rank.get(a) as number) - (plan.rank.get(b) as number)), why } }
  }
  const j = progress.firstUnmet
  const wait = waves[j]?.wave.waitOfflineMs
  if (wait !== undefined && waves[j].n[HostClass.quiet] > 0) {
    // While an ordering edge holds its wave (edges.ts), the hosts it holds are waiting, not
    // silent: only the tagged hosts it waits for can be, and must be, or a silent one would hold
    // the edge for good. Their own key, so the wave's later wait for the rest starts afresh.
    const edge = waveEdgeWait(state, progress, id, j) !== undefined
    const c = edge
      ? chore(`${id}/silent/${j}/edge`, Math.max(wait, MIN_SILENT_WAIT_MS), 'silent', j, plan.edges[j])
      : chore(`${id}/silent/${j}`, Math.max(wait, MIN_SILENT_WAIT_MS), 'silent', j)
    if (c !== undefined) return c
  }
  const deadline = release.applyDeadlineMs ?? DEFAULT_APPLY_DEADLINE_MS
  for (let w = 0; w < waves.length; w++) {
    if (waves[w].n[HostClass.applying] + waves[w].n[HostClass.soaking] === 0) continue
    const c = chore(`${id}/deadline/${w}/${waves[w].started}`, deadline + waves[w].wave.gate.soakMs, 'deadline', w)
    if (c !== undefined) return c
  }
  return undefined
}
