// The identifier grammar that every layer shares: one rule per kind of id, so that what a
// release may target is exactly what an invite can grant, and what the audit log accepts as a
// feed is what sync, witnesses and rooms accept. It lives in the lowest layer so that nixos/
// can use the store-path rule without knowing anything of the mesh.

/** base58btc, the alphabet of libp2p peer ids: no id ever holds a separator of a store key. */
export const BASE58_RE = /^[1-9A-HJ-NP-Za-km-z]+$/

/** A host's peer id as this mesh issues them: Ed25519, identity-multihash, base58btc. */
export const PEER_ID_RE = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/

/** A feed id on the wire: any base58btc peer id string; whether it carries a usable key is checked when its signature is. */
export const FEED_RE = /^[1-9A-HJ-NP-Za-km-z]{1,128}$/
export const MAX_FEED_CHARS = 128

/** A host tag (`web`, `db`, `eu-west.1`): lower case, as invites grant them and releases target them. */
export const TAG_RE = /^[a-z0-9][a-z0-9._:-]{0,63}$/

/**
 * A Nix store path: /nix/store/, 32 characters of Nix's base32 (no e, o, t, u), a dash and a
 * name of Nix's allowed characters that does not start with a dot, 211 characters at most.
 */
export const STORE_PATH_RE = /^\/nix\/store\/[0-9abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+\-_?=][A-Za-z0-9+\-._?=]{0,210}$/

export function isPeerId (v: unknown): v is string {
  return typeof v === 'string' && PEER_ID_RE.test(v)
}

export function isFeedId (v: unknown): v is string {
  return typeof v === 'string' && FEED_RE.test(v)
}

export function isTag (v: unknown): v is string {
  return typeof v === 'string' && TAG_RE.test(v)
}

export function isStorePath (v: unknown): v is string {
  return typeof v === 'string' && STORE_PATH_RE.test(v)
}
