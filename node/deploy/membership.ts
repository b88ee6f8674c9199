// Membership as the rollout decisions read it (protocols/rollout's MembershipView), over the
// node's Membership: one adapter for the daemon's agent and the simulator's hosts.
import type { MembershipView } from '../../protocols/rollout/index.js'

/** The few membership facts and the change signal the adapter reads. */
export interface MembershipSource {
  /** undefined until this host has adopted a mesh */
  view: () => { members: ReadonlyMap<string, { tags: string[] }> } | undefined
  isAdmin: (peer: string) => boolean
  isMember: (peer: string) => boolean
  on: (event: 'changed', listener: () => void) => unknown
  off: (event: 'changed', listener: () => void) => unknown
}

export class RolloutMembership implements MembershipView {
  private rev = 0

  constructor (private readonly source: MembershipSource) {}

  /** Moves on every membership change, so plans cached for the old member set are not reused. */
  get revision (): number { return this.rev }

  // Arrow properties, so that one passed on alone still reads this host's membership.
  readonly adopted = (): boolean => this.source.view() !== undefined
  readonly isAdmin = (peer: string): boolean => this.source.isAdmin(peer)
  readonly isMember = (peer: string): boolean => this.source.isMember(peer)
  readonly tagsOf = (peer: string): string[] => this.source.view()?.members.get(peer)?.tags ?? []
  readonly members = (): string[] => [...(this.source.view()?.members.keys() ?? [])]

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
