// Types shared across the deploy engine's modules and exported to the node.
import type { NixosErrorCode } from './errors.js'
import type { CheckFailure } from './health.js'

/** One generation of a Nix profile: its number and the store path it points at. */
export interface Generation {
  number: number
  path: string
}

/**
 * How an apply ended. `transient` marks a failure where nothing was activated (a fetch that
 * failed, an apply interrupted before activation, another apply holding the engine): the running
 * system is the one from before, so trying again later is safe and the failure says nothing
 * about the generation.
 */
export type ApplyOutcome =
  | { status: 'ok', id: string, generation: Generation }
  | { status: 'rolled-back', id: string, generation: Generation, reason: string, failedCheck: CheckFailure | null }
  | { status: 'failed', id: string, code: NixosErrorCode, reason: string, transient?: boolean }
  /** made the next boot's generation (`switch-to-configuration boot`): it changes what only a reboot brings up; not yet an outcome */
  | { status: 'staged', id: string, generation: Generation, changes: string[] }

/** What the engine needs from a system: the Nix profile backend implements it. */
export interface Backend {
  /** Makes `path` valid in the store, fetching it from the first source that has it. */
  fetch: (path: string, sources: string[]) => Promise<void>
  /** Points the profile at `path` as a new generation (no activation). */
  switch: (path: string) => Promise<Generation>
  /**
   * Runs the activation command of the profile's current generation for apply `id`, detached
   * from this process so that an activation which restarts this process still completes. Called
   * again with the same id (after a restart) it waits for that activation's result instead of
   * starting another one. `boot` makes it the next boot's generation without activating it now.
   */
  activate: (id: string, mode?: 'switch' | 'boot') => Promise<void>
  current: () => Promise<Generation | null>
  list: () => Promise<Generation[]>
  /** Points the profile back at exactly generation `to` (no activation). */
  rollback: (to: Generation) => Promise<Generation>
  /** Deletes all but the last `keep` generations (never the current one); returns those deleted. */
  gc: (keep?: number) => Promise<number[]>
  /** Human-readable closure difference between the current generation and `path`. */
  preview: (path: string) => Promise<string>
}
