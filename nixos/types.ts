// Types shared across the deploy engine's modules and exported to the node.

/** One generation of a Nix profile: its number and the store path it points at. */
export interface Generation {
  number: number
  path: string
}

/** What the engine needs from a system: the Nix profile backend implements it. */
export interface Backend {
  /** Makes `path` valid in the store, fetching it from the first source that has it. */
  fetch: (path: string, sources: string[]) => Promise<void>
  /** Points the profile at `path` as a new generation (no activation). */
  switch: (path: string) => Promise<Generation>
  /** Runs the activation command of the profile's current generation. */
  activate: () => Promise<void>
  current: () => Promise<Generation | null>
  list: () => Promise<Generation[]>
  /** Points the profile back at exactly generation `to` (no activation). */
  rollback: (to: Generation) => Promise<Generation>
  /** Deletes all but the last `keep` generations (never the current one); returns those deleted. */
  gc: (keep?: number) => Promise<number[]>
  /** Human-readable closure difference between the current generation and `path`. */
  preview: (path: string) => Promise<string>
}
