// One commitment to a set of heads (or of entry references, which have the same shape): SHA-256
// of the canonical CBOR list of [feed, seq, hash] sorted by feed then seq. Witnesses commit to
// the heads a host holds with it, checkpoints to the heads they cover and the entries they keep,
// so a full list fetched later from anyone is checked against 32 signed bytes.
import { encodeCanonical, sha256 } from './codec.js'
import type { Head } from './types.js'

export function sortHeads (heads: readonly Head[]): Head[] {
  return [...heads].sort((a, b) => a.feed < b.feed ? -1 : a.feed > b.feed ? 1 : a.seq - b.seq)
}

export function headsRoot (heads: readonly Head[]): Uint8Array {
  return sha256(encodeCanonical(sortHeads(heads).map(h => [h.feed, h.seq, h.hash])))
}
