// What the deploy agent asks of the machine it runs on: bring a generation up (or back) and say
// how it went, finish an apply a crash interrupted, and keep probing health through a gate's
// soak. The daemon's executor is Nix (nix.ts); the simulator's applies in zero time.
import type { ApplyOutcome, Generation, HealthVerdict } from '../../nixos/index.js'

/** What this host is doing for which release: kept across a crash so the outcome is reported. */
export interface Intent { applyId: string, release: string, path: string, revert: boolean }

export interface Executor {
  /**
   * Runs the intent to its outcome. The intent survives a crash until the outcome is known,
   * so that recover() can report it.
   */
  run: (intent: Intent, sources: string[]) => Promise<ApplyOutcome>
  /** After a restart: the apply a crash interrupted, finished now, and the intent it was for. */
  recover: () => Promise<{ intent: Intent, outcome: ApplyOutcome } | null>
  current: () => Promise<Generation | null>
  /** The generation this host ran before `path`, the one a revert returns to. */
  generationBefore: (path: string) => Promise<Generation | null>
  /** Probes this host's health for `soakMs`, settling early on the first failure. */
  watchHealth: (soakMs: number, signal: AbortSignal) => Promise<HealthVerdict>
}
