// What the deploy agent asks of the machine it runs on: bring a generation up (or back) and say
// how it went, keep every outcome until the agent has written it into the log, and keep probing
// health through a gate's soak. The daemon's executor is Nix (nix.ts); the simulator's applies
// in zero time.
import type { ApplyHold, ApplyOutcome, Generation, HealthVerdict } from '../../nixos/index.js'

/**
 * One attempt of this host for a release, kept across a crash with its outcome. `applyId` is the
 * attempt (`[A-Za-z0-9._:-]{1,128}`, the log's `attempt`). With `revert`, `path` is the release's
 * path this host leaves; where it goes is the generation the executor recorded before that path
 * was applied, never one computed from the log or the profile's order.
 */
export interface Intent { applyId: string, release: string, path: string, revert: boolean }

/** `hold`: what the attempt waits for, as the journal keeps it (confirm-or-revert, a staged boot). */
export interface Unreported { intent: Intent, outcome: ApplyOutcome, hold?: ApplyHold | null }

export interface Executor {
  /** Runs the intent to its outcome. The outcome stays in the journal, unreported, until reported(). */
  run: (intent: Intent, sources: string[]) => Promise<ApplyOutcome>
  /**
   * Rolls the apply `intent.applyId` (which ended ok) back to the generation recorded before it,
   * because its soak failed; the outcome replaces the attempt's outcome, still unreported.
   */
  rollbackSoak: (intent: Intent, reason: string) => Promise<ApplyOutcome>
  /**
   * After a restart (and at any time): every attempt whose outcome is not yet reported, oldest
   * first; an apply a crash interrupted is finished (recovered) first.
   */
  unreported: () => Promise<Unreported[]>
  /** The attempt's terminal log entry is durably appended: the journal may forget it. */
  reported: (applyId: string) => Promise<void>
  current: () => Promise<Generation | null>
  /** Probes this host's health for `soakMs`, settling early on the first failure. */
  watchHealth: (soakMs: number, signal: AbortSignal) => Promise<HealthVerdict>
  /** Where the executor knows boots (the Nix one): confirm-or-revert and staged boots are journalled. */
  boots?: Boots
}

export interface Boots {
  /** Opens the confirm window of apply `applyId` (ended ok, unreported) in the journal, now, on this boot. */
  holdConfirm: (applyId: string, windowMs: number) => Promise<ApplyHold>
  /** Whether to run the reboot command for staged apply `applyId` now: true once per boot, journalled before it runs. */
  requestReboot: (applyId: string) => Promise<boolean>
  bootId: () => Promise<string>
  /** the running system's store path, when the host has one */
  running: () => Promise<string | null>
}
