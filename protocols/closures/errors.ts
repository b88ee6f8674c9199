// Typed errors of peer closure fetch. `code` is stable: the deploy agent and the CLI branch on
// it (and peers send some of them on the wire), never on the message.

export type ClosuresErrorCode =
  /** a request or response header that breaks its schema, or bytes past the announced length */
  | 'MESSAGE_MALFORMED'
  /** a request or header over its size limit, or a closure larger than this host accepts */
  | 'MESSAGE_TOO_LARGE'
  | 'INVALID_STORE_PATH'
  /** the peer does not have the path valid in its store */
  | 'PATH_NOT_FOUND'
  /** the peer does not serve this host (not a member in its view of the mesh) */
  | 'PEER_REFUSED'
  /** the peer is already serving as many transfers as it allows */
  | 'PEER_BUSY'
  /** the peer has the path but could not export it */
  | 'PEER_FAILED'
  /** this host does not fetch from that peer (not a member in its view of the mesh) */
  | 'PEER_NOT_ALLOWED'
  /** the peer could not be reached or the stream broke before the header */
  | 'PEER_UNREACHABLE'
  /** the stream ended before the number of bytes the header announced */
  | 'STREAM_TRUNCATED'
  /** every peer failed; `attempts` says why for each */
  | 'FETCH_FAILED'
  | 'ABORTED'

/** The codes a serving peer may put in an error header; any other code is a malformed reply. */
export const WIRE_ERROR_CODES: ReadonlySet<string> = new Set<ClosuresErrorCode>([
  'MESSAGE_MALFORMED', 'MESSAGE_TOO_LARGE', 'INVALID_STORE_PATH', 'PATH_NOT_FOUND', 'PEER_REFUSED', 'PEER_BUSY', 'PEER_FAILED'
])

/** Why one peer could not deliver: a protocol failure, or the local store refusing what it sent. */
export interface FetchAttempt {
  peer: string
  error: ClosuresError | ClosureStoreError
}

export class ClosuresError extends Error {
  override readonly name = 'ClosuresError'
  readonly attempts: FetchAttempt[]

  constructor (readonly code: ClosuresErrorCode, message: string, options: { cause?: unknown, attempts?: FetchAttempt[] } = {}) {
    super(message, { cause: options.cause })
    this.attempts = options.attempts ?? []
  }
}

/**
 * The local store refused a peer's closure (it failed verification, or could not be imported).
 * `code` and message are the store's own, its error is the `cause`.
 */
export class ClosureStoreError extends Error {
  override readonly name = 'ClosureStoreError'

  constructor (readonly code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options)
  }
}
