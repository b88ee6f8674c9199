// The rollout data model: release and outcome bodies as they sit in the audit log, the
// membership facts the decisions need, and the decisions themselves. Bodies are typed views of
// validated log data: unknown optional fields are kept on the object (planned features such as
// per-tag budgets and confirm windows ride along untouched until code that understands them
// lands). The records the fold files them into are here too, so the gate evaluator can
// read them without knowing the fold.
import type { Entry } from '../audit/types.js'

/** An author's standing as of one of its entries (DESIGN §8); protocols/membership's `Standing`. */
export interface EntryStanding {
  /** founder or admitted, and not cut off by a counted revoke at that seq of its feed */
  member: boolean
  /** a member whose role at the entry's ts is admin */
  admin: boolean
}

/**
 * A release's `basis`: feed → seq, the heads of every feed holding membership entries (genesis,
 * admit, grant, revoke) in the publisher's store when it published.
 */
export type Basis = Record<string, number>

/** The member set a plan is resolved against: frozen (a release's basis) or live. */
export interface PlanMembership {
  members: () => Iterable<string>
  tagsOf: (peer: string) => string[]
}

/**
 * What the decisions need to know about the mesh. The node adapter is node/deploy/membership.ts
 * (over node/membership.ts); tests use test/rollout/helpers.ts's StaticMembership.
 */
export interface MembershipView extends PlanMembership {
  /** live: a member now (a revoked host decides nothing) */
  isMember: (peer: string) => boolean
  /** live: an admin now (only for operator-facing checks; entries are judged by standingAt) */
  isAdmin: (peer: string) => boolean
  /**
   * The author's standing as of its entry (feed, seq, ts): protocols/membership's
   * `standingAt(state, feed, seq, ts)`, i.e. node/membership.ts's `Membership.standingAt`. A
   * release or release-control counts only if `.admin`; an `overdue` only if `.member` (and its
   * author is in the release's plan) or `.admin`. Before a mesh is adopted: both false.
   */
  standingAt: (feed: string, seq: number, ts: number) => EntryStanding
  /**
   * The member set folded from exactly the membership entries at or below `basis` (entries of
   * feeds not named in it do not count): protocols/membership's `viewAsOf(state, basis)`.
   * undefined while this host does not yet hold every feed of the basis up to its seq (the node
   * adapter checks its store's feed heads): the release then waits, "catching up to its basis".
   * The result must not change once defined: plans resolved against it are cached for good.
   */
  asOf: (basis: Basis) => PlanMembership | undefined
  /**
   * Changes whenever members, roles, tags or standings may have changed (any membership entry
   * folded). Live plans (releases without a basis) are cached per (release, revision), and the
   * authority judgements per revision; without it every call recomputes, which is correct but
   * O(members) per decision.
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
  /**
   * How long each host of the wave stays healthy after its apply-ok, measured by that host on
   * its own monotonic clock and attested by its `soaked` entry; 0: apply-ok alone counts.
   */
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
  /**
   * Once a host has seen this wave open for this long (its local timer; never less than 5 s,
   * overdue.ts MIN_SILENT_WAIT_MS), the wave's hosts that wrote nothing for the release are
   * declared silent by an `overdue` entry and leave the gate's denominator for good. Each wave
   * waits on its own, only after it opened. Without it, silent hosts are waited for forever.
   */
  waitOfflineMs?: number
  /** an ordering edge (edges.ts): this wave's hosts without the tag wait until every plan host with it is healthy */
  after?: { tag: string }
  [planned: string]: unknown
}

/** Exactly one of the two; `maxInFlightPercent` is of the release's plan hosts, rounded up, at least 1. */
export interface Budget { maxInFlight?: number, maxInFlightPercent?: number, [planned: string]: unknown }

/** Default of `ReleaseBody.applyDeadlineMs`: generous, a slow closure fetch must not fail a host. */
export const DEFAULT_APPLY_DEADLINE_MS = 30 * 60_000

