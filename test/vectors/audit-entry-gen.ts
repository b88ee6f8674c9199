// Generates test/vectors/audit-entry.json: fixed audit entries signed by a fixed key, with their
// signing bytes, canonical bytes, signature and hash, for other implementations to check
// against. Run once (`node --import tsx test/vectors/audit-entry-gen.ts`); the file is checked
// in and test/audit/vectors.test.ts verifies this code still produces exactly it.
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createSigner } from '../../crypto/sign.js'
import { attachSignature, entryHash, signingBytes, ZERO_HASH } from '../../protocols/audit/codec.js'

export const VECTOR_SEED_HEX = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'

/** JSON cannot hold bytes: {"$bytes": "<hex>"} stands for a byte string in vector bodies. */
export function fromJson (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    if (Object.keys(o).length === 1 && typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'hex'))
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromJson(x)]))
  }
  return v
}

export const VECTOR_INPUTS = [
  { ts: 1767225600000, kind: 'genesis', body: { mesh: 'fleetmesh-vectors', founder: true } },
  { ts: 1767225600001, kind: 'status', body: { n: 23, big: 9007199254740991, neg: -24, s: 'héllo ✓', list: [1, [2, null], false], raw: { $bytes: '00ff10' }, z: {}, a: '' } },
  { ts: 1767225600002, kind: 'witness', body: { heads: [['12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA', 7, { $bytes: '11'.repeat(32) }]] } }
]

export async function buildVectors (): Promise<unknown> {
  const key = await generateKeyPairFromSeed('Ed25519', Buffer.from(VECTOR_SEED_HEX, 'hex'))
  const signer = createSigner(key)
  const feed = peerIdFromPrivateKey(key).toString()
  let prev = ZERO_HASH
  const entries = VECTOR_INPUTS.map((input, seq) => {
    const unsigned = { feed, seq, prev, ts: input.ts, kind: input.kind, body: fromJson(input.body) }
    const signed = signingBytes(unsigned)
    const sig = signer.sign(signed)
    const canonical = attachSignature(signed, unsigned, sig)
    const hash = entryHash(canonical)
    const out = {
      input: { seq, prev: Buffer.from(prev).toString('hex'), ...input },
      signing_bytes: Buffer.from(signed).toString('hex'),
      sig: Buffer.from(sig).toString('hex'),
      canonical: Buffer.from(canonical).toString('hex'),
      hash: Buffer.from(hash).toString('hex')
    }
    prev = hash
    return out
  })
  return {
    description: 'fleetmesh audit entries: canonical = RFC 8949 core deterministic CBOR of {body,feed,kind,prev,seq,sig,ts}; signing_bytes = same map without sig; sig = Ed25519(seed, signing_bytes); hash = SHA-256(canonical). Bodies use {"$bytes": hex} for byte strings.',
    key_seed: VECTOR_SEED_HEX,
    public_key: Buffer.from(key.publicKey.raw).toString('hex'),
    feed,
    entries
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = fileURLToPath(new URL('./audit-entry.json', import.meta.url))
  writeFileSync(path, JSON.stringify(await buildVectors(), null, 2) + '\n')
  console.log(`wrote ${path}`)
}
