// The rollout data model: release and outcome bodies as they sit in the audit log, the
// membership facts the decisions need, and the decisions themselves. Bodies are typed views of
// validated log data: unknown optional fields are kept on the object (planned features such as
// disruption budgets, pins and confirm windows ride along untouched until code that understands
// them lands). The records the fold files them into are here too, so the gate evaluator can
// read them without knowing the fold.
import type { Entry } from '../audit/types.js'

/** What the decisions need to know about the mesh; protocols/membership/view.ts provides it. */
export interface MembershipView {
  isAdmin: (peer: string) => boolean
  isMember: (peer: string) => boolean
  tagsOf: (peer: string) => string[]
  members: () => string[]
  /**
   * Changes whenever members, roles or tags change. Plans are cached per (release, revision);
   * without it every call recomputes the plan, which is correct but O(members) per decision.
   */
  readonly revision?: number
}

export interface Target {
  tag?: string
  host?: string
  /** /nix/store/<32 nix-base32 chars>-name */
  path: string
  /** substituter URLs; the word 'peers' means fetch the closure from mesh peers */
  sources: string[]
  [planned: string]: unknown
}

export interface Gate {
  /** minimum percentage (0..100) of the wave's hosts that must be healthy and soaked */
  healthy: number
  /** how long after `healthyAt` a host must stay healthy before it counts */
  soakMs: number
  [planned: string]: unknown
}

export interface Wave {
  hosts?: string[]
  tag?: string
  count?: number
  /** cumulative: the wave ends when ceil(percent % × targets) hosts are assigned in total */
  percent?: number
  gate: Gate
  /** after the wave has been open this long, hosts that wrote nothing for the release leave its gate's denominator */
  waitOfflineMs?: number
  [planned: string]: unknown
}

export interface ReleaseBody {
  id: string
  number: number
  targets: Target[]
  waves: Wave[]
  maxFailures: number
  autoRevert?: boolean
  /** wave 0 does not open before this time (ms since the epoch) */
  notBefore?: number
  /** planned: freshness window */
  expiresAt?: number
  /** planned: disruption budget; accepted with any keys and not interpreted yet */
  budget?: Record<string, unknown>
  [planned: string]: unknown
}

export type ControlAction = 'pause' | 'resume' | 'abort'

export interface ReleaseControlBody { release: string, action: ControlAction, [planned: string]: unknown }
export interface ApplyStartBody { release: string, path: string, wave: number, [planned: string]: unknown }
export interface ApplyOkBody { release: string, path: string, healthyAt: number, [planned: string]: unknown }
export interface ApplyFailedBody { release: string, path: string, reason: string, check?: string, [planned: string]: unknown }
export interface RollbackBody { release: string, from: string, to: string, ok: boolean, [planned: string]: unknown }
export interface HealthBody { release?: string, path: string, ok: boolean, check?: string, output?: string, [planned: string]: unknown }

/** Kinds a host writes about itself; the entry's feed is the host the outcome is about. */
export type OutcomeKind = 'apply-start' | 'apply-ok' | 'apply-failed' | 'rollback'

export type Decision =
  | { action: 'apply', release: string, number: number, path: string, sources: string[], wave: number, trace: string[] }
  /** `until`: the time at which the answer may change with no new entry (a soak ending), if any */
  | { action: 'wait', release: string, wave: number, reason: string, until?: number, trace: string[] }
  | { action: 'none', reason: string, release?: string, trace: string[] }
  /** `path` is the generation to leave: the engine rolls back to the one before it */
  | { action: 'revert', release: string, path: string, trace: string[] }

export interface DecideOptions {
  /** fill `trace` (default true); a simulator of 10,000 hosts turns it off to save the strings */
  trace?: boolean
}

export interface ReleaseCandidate { feed: string, seq: number, ts: number, body: ReleaseBody }
export interface ControlRecord { feed: string, seq: number, ts: number, action: ControlAction }

/** A rollout entry the fold refused: its body broke the schema. */
export interface Flag { feed: string, seq: number, kind: string, reason: string }

/** A host whose record for a release changed, with what it held before (for incremental readers). */
export interface OutcomeChange {
  host: string
  before: Entry | undefined
  after: Entry | undefined
  beforeHealth: Entry | undefined
  afterHealth: Entry | undefined
  newlyFailed: boolean
}

export interface ReleaseOutcomes {
  /** host → its highest-seq apply-start / apply-ok / apply-failed / rollback entry for this release */
  latest: Map<string, Entry>
  /** hosts that ever wrote apply-failed or rollback for this release: the failure budget counts them */
  failed: Set<string>
  /** host → its highest-seq health entry naming this release */
  health: Map<string, Entry>
  /**
   * Changes not yet read by the state's gate evaluator (gates.ts is the single reader and
   * drains it), so a decision costs O(new entries), not O(hosts).
   */
  pending: OutcomeChange[]
}
