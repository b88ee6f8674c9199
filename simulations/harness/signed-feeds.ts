// Real feeds for the simulations that count bytes or ingest entries: one Ed25519 key per host,
// derived from the run's seed (a run's feed ids, and so its byte counts, repeat), the peer id it
// makes, and entries signed with it exactly as AuditStore.append signs them.
import { generateKeyPairFromSeed, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createSigner, type Signer } from '../../crypto/sign.js'
import { attachSignature, sha256, signingBytes, ZERO_HASH } from '../../protocols/audit/codec.js'
import type { StoredEntry } from '../../protocols/audit/types.js'

export class SignedFeed {
  seq = 0
  prev: Uint8Array = ZERO_HASH

  constructor (
    readonly feed: string,
    /** the peer id's multihash bytes (gossipsub's `from`) */
    readonly peerIdBytes: Uint8Array,
    /** the public key's protobuf (the first half of gossipsub's message id) */
    readonly publicKeyProtobuf: Uint8Array,
    private readonly signer: Signer
  ) {}

  /** The next entry of this feed, signed, chained to the one before. */
  append (ts: number, kind: string, body: unknown): StoredEntry {
    const unsigned = { feed: this.feed, seq: this.seq, prev: this.prev, ts: Math.round(ts), kind, body }
    const u = signingBytes(unsigned)
    const sig = this.signer.sign(u)
    const bytes = attachSignature(u, unsigned, sig)
    const hash = sha256(bytes)
    this.seq++
    this.prev = hash
    return { entry: { ...unsigned, sig }, bytes, hash }
  }
}

export async function signedFeed (seed: number, index: number): Promise<SignedFeed> {
  const key = await generateKeyPairFromSeed('Ed25519', sha256(new TextEncoder().encode(`fleetmesh-sim/${seed}/${index}`)))
  const id = peerIdFromPrivateKey(key)
  return new SignedFeed(id.toString(), id.toMultihash().bytes, publicKeyToProtobuf(key.publicKey), createSigner(key))
}

export async function signedFeeds (seed: number, n: number): Promise<SignedFeed[]> {
  const out: SignedFeed[] = []
  for (let i = 0; i < n; i++) out.push(await signedFeed(seed, i))
  return out
}
