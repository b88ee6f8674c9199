// Membership as the rollout decisions read it (protocols/rollout's MembershipView), over the
// node's Membership: one adapter for the daemon's agent and the simulator's hosts.
import type { Basis, EntryStanding, MembershipView, PlanMembership } from '../../protocols/rollout/index.js'

interface Members { members: ReadonlyMap<string, { tags: string[] }> }

/** The few membership facts and the change signal the adapter reads (node/membership.ts's Membership). */
export interface MembershipSource {
  /** undefined until this host has adopted a mesh */
  view: () => Members | undefined
  isAdmin: (peer: string) => boolean
  isMember: (peer: string) => boolean
  standingAt: (feed: string, seq: number, ts: number) => EntryStanding
  /** the view folded from exactly the membership entries of `basis`; undefined while some are missing */
  viewAsOf: (basis: Basis) => Members | undefined
  /** the basis a release published now carries */
  basis: () => Basis
  on: (event: 'changed', listener: () => void) => unknown
  off: (event: 'changed', listener: () => void) => unknown
}

function planMembership (view: Members): PlanMembership {
  return {
    members: () => view.members.keys(),
    tagsOf: (peer) => view.members.get(peer)?.tags ?? []
  }
}

export class RolloutMembership implements MembershipView {
  private rev = 0
  /** a basis's member set never changes once this host holds it, so it is folded once */
  private readonly frozen = new WeakMap<Basis, PlanMembership>()

  constructor (private readonly source: MembershipSource) {}

  /** Moves on every membership change, so plans cached for the old member set are not reused. */
  get revision (): number { return this.rev }

  // Arrow properties, so that one passed on alone still reads this host's membership.
  readonly adopted = (): boolean => this.source.view() !== undefined
  readonly isAdmin = (peer: string): boolean => this.source.isAdmin(peer)
  readonly isMember = (peer: string): boolean => this.source.isMember(peer)
  readonly tagsOf = (peer: string): string[] => this.source.view()?.members.get(peer)?.tags ?? []
  readonly members = (): string[] => [...(this.source.view()?.members.keys() ?? [])]
  readonly standingAt = (feed: string, seq: number, ts: number): EntryStanding => this.source.standingAt(feed, seq, ts)
  readonly basis = (): Basis => this.source.basis()

  readonly asOf = (basis: Basis): PlanMembership | undefined => {
    const known = this.frozen.get(basis)
    if (known !== undefined) return known
    const view = this.source.viewAsOf(basis)
    if (view === undefined) return undefined
    const plan = planMembership(view)
    this.frozen.set(basis, plan)
    return plan
  }

  /**
   * Calls `listener` after every membership change, the revision already moved so that a
   * decision it triggers sees the new plan; returns the unsubscribe.
   */
  watch (listener: () => void): () => void {
    const changed = (): void => { this.rev++; listener() }
    this.source.on('changed', changed)
    return () => { this.source.off('changed', changed) }
  }
}
