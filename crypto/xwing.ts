// The host's static X-Wing (ML-KEM-768 + X25519) key, used to seal room keys to a host.
// X-Wing's private key is a 32-byte seed from which both component keys expand, so the
// seed is the only secret the identity file has to keep.
import { randomBytes } from 'node:crypto'
import { ml_kem768_x25519 as xwing } from '@noble/post-quantum/hybrid.js'

export const XWING_SEED_BYTES = 32
export const XWING_PUBLIC_KEY_BYTES = 1216

export function generateXWingSeed (): Uint8Array {
  return new Uint8Array(randomBytes(XWING_SEED_BYTES))
}

export function xwingPublicKey (seed: Uint8Array): Uint8Array {
  if (seed.length !== XWING_SEED_BYTES) throw new RangeError(`X-Wing seed must be ${XWING_SEED_BYTES} bytes`)
  return xwing.keygen(seed).publicKey
}
