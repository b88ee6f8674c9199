// Typed errors of the audit chain. `code` is stable: the store, sync and CLI branch on it
// (and report it to peers), never on the message.

export type AuditErrorCode =
  /** bytes that are not a canonical entry, or an entry that breaks the envelope schema */
  | 'ENTRY_MALFORMED'
  /** the entry or its body exceeds the configured size limit */
  | 'ENTRY_TOO_LARGE'
  /** a body that is not deterministic-CBOR-able (float, undefined, non-string key, …) */
  | 'BODY_NOT_CANONICAL'
  /** a body that fails the validator registered for its kind */
  | 'BODY_INVALID'
  /** the signature does not verify under the key inside the feed's peer id */
  | 'BAD_SIGNATURE'
  /** `prev` is not the hash of the entry before it */
  | 'BAD_PREV'
  /** the entry does not continue its feed (a hole, or the first entry of a feed is missing) */
  | 'SEQ_GAP'
  /** the feed id is not an Ed25519 peer id, so no key can be taken from it */
  | 'UNKNOWN_FEED_KEY'
  /** the author check (membership) refused the author */
  | 'AUTHOR_REJECTED'
  /** two valid entries with the same feed and seq; also returned for entries of a flagged feed */
  | 'EQUIVOCATION'
  /** a stored record that no longer matches what was written (tampering or corruption) */
  | 'STORE_CORRUPT'
  /** a sync or gossip message that breaks its schema */
  | 'MESSAGE_MALFORMED'
  /** a sync or gossip message over its size limit */
  | 'MESSAGE_TOO_LARGE'
  /** a peer over its rate budget for a sync request or a heads announcement (protocols/budget.ts) */
  | 'OVER_BUDGET'
  /** an entry stamped further into the future than the receiver's clock skew bound; asked for again later */
  | 'CLOCK_AHEAD'
  /** an entry of a kind this build does not interpret, over the size cap of such entries */
  | 'UNKNOWN_KIND_TOO_LARGE'
  /** the remote peer answered a sync request with an error or not at all */
  | 'SYNC_FAILED'
  /** the store was closed */
  | 'STORE_CLOSED'
  /** append() on a store opened without the host's private key */
  | 'NO_SIGNING_KEY'
  /** a second body validator for a kind that already has one */
  | 'KIND_REGISTERED'
  /** a peer asked for something this host does not hold (e.g. the vector of a witness entry it pruned) */
  | 'NOT_FOUND'
  /** a head vector offered for a version 2 witness entry that does not hash to its signed root */
  | 'WITNESS_VECTOR_MISMATCH'
  /** a checkpoint this store cannot adopt: older than the one it holds, or at odds with entries it holds */
  | 'CHECKPOINT_REFUSED'
  /** an append that had to follow a given head of this host's feed, which moved on first */
  | 'HEAD_MOVED'

export class AuditError extends Error {
  override readonly name = 'AuditError'
  constructor (readonly code: AuditErrorCode, message: string) {
    super(message)
  }
}

export function isAuditError (err: unknown, code?: AuditErrorCode): err is AuditError {
  return err instanceof AuditError && (code === undefined || err.code === code)
}
