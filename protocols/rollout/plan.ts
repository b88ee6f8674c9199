// Deterministic wave assignment. Every host computes the same plan from the release body and
// the member set it is resolved against — the release's basis (then frozen for good), or the
// live view for a release without one; count/percent waves take hosts in the order of
// SHA-256(release id || 0x00 || host id), so the canary is a pseudo-random host that every
// host agrees on and that differs between releases (no host is always the canary).
import { createHash } from 'node:crypto'
import type { MembershipView, PlanMembership, ReleaseBody, Target } from './types.js'

export interface Plan {
  /** host ids per wave, in the order they were assigned */
  waves: string[][]
  /** host → wave index, for every targeted host */
  waveOf: Map<string, number>
  /** host → the first target that matched it (its path and sources) */
  targetOf: Map<string, Target>
  /** hosts a target matched but no wave selected: not targeted, reported so the operator sees them */
  unassigned: string[]
  /** host → its position in the plan (wave by wave, in assignment order) */
  rank: Map<string, number>
  /** position in the plan of each wave's first host */
  waveStart: number[]
  /** per wave with an ordering edge (`after.tag`): the plan hosts with that tag, in plan order (edges.ts) */
  edges: Array<string[] | undefined>
  /**
   * The order budget slots follow (budget.ts): plan order, but within a wave with an edge its
   * tagged hosts first, so the hosts an edge waits for never wait for a slot the edge holds.
   */
  slots: string[]
}

function matches (t: Target, host: string, tags: string[]): boolean {
  if (t.host !== undefined) return t.host === host
  if (t.tag !== undefined) return tags.includes(t.tag)
  return true
}

/** The sort key of `host` for count/percent waves of release `id`. */
export function assignmentKey (id: string, host: string): string {
  return createHash('sha256').update(id).update(new Uint8Array([0])).update(host).digest('hex')
}

export function planRelease (release: ReleaseBody, membership: PlanMembership): Plan {
  const targetOf = new Map<string, Target>()
  for (const host of membership.members()) {
    const tags = membership.tagsOf(host)
    const t = release.targets.find(t => matches(t, host, tags))
    if (t !== undefined) targetOf.set(host, t)
  }
  const keys = new Map<string, string>()
  for (const host of targetOf.keys()) keys.set(host, assignmentKey(release.id, host))
  // ties are impossible in practice; the host id breaks them so the order is total anyway
  const ordered = [...targetOf.keys()].sort((a, b) => {
    const ka = keys.get(a) as string
    const kb = keys.get(b) as string
    return ka < kb ? -1 : ka > kb ? 1 : a < b ? -1 : a > b ? 1 : 0
  })
  const total = ordered.length
  const waveOf = new Map<string, number>()
  const waves: string[][] = []
  release.waves.forEach((w, i) => {
    const free = ordered.filter(h => !waveOf.has(h))
    let chosen: string[]
    if (w.hosts !== undefined) {
      const wanted = new Set(w.hosts)
      chosen = free.filter(h => wanted.has(h))
    } else if (w.tag !== undefined) {
      const tag = w.tag
      chosen = free.filter(h => membership.tagsOf(h).includes(tag))
    } else if (w.count !== undefined) {
      chosen = free.slice(0, w.count)
    } else {
      const cumulative = Math.ceil((w.percent as number) * total / 100)
      chosen = free.slice(0, Math.max(0, cumulative - waveOf.size))
    }
    for (const h of chosen) waveOf.set(h, i)
    waves.push(chosen)
  })
  const rank = new Map<string, number>()
  const waveStart: number[] = []
  for (const wave of waves) {
    waveStart.push(rank.size)
    for (const h of wave) rank.set(h, rank.size)
  }
  const edges = release.waves.map(w => {
    const tag = w.after?.tag
    return tag === undefined ? undefined : [...rank.keys()].filter(h => membership.tagsOf(h).includes(tag))
  })
  const slots = waves.flatMap((wave, i) => {
    const tagged = edges[i] === undefined ? undefined : new Set(edges[i])
    return tagged === undefined ? wave : [...wave.filter(h => tagged.has(h)), ...wave.filter(h => !tagged.has(h))]
  })
  return { waves, waveOf, targetOf, unassigned: ordered.filter(h => !waveOf.has(h)), rank, waveStart, edges, slots }
}

/**
 * Plans by release body. A release with a basis is planned once, against the membership as of
 * its basis, and frozen; until this host holds that basis there is no plan (undefined). A
 * release without one follows the live view: its plan is kept while the view's revision stays
 * the same (a view without a revision gets a fresh plan on every call). One cache can serve many
 * states that share bodies and one view (a simulator's hosts), so each plan is computed once.
 */
export class PlanCache {
  private readonly frozen = new WeakMap<ReleaseBody, Plan>()
  private readonly live = new WeakMap<ReleaseBody, { revision: number, plan: Plan }>()

  of (body: ReleaseBody, membership: MembershipView): Plan | undefined {
    if (body.basis !== undefined) {
      let plan = this.frozen.get(body)
      if (plan === undefined) {
        const asOf = membership.asOf(body.basis)
        if (asOf === undefined) return undefined
        plan = planRelease(body, asOf)
        this.frozen.set(body, plan)
      }
      return plan
    }
    const revision = membership.revision
    const hit = this.live.get(body)
    if (revision !== undefined && hit !== undefined && hit.revision === revision) return hit.plan
    const plan = planRelease(body, membership)
    if (revision !== undefined) this.live.set(body, { revision, plan })
    return plan
  }
}