export interface ReleaseBody {
  id: string
  /** one above every admin release the publisher had seen (non-admin releases do not count) */
  number: number
  targets: Target[]
  waves: Wave[]
  maxFailures: number
  autoRevert?: boolean
  /**
   * The membership the plan is resolved against, then frozen: later admits, revokes and tag
   * changes do not move hosts between waves or out of the release. Without it (older entries)
   * the plan follows the live membership.
   */
  basis?: Basis
  /**
   * A host whose apply-start has no outcome this long after a host saw it (local timer) is
   * declared overdue ('deadline') and counts as failed. Default DEFAULT_APPLY_DEADLINE_MS.
   */
  applyDeadlineMs?: number
  /** wave 0 does not open before this time (ms since the epoch; an operator's schedule, read on each host's clock) */
  notBefore?: number
  /** planned: an absolute expiry (not interpreted; freshForMs is the freshness window) */
  expiresAt?: number
  /**
   * Freshness window (fresh.ts): a host that first holds the release more than this long after
   * its signed ts (read on the host's own clock, once) refuses it and attests `stale`.
   */
  freshForMs?: number
  /** this release waits until the release with this id is complete (edges.ts) */
  after?: string
  /** disruption budget (budget.ts): hosts of this release in flight at once; other keys are carried */
  budget?: Budget
  /**
   * A store path that fails after activation (apply-failed and rollback for one attempt) on this
   * many of the release's hosts is quarantined fleet-wide (holds.ts). Default 1.
   */
  quarantineAfter?: number
  [planned: string]: unknown
}

/**
 * `pin`, admin-signed: `host` holds its generation; releases whose path for it is not `path`
 * skip it and count it pinned. With `expiresMs`, the pinned host lifts it itself by an `unpin`
 * once that long has run on its own monotonic clock since it first saw the pin (DESIGN §8).
 */
export interface PinBody { host: string, path: string, reason: string, expiresMs?: number, [planned: string]: unknown }
/**
 * `unpin`: an admin's lifts the earlier pins of `host` in its own feed and the pins it names
 * ("feed:seq"); the pinned host's own, with `expired`, lifts the named pins that had an expiry.
 */
export interface UnpinBody { host: string, lifts?: string[], expired?: boolean, [planned: string]: unknown }
/** `quarantine`, admin-signed: no host applies `path` in any release until it is cleared. */
export interface QuarantineBody { path: string, reason: string, [planned: string]: unknown }
/**
 * `quarantine-clear`, admin-signed: lifts the earlier quarantines of `path` in its own feed, and
 * the quarantines and failures it names ("feed:seq" of a quarantine or of a host's rollback entry).
 */
export interface QuarantineClearBody { path: string, clears?: string[], [planned: string]: unknown }

/**
 * `budget`, admin-signed (tag-budget.ts): at most `max` hosts matching `selector` ("tag:T") in
 * flight at once across every release. Without `max` it clears. It ends the earlier budget entries
 * of its own feed for the selector and the ones it names ("feed:seq").
 */
export interface BudgetBody { selector: string, max?: number, lifts?: string[], [planned: string]: unknown }

/** An entry a decision rests on (`release why`): its place in the log and its kind. */
export interface EntryRef { feed: string, seq: number, kind: string }

/** A pin, quarantine, verdict or floor as filed by the fold: the entry's place and its body. */
export interface HoldRecord<B> { feed: string, seq: number, ts: number, body: B }

/**
 * `release-seen`, written by a host about itself, once per release with a freshness window,
 * when it first decides on it: whether it held the release only after the window (fresh.ts).
 */
export interface ReleaseSeenBody { release: string, stale: boolean, [planned: string]: unknown }
/** `release-floor`, admin-signed: releases numbered below `number` are refused by every host. */
export interface ReleaseFloorBody { number: number, reason: string, [planned: string]: unknown }

export type ControlAction = 'pause' | 'resume' | 'abort'

export interface ReleaseControlBody {
  release: string
  action: ControlAction
  /**
   * resume only: the pauses it lifts, as "feed:seq" of their release-control entries. A resume
   * always lifts the earlier (lower seq) pauses of its own feed; another admin's pause only when
   * named here (the CLI names every pause in effect that it sees).
   */
  resumes?: string[]
  /**
   * resume only: failed hosts whose failures the admin accepts: they no longer count against the
   * failure budget and leave their wave's gate, which lifts a halt they caused. A halt is sticky
   * until such a resume.
   */
  accept?: string[]
  [planned: string]: unknown
}

/** `attempt`: the executor's apply id; optional because entries written before it lack it. */
export interface ApplyStartBody { release: string, path: string, wave: number, attempt?: string, [planned: string]: unknown }
/** `healthyAt` is information only (the host's claim); gates never compare it with a clock. */
export interface ApplyOkBody { release: string, path: string, healthyAt: number, attempt?: string, [planned: string]: unknown }
export interface ApplyFailedBody { release: string, path: string, reason: string, check?: string, attempt?: string, [planned: string]: unknown }
export interface RollbackBody { release: string, from: string, to: string, ok: boolean, attempt?: string, [planned: string]: unknown }
export interface HealthBody { release?: string, path: string, ok: boolean, check?: string, output?: string, [planned: string]: unknown }
/** Written by the host itself after it stayed healthy `soakMs` (its own monotonic clock) since the apply-ok of `attempt`. */
export interface SoakedBody { release: string, path: string, attempt: string, soakMs: number, [planned: string]: unknown }

