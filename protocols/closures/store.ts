// What the closure protocol needs from a local store: the protocol moves bytes and metadata
// between peers, the store produces them and verifies what arrives. The node plugs a real store
// in; the protocol knows nothing of how it runs.

/** One store path's metadata, as the header carries it. */
export interface PathInfo {
  path: string
  /** SRI form, e.g. `sha256-…=`. */
  narHash: string
  narSize: number
  references: string[]
  signatures: string[]
}

export interface ClosureStore {
  /** The metadata of every path in the closure of `path`, or null when `path` is not in this store. */
  info: (path: string) => Promise<PathInfo[] | null>
  /** The closure's export stream: what follows the header on the wire. */
  export: (path: string) => AsyncIterable<Uint8Array>
  /**
   * Stages the export in `source`, verifies every path against `expected` and only then adds the
   * closure of `path` to this store; returns the imported paths' metadata. A refusal is an error
   * with a string `code`; a failure of `source` itself is thrown as is or as that error's `cause`.
   */
  import: (source: AsyncIterable<Uint8Array>, path: string, expected: PathInfo[], opts: { maxBytes: number }) => Promise<PathInfo[]>
}
