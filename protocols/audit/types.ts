// The audit chain's data model. Every member writes one append-only feed of signed entries;
// membership, releases, apply results and rooms are all entries, so these shapes are shared by
// every folder that reads or writes the log.

export interface Entry {
  /** author's libp2p peer id string (Ed25519, base58btc "12D3Koo…"): the public key is inside it */
  feed: string
  /** 0-based, contiguous per feed */
  seq: number
  /** 32 bytes: SHA-256 of the previous entry's canonical bytes; 32 zero bytes for seq 0 */
  prev: Uint8Array
  /** integer milliseconds since the epoch */
  ts: number
  /** e.g. 'genesis', 'admit', 'revoke', 'release', 'witness'; unknown kinds are kept, not interpreted */
  kind: string
  /** deterministic-CBOR-able: string-keyed maps, strings, safe integers, bytes, arrays, booleans, null */
  body: unknown
  /** 64-byte Ed25519 signature by the feed's key over the canonical bytes of {feed,seq,prev,ts,kind,body} */
  sig: Uint8Array
}

/** The newest entry a store holds of one feed: `hash` is entryHash() of the entry at `seq`. */
export interface Head { feed: string, seq: number, hash: Uint8Array }

/** An entry as the store holds it: the canonical bytes beside the decoded form, and its hash. */
export interface StoredEntry {
  entry: Entry
  bytes: Uint8Array
  hash: Uint8Array
}

/** Two valid, different entries signed by the same feed at the same seq: proof the author forked. */
export interface EquivocationProof {
  feed: string
  seq: number
  /** canonical bytes of the entry stored first */
  a: Uint8Array
  /** canonical bytes of the conflicting entry */
  b: Uint8Array
  /** when this store detected it (ms since epoch) */
  detectedAt: number
}

/** Decides whether the author of an entry may write at all (e.g. "is or was a member"). */
export type AuthorCheck = (entry: Entry) => boolean

/** Validates the body of one kind; throws (any Error) or returns false when it is not acceptable. */
export type BodyValidator = (body: unknown) => boolean

/** Where the sync helpers report what they did (pino's shape; optional everywhere). */
export interface SyncLogger {
  debug (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}