export type OverdueWhy = 'silent' | 'deadline'

/**
 * The logged consequence of a local timeout (DESIGN §8). 'silent': these hosts of `wave` wrote
 * nothing for the release within the wave's waitOfflineMs after the writer saw the wave open;
 * they leave that wave's gate denominator. 'deadline': these hosts' apply-start had no outcome
 * within the release's applyDeadlineMs after the writer saw it; they count as failed for the
 * gate and the budget. Counted when its author, as of the entry, is an admin, or a member in the
 * release's plan.
 */
export interface OverdueBody { release: string, wave: number, hosts: string[], why: OverdueWhy, [planned: string]: unknown }

/** Kinds a host writes about itself; the entry's feed is the host the outcome is about. */
export type OutcomeKind = 'apply-start' | 'apply-ok' | 'apply-failed' | 'rollback' | 'soaked'

/**
 * A local timeout a decision asks for. The agent starts a monotonic timer for `key` when a
 * decision first names it, keeps it across decisions that name it, drops it when one does not
 * (or on restart), and once `ms` has passed passes `key` in `DecideOptions.expired`.
 */
export interface Timer { key: string, ms: number }

export type Decision =
  | { action: 'apply', release: string, number: number, path: string, sources: string[], wave: number, trace: string[] }
  /** `until`: a time on this host's own clock (the release's notBefore) at which the answer may change with no new entry */
  | { action: 'wait', release: string, wave: number, reason: string, until?: number, timer?: Timer, trace: string[] }
  | { action: 'none', reason: string, release?: string, timer?: Timer, trace: string[] }
  /** `path` is the generation to leave: the engine rolls back to the one it recorded before applying it */
  | { action: 'revert', release: string, path: string, trace: string[] }
  /** append this entry (a local timer ran out), then decide again */
  | { action: 'attest', release: string, kind: 'overdue', body: OverdueBody, trace: string[] }
  /** append this host's own unpin of a pin whose expiry ran out on its timer, then decide again */
  | { action: 'attest', release?: undefined, kind: 'unpin', body: UnpinBody, trace: string[] }
  /** append this host's freshness verdict on a release it decides on for the first time, then decide again */
  | { action: 'attest', release: string, kind: 'release-seen', body: ReleaseSeenBody, trace: string[] }

/** What holds (or opens) a decision, as `release why` names it (why.ts). */
export type CauseKind = 'membership' | 'pin' | 'abort' | 'edge' | 'fresh' | 'basis' | 'revert' | 'seal' | 'superseded' | 'halt' | 'outcome' | 'pause' | 'schedule' | 'gate' | 'quarantine' | 'budget' | 'tag-budget' | 'open' | 'timer' | 'idle'

/** One step of a decision's reasoning: what it is, what it says, and the entries it rests on. */
export interface Cause { what: CauseKind, text: string, entries: EntryRef[] }

export interface DecideOptions {
  /** fill `trace` (default true); a simulator of 10,000 hosts turns it off to save the strings */
  trace?: boolean
  /** told every step of the reasoning, with the entries it rests on (why.ts); the same steps `trace` has */
  cite?: (c: Cause) => void
  /** keys of timers (Decision.timer) whose local timer has run out */
  expired?: ReadonlySet<string>
}

export interface ReleaseCandidate { feed: string, seq: number, ts: number, body: ReleaseBody }
export interface ControlRecord { feed: string, seq: number, ts: number, action: ControlAction, body: ReleaseControlBody }
export interface OverdueRecord { feed: string, seq: number, ts: number, body: OverdueBody }

/** A host's first outcome entry for a release, in fold order ("moved on" is computed from these). */
export interface FirstOutcome { host: string, release: string }

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
  /** host → its highest-seq apply-start / apply-ok / apply-failed / rollback / soaked entry for this release */
  latest: Map<string, Entry>
  /** hosts that ever wrote apply-failed or rollback for this release: the failure budget counts them */
  failed: Set<string>
  /** host → its highest-seq health entry naming this release */
  health: Map<string, Entry>
  /** every well-formed overdue entry about this release (authority judged by the gates) */
  overdue: OverdueRecord[]
  /**
   * Changes not yet read by the state's gate evaluator (gates.ts is the single reader and
   * drains it), so a decision costs O(new entries), not O(hosts).
   */
  pending: OutcomeChange[]
}
