// Pure verification of entries: bytes or an entry, plus what precedes it, to ok or a typed
// reason. No storage and no network here, so the store, sync, `audit verify` and a third-party
// checker of an export all apply the very same rules.
import { peerIdPublicKey } from '../../crypto/identity.js'
import { verifyEd25519 } from '../../crypto/sign.js'
import { DEFAULT_LIMITS, KindRegistry, ZERO_HASH, bytesEqual, decodeEntry, detachSignature, sha256, signingBytes, type CodecLimits } from './codec.js'
import { AuditError } from './errors.js'
import type { AuthorCheck, Entry } from './types.js'

export interface VerifyOptions {
  limits?: CodecLimits
  /** body validators per kind (default: none, so every body is only checked for canonical form) */
  kinds?: KindRegistry
  /** e.g. "the author is or was a member"; false → AUTHOR_REJECTED */
  authorCheck?: AuthorCheck
}

/** What an entry must link to: the feed's previous entry's seq and hash, or nothing for seq 0. */
export interface Link { seq: number, hash: Uint8Array }

export type VerifyResult = { ok: true } | { ok: false, error: AuditError }

/** The raw Ed25519 public key inside a feed id; UNKNOWN_FEED_KEY for anything else. */
export function feedPublicKey (feed: string): Uint8Array {
  try {
    return peerIdPublicKey(feed)
  } catch (err) {
    throw new AuditError('UNKNOWN_FEED_KEY', `feed ${feed.slice(0, 64)}: ${(err as Error).message}`)
  }
}

/** The body's kind schema and the author check (canonical form is the codec's job). */
export function checkContent (entry: Entry, opts: VerifyOptions = {}): void {
  opts.kinds?.validate(entry.kind, entry.body)
  if (opts.authorCheck !== undefined && !opts.authorCheck(entry)) {
    throw new AuditError('AUTHOR_REJECTED', `feed ${entry.feed} may not write ${entry.kind} entries`)
  }
}

/** `signed` is the entry's signing bytes; passing them avoids a second encode. */
export function checkSignature (entry: Entry, signed: Uint8Array): void {
  if (!verifyEd25519(feedPublicKey(entry.feed), signed, entry.sig)) {
    throw new AuditError('BAD_SIGNATURE', `feed ${entry.feed} seq ${entry.seq}: signature does not verify`)
  }
}

/** Seq continuity and the prev hash against the feed's previous entry (undefined: none yet). */
export function checkLink (entry: Entry, previous: Link | undefined): void {
  const expected = previous === undefined ? 0 : previous.seq + 1
  if (entry.seq !== expected) {
    throw new AuditError('SEQ_GAP', `feed ${entry.feed}: expected seq ${expected}, got ${entry.seq}`)
  }
  if (!bytesEqual(entry.prev, previous === undefined ? ZERO_HASH : previous.hash)) {
    throw new AuditError('BAD_PREV', `feed ${entry.feed} seq ${entry.seq}: prev is not the hash of seq ${expected - 1}`)
  }
}

function asResult (fn: () => void): VerifyResult {
  try {
    fn()
    return { ok: true }
  } catch (err) {
    if (err instanceof AuditError) return { ok: false, error: err }
    throw err
  }
}

/** Everything about one entry object: schema, size, content, signature, and link. */
export function verifyEntry (entry: Entry, previous: Link | undefined, opts: VerifyOptions = {}): VerifyResult {
  return asResult(() => {
    const signed = signingBytes(entry, opts.limits ?? DEFAULT_LIMITS)
    checkContent(entry, opts)
    checkSignature(entry, signed)
    checkLink(entry, previous)
  })
}

export type VerifiedBytes = { ok: true, entry: Entry, hash: Uint8Array } | { ok: false, error: AuditError }

/** Everything about one entry as received: strict decode first, then as verifyEntry (link optional). */
export function verifyEntryBytes (bytes: Uint8Array, previous: Link | undefined | null, opts: VerifyOptions = {}): VerifiedBytes {
  let entry: Entry | undefined
  const result = asResult(() => {
    entry = decodeEntry(bytes, opts.limits ?? DEFAULT_LIMITS)
    checkContent(entry, opts)
    checkSignature(entry, detachSignature(bytes, entry))
    // null: the caller links entries itself (e.g. the store, against its heads)
    if (previous !== null) checkLink(entry, previous)
  })
  return result.ok ? { ok: true, entry: entry as Entry, hash: sha256(bytes) } : result
}
