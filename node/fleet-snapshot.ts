// What one frame of the fleet view holds, and the folds over the log that feed it: per host the
// generation its own log says it runs, its open drift and its agents. Each fold keeps the newest
// entry of a feed by seq (DESIGN §8: order within a feed), so a scan racing live entries, or any
// delivery order, gives the same frame.
import type { EntryRow } from './routes.js'
import type { StoredEntry } from '../protocols/audit/index.js'
import { effectiveRelease, holdsStatus, type Flag, type PinStatus, type QuarantineStatus, type ReleaseStatus, type RolloutState } from '../protocols/rollout/index.js'
import type { MembershipView as RolloutMembershipView } from '../protocols/rollout/types.js'
import { DESIRED_KINDS, DRIFT_KIND, foldDesired, type Desired, type DriftBody, type DriftWhat } from '../protocols/drift/index.js'
import { AGENT_KIND, emptyAgentFleet, fleetAgents, foldAgent, type FleetAgent } from '../protocols/agents/index.js'

export interface MemberState {
  peerId: string
  /** its host name, when its admission carries one */
  name?: string
  /** how views name it (node/host-names.ts): the name, `name#suffix` where hosts share it, else a short id */
  label: string
  role: string
  tags: string[]
  online: boolean
  self: boolean
  /** the generation its own log says it runs (drift/desired.ts), when it has applied one */
  generation?: Desired
}
/** A release as the view shows it: its status (per-host states in each wave) and what it deploys how. */
export interface ReleaseView extends ReleaseStatus {
  targets: Array<{ tag?: string, host?: string, path: string }>
  /** per wave (0-based like `waves`): which hosts it selects and its gate */
  plan: Array<{ selector: string, healthy: number, soakMs: number }>
}
export interface EquivocationAlert { feed: string, seq: number, detectedAt: number }
/** A host whose newest drift entry reports drift it has not reported cleared: what differs. */
export interface DriftAlert {
  peer: string
  seq: number
  ts: number
  state: 'detected' | 'repair'
  what: DriftWhat[]
  activated?: string
  profile?: string
  desired?: string
  modifiedCount?: number
  /** the repair's outcome, when the newest entry is one */
  outcome?: string
}

/** One frame of the fleet view, as this host sees the fleet. */
export interface FleetSnapshot {
  at: number
  self: string
  mesh: { id: string, name: string } | null
  members: MemberState[]
  releases: ReleaseView[]
  flagged: Flag[]
  audit: EntryRow[]
  equivocations: EquivocationAlert[]
  drift: DriftAlert[]
  /** every member's agents, from their `agent` entries */
  agents: FleetAgent[]
  pins: PinStatus[]
  quarantined: QuarantineStatus[]
}

/** The kinds the folds read: what a start-up scan of the log visits. */
export const FOLDED_KINDS: readonly string[] = [...DESIRED_KINDS, DRIFT_KIND, AGENT_KIND]

/** Per host: its generation, its newest drift entry, its agents. */
export class FleetFolds {
  private readonly generations = new Map<string, Desired>()
  private readonly drift = new Map<string, { seq: number, ts: number, body: DriftBody }>()
  private readonly agentFleet = emptyAgentFleet()

  add (s: StoredEntry): void {
    const e = s.entry
    // only a host's own apply, rollback or local apply says what it runs
    const g = foldDesired(this.generations.get(e.feed) ?? null, e)
    if (g !== null) this.generations.set(e.feed, g)
    foldAgent(this.agentFleet, e)
    if (e.kind !== DRIFT_KIND) return
    const prev = this.drift.get(e.feed)
    if (prev === undefined || e.seq > prev.seq) this.drift.set(e.feed, { seq: e.seq, ts: e.ts, body: e.body as DriftBody })
  }

  generation (peer: string): Desired | undefined {
    return this.generations.get(peer)
  }

  agents (isMember: (peer: string) => boolean): FleetAgent[] {
    return fleetAgents(this.agentFleet, isMember)
  }

  driftAlerts (): DriftAlert[] {
    const out: DriftAlert[] = []
    for (const [peer, { seq, ts, body: b }] of this.drift) {
      if (b.state === 'cleared') continue
      out.push({
        peer, seq, ts, state: b.state, what: b.what,
        ...(b.activated !== undefined ? { activated: b.activated } : {}),
        ...(b.profile !== undefined ? { profile: b.profile } : {}),
        ...(b.desired !== undefined ? { desired: b.desired } : {}),
        ...(b.modifiedCount !== undefined ? { modifiedCount: b.modifiedCount } : {}),
        ...(b.outcome !== undefined ? { outcome: b.outcome } : {})
      })
    }
    return out.sort((x, y) => x.peer.localeCompare(y.peer))
  }
}

/** What the view reads of the deploy agent (absent where deploys are disabled). */
export interface DeployView {
  releases: (online: (peer: string) => boolean) => ReleaseStatus[]
  flags: () => Flag[]
  readonly state: RolloutState
  readonly view: RolloutMembershipView
}

function selectorOf (w: { hosts?: string[], tag?: string, count?: number, percent?: number }): string {
  if (w.hosts !== undefined) return `host:${w.hosts.join('+')}`
  if (w.tag !== undefined) return `tag:${w.tag}`
  if (w.percent !== undefined) return `${w.percent}%`
  return `${w.count ?? 0}`
}

/** The releases with their bodies' targets and waves, and the holds in effect. */
export function deployView (d: DeployView | undefined, online: (peer: string) => boolean): Pick<FleetSnapshot, 'releases' | 'flagged' | 'pins' | 'quarantined'> {
  if (d === undefined) return { releases: [], flagged: [], pins: [], quarantined: [] }
  const releases = d.releases(online).map((r): ReleaseView => {
    const body = effectiveRelease(d.state, d.view, r.id)?.body
    return {
      ...r,
      targets: (body?.targets ?? []).map((t) => ({ ...(t.tag !== undefined ? { tag: t.tag } : {}), ...(t.host !== undefined ? { host: t.host } : {}), path: t.path })),
      plan: (body?.waves ?? []).map((w) => ({ selector: selectorOf(w), healthy: w.gate.healthy, soakMs: w.gate.soakMs }))
    }
  })
  return { releases, flagged: d.flags(), ...holdsStatus(d.state, d.view) }
}
