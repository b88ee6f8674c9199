// Public surface of the hybrid post-quantum Noise encrypter
// (Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256, libp2p/specs PR 727).
import { HybridNoise } from './encrypter.js'
import type { NoiseExtensions } from './codec.js'
import type { HybridNoiseComponents, HybridNoiseInit } from './encrypter.js'
import type { ConnectionEncrypter } from '@libp2p/interface'

export { HYBRID_NOISE_PROTOCOL } from './encrypter.js'
export { defaultCrypto, nativeCrypto, nobleCrypto } from './crypto.js'
export { PROTOCOL_NAME as HYBRID_NOISE_PROTOCOL_NAME } from './protocol.js'
export * from './errors.js'
export type { HybridCrypto, AeadKey, Bytes, DhKeyPair, DhPublicKey, KemKeyPair, KemEncapsulation } from './crypto.js'
export type { HybridNoiseComponents, HybridNoiseInit, NoiseExtensions }

/** libp2p `connectionEncrypters` entry: `connectionEncrypters: [hybridNoise()]`. */
export function hybridNoise (init: HybridNoiseInit = {}): (components: HybridNoiseComponents) => ConnectionEncrypter<NoiseExtensions> {
  return (components) => new HybridNoise(components, init)
}
