// The primitives of Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256 behind one interface, with a
// node:crypto implementation (fast: native X25519, ML-KEM-768 and ChaCha20-Poly1305, keys kept
// as KeyObjects so no DH re-imports DER) and a @noble one (portable, and able to take the
// seeds that published test vectors need).
import nodeCrypto from 'node:crypto'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { x25519 } from '@noble/curves/ed25519.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { Uint8ArrayList } from 'uint8arraylist'
import { InvalidPublicKeyError, MalformedMessageError } from './errors.js'
import type { KeyObject } from 'node:crypto'

export const DH_LEN = 32
export const KEM_PUBLIC_KEY_LEN = 1184
export const KEM_CIPHERTEXT_LEN = 1088
export const KEM_SEED_LEN = 64
export const TAG_LEN = 16
export const KEY_LEN = 32
export const NONCE_LEN = 12

/** A local X25519 key pair; the private half stays inside the implementation that made it. */
export interface DhKeyPair { readonly publicKey: Uint8Array }
/** A remote X25519 public key, imported once and used for every DH it takes part in. */
export interface DhPublicKey { readonly bytes: Uint8Array }
/** A local ML-KEM-768 key pair; the decapsulation key stays inside the implementation. */
export interface KemKeyPair { readonly publicKey: Uint8Array }
export interface KemEncapsulation { readonly ciphertext: Uint8Array, readonly sharedSecret: Uint8Array }
/** A ChaCha20-Poly1305 key, imported once per cipher state rather than once per message. */
export interface AeadKey { readonly aead: true }
export type Bytes = Uint8Array | Uint8ArrayList

export interface HybridCrypto {
  readonly name: string
  generateDhKeyPair(): DhKeyPair
  dhKeyPairFromPrivate(privateKey: Uint8Array): DhKeyPair
  importDhPublicKey(bytes: Uint8Array): DhPublicKey
  /** X25519; throws InvalidPublicKeyError when the result is all zero (low-order point). */
  dh(local: DhKeyPair, remote: DhPublicKey): Uint8Array
  generateKemKeyPair(): KemKeyPair
  /** ML-KEM.KeyGen_internal from the 64-byte seed d || z. */
  kemKeyPairFromSeed(seed: Uint8Array): KemKeyPair
  /** Throws InvalidPublicKeyError when the encapsulation key fails the FIPS 203 checks. */
  kemEncapsulate(remotePublicKey: Uint8Array): KemEncapsulation
  kemDecapsulate(local: KemKeyPair, ciphertext: Uint8Array): Uint8Array
  sha256(...parts: Uint8Array[]): Uint8Array
  /** Noise HKDF(ck, ikm) with two outputs (= RFC 5869 with salt ck and empty info). */
  hkdf(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array]
  /** Copies `key`: the caller may wipe its bytes once this returns. */
  importAeadKey(key: Uint8Array): AeadKey
  /**
   * Wipes a key pair's private half once the handshake that used it is over. KeyObjects of
   * node:crypto live in OpenSSL, which cleanses them when they are freed; @noble's are plain
   * bytes in the JS heap and are zeroed here.
   */
  destroyKeyPair(pair: DhKeyPair | KemKeyPair): void
  /** ChaCha20-Poly1305 seal; returns ciphertext || tag, possibly as several chunks. */
  seal(key: AeadKey, nonce: Uint8Array, ad: Uint8Array, plaintext: Bytes): Bytes
  /** ChaCha20-Poly1305 open; throws (any error) when the tag does not verify, releasing nothing. */
  open(key: AeadKey, nonce: Uint8Array, ad: Uint8Array, ciphertext: Bytes): Bytes
}

function own<T> (value: unknown, type: abstract new (...args: never[]) => T, what: string): T {
  if (!(value instanceof type)) {
    throw new TypeError(`${what} was made by another HybridCrypto implementation`)
  }
  return value
}

function checkLength (bytes: Uint8Array, length: number, what: string): void {
  if (bytes.byteLength !== length) {
    throw new MalformedMessageError(`${what} must be ${length} bytes, got ${bytes.byteLength}`)
  }
}

// ---------------------------------------------------------------- node:crypto

class NativeDhKeyPair implements DhKeyPair {
  constructor (readonly publicKey: Uint8Array, readonly privateKey: KeyObject) {}
}
class NativeDhPublicKey implements DhPublicKey {
  constructor (readonly bytes: Uint8Array, readonly key: KeyObject) {}
}
class NativeKemKeyPair implements KemKeyPair {
  constructor (readonly publicKey: Uint8Array, readonly privateKey: KeyObject) {}
}
// a secret KeyObject makes createCipheriv ~4x cheaper than a raw key for small messages
class NativeAeadKey implements AeadKey {
  readonly aead = true
  constructor (readonly key: KeyObject) {}
}

const EMPTY = new Uint8Array(0)
const CHACHA = 'chacha20-poly1305'

// node:crypto's raw key formats are typed as Buffer; a view over the same memory, not a copy
function asBuffer (bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function nativeDhPair (privateKey: KeyObject): NativeDhKeyPair {
  const publicKey = nodeCrypto.createPublicKey(privateKey).export({ format: 'raw-public' })
  return new NativeDhKeyPair(publicKey, privateKey)
}

function nativeKemPair (privateKey: KeyObject): NativeKemKeyPair {
  const publicKey = nodeCrypto.createPublicKey(privateKey).export({ format: 'raw-public' })
  return new NativeKemKeyPair(publicKey, privateKey)
}

export const nativeCrypto: HybridCrypto = {
  name: 'node:crypto',

  generateDhKeyPair () {
    const { publicKey, privateKey } = nodeCrypto.generateKeyPairSync('x25519')
    return new NativeDhKeyPair(publicKey.export({ format: 'raw-public' }), privateKey)
  },

  dhKeyPairFromPrivate (privateKey) {
    checkLength(privateKey, DH_LEN, 'X25519 private key')
    return nativeDhPair(nodeCrypto.createPrivateKey({ key: asBuffer(privateKey), format: 'raw-private', asymmetricKeyType: 'x25519' }))
  },

  importDhPublicKey (bytes) {
    checkLength(bytes, DH_LEN, 'X25519 public key')
    return new NativeDhPublicKey(bytes, nodeCrypto.createPublicKey({ key: asBuffer(bytes), format: 'raw-public', asymmetricKeyType: 'x25519' }))
  },

  dh (local, remote) {
    try {
      // OpenSSL refuses an all-zero shared secret, which is the low-order-point check Noise asks for
      return nodeCrypto.diffieHellman({
        privateKey: own(local, NativeDhKeyPair, 'DH key pair').privateKey,
        publicKey: own(remote, NativeDhPublicKey, 'DH public key').key
      })
    } catch (err) {
      if (err instanceof TypeError) throw err
      throw new InvalidPublicKeyError('X25519 rejected the remote public key')
    }
  },

  generateKemKeyPair () {
    const { publicKey, privateKey } = nodeCrypto.generateKeyPairSync('ml-kem-768')
    return new NativeKemKeyPair(publicKey.export({ format: 'raw-public' }), privateKey)
  },

  kemKeyPairFromSeed (seed) {
    checkLength(seed, KEM_SEED_LEN, 'ML-KEM seed')
    return nativeKemPair(nodeCrypto.createPrivateKey({ key: asBuffer(seed), format: 'raw-seed', asymmetricKeyType: 'ml-kem-768' }))
  },

  kemEncapsulate (remotePublicKey) {
    checkLength(remotePublicKey, KEM_PUBLIC_KEY_LEN, 'ML-KEM-768 public key')
    let key: KeyObject
    try {
      key = nodeCrypto.createPublicKey({ key: asBuffer(remotePublicKey), format: 'raw-public', asymmetricKeyType: 'ml-kem-768' })
    } catch {
      throw new InvalidPublicKeyError('ML-KEM-768 rejected the remote encapsulation key')
    }
    const { ciphertext, sharedKey } = nodeCrypto.encapsulate(key)
    return { ciphertext, sharedSecret: sharedKey }
  },

  kemDecapsulate (local, ciphertext) {
    checkLength(ciphertext, KEM_CIPHERTEXT_LEN, 'ML-KEM-768 ciphertext')
    return nodeCrypto.decapsulate(own(local, NativeKemKeyPair, 'KEM key pair').privateKey, ciphertext)
  },

  sha256 (...parts) {
    const hash = nodeCrypto.createHash('sha256')
    for (const part of parts) hash.update(part)
    return hash.digest()
  },

  hkdf (ck, ikm) {
    const okm = new Uint8Array(nodeCrypto.hkdfSync('sha256', ikm, ck, EMPTY, 2 * KEY_LEN))
    return [okm.subarray(0, KEY_LEN), okm.subarray(KEY_LEN)]
  },

  importAeadKey (key) {
    checkLength(key, KEY_LEN, 'ChaCha20-Poly1305 key')
    return new NativeAeadKey(nodeCrypto.createSecretKey(key))
  },

  destroyKeyPair () {},

  seal (key, nonce, ad, plaintext) {
    const cipher = nodeCrypto.createCipheriv(CHACHA, own(key, NativeAeadKey, 'AEAD key').key, nonce, { authTagLength: TAG_LEN })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    // chunks go out as produced: the caller frames them, so no concatenation copy here
    const out = new Uint8ArrayList()
    if (plaintext instanceof Uint8Array) {
      out.append(cipher.update(plaintext))
    } else {
      for (const chunk of plaintext) out.append(cipher.update(chunk))
    }
    cipher.final()
    out.append(cipher.getAuthTag())
    return out
  },

  open (key, nonce, ad, ciphertext) {
    const end = ciphertext.byteLength - TAG_LEN
    if (end < 0) throw new MalformedMessageError('ciphertext shorter than its tag')
    const decipher = nodeCrypto.createDecipheriv(CHACHA, own(key, NativeAeadKey, 'AEAD key').key, nonce, { authTagLength: TAG_LEN })
    decipher.setAAD(ad, { plaintextLength: end })
    decipher.setAuthTag(ciphertext.subarray(end))
    const body = ciphertext instanceof Uint8Array ? [ciphertext.subarray(0, end)] : [...ciphertext.sublist(0, end)]
    const out = body.map(chunk => decipher.update(chunk))
    decipher.final() // throws on a bad tag, before any plaintext leaves this function
    // one buffer is the common case (a frame read in one piece) and is cheaper downstream
    return out.length === 1 ? out[0] : new Uint8ArrayList(...out)
  }
}

// ---------------------------------------------------------------- @noble

class NobleDhKeyPair implements DhKeyPair {
  constructor (readonly publicKey: Uint8Array, readonly privateKey: Uint8Array) {}
}
class NobleDhPublicKey implements DhPublicKey {
  constructor (readonly bytes: Uint8Array) {}
}
class NobleKemKeyPair implements KemKeyPair {
  constructor (readonly publicKey: Uint8Array, readonly secretKey: Uint8Array) {}
}
class NobleAeadKey implements AeadKey {
  readonly aead = true
  constructor (readonly key: Uint8Array) {}
}

export const nobleCrypto: HybridCrypto = {
  name: '@noble',

  generateDhKeyPair () {
    return nobleCrypto.dhKeyPairFromPrivate(x25519.utils.randomSecretKey())
  },

  dhKeyPairFromPrivate (privateKey) {
    checkLength(privateKey, DH_LEN, 'X25519 private key')
    return new NobleDhKeyPair(x25519.getPublicKey(privateKey), privateKey)
  },

  importDhPublicKey (bytes) {
    checkLength(bytes, DH_LEN, 'X25519 public key')
    return new NobleDhPublicKey(bytes)
  },

  dh (local, remote) {
    const privateKey = own(local, NobleDhKeyPair, 'DH key pair').privateKey
    const publicKey = own(remote, NobleDhPublicKey, 'DH public key').bytes
    try {
      return x25519.getSharedSecret(privateKey, publicKey)
    } catch {
      throw new InvalidPublicKeyError('X25519 rejected the remote public key')
    }
  },

  generateKemKeyPair () {
    const { publicKey, secretKey } = ml_kem768.keygen()
    return new NobleKemKeyPair(publicKey, secretKey)
  },

  kemKeyPairFromSeed (seed) {
    checkLength(seed, KEM_SEED_LEN, 'ML-KEM seed')
    const { publicKey, secretKey } = ml_kem768.keygen(seed)
    return new NobleKemKeyPair(publicKey, secretKey)
  },

  kemEncapsulate (remotePublicKey) {
    return nobleEncapsulate(remotePublicKey)
  },

  kemDecapsulate (local, ciphertext) {
    checkLength(ciphertext, KEM_CIPHERTEXT_LEN, 'ML-KEM-768 ciphertext')
    return ml_kem768.decapsulate(ciphertext, own(local, NobleKemKeyPair, 'KEM key pair').secretKey)
  },

  sha256 (...parts) {
    const hash = sha256.create()
    for (const part of parts) hash.update(part)
    return hash.digest()
  },

  hkdf (ck, ikm) {
    const okm = hkdf(sha256, ikm, ck, EMPTY, 2 * KEY_LEN)
    return [okm.subarray(0, KEY_LEN), okm.subarray(KEY_LEN)]
  },

  importAeadKey (key) {
    checkLength(key, KEY_LEN, 'ChaCha20-Poly1305 key')
    return new NobleAeadKey(key.slice())
  },

  destroyKeyPair (pair) {
    if (pair instanceof NobleDhKeyPair) pair.privateKey.fill(0)
    else if (pair instanceof NobleKemKeyPair) pair.secretKey.fill(0)
  },

  seal (key, nonce, ad, plaintext) {
    return chacha20poly1305(own(key, NobleAeadKey, 'AEAD key').key, nonce, ad).encrypt(plaintext.subarray())
  },

  open (key, nonce, ad, ciphertext) {
    if (ciphertext.byteLength < TAG_LEN) throw new MalformedMessageError('ciphertext shorter than its tag')
    return chacha20poly1305(own(key, NobleAeadKey, 'AEAD key').key, nonce, ad).decrypt(ciphertext.subarray())
  }
}

/**
 * ML-KEM-768 encapsulation with @noble; `randomness` (32 bytes) makes it deterministic, which
 * only known-answer tests may use: a fixed value in production would repeat shared secrets.
 */
export function nobleEncapsulate (remotePublicKey: Uint8Array, randomness?: Uint8Array): KemEncapsulation {
  checkLength(remotePublicKey, KEM_PUBLIC_KEY_LEN, 'ML-KEM-768 public key')
  let result: { cipherText: Uint8Array, sharedSecret: Uint8Array }
  try {
    result = ml_kem768.encapsulate(remotePublicKey, randomness)
  } catch {
    throw new InvalidPublicKeyError('ML-KEM-768 rejected the remote encapsulation key')
  }
  return { ciphertext: result.cipherText, sharedSecret: result.sharedSecret }
}

/**
 * node:crypto where the runtime has ML-KEM-768 and raw X25519 keys (Node 24), @noble elsewhere:
 * probed once by a real key exchange, so a runtime missing either falls back instead of failing
 * every handshake.
 */
export const defaultCrypto: HybridCrypto = (() => {
  try {
    const kem = nativeCrypto.generateKemKeyPair()
    const { ciphertext, sharedSecret } = nativeCrypto.kemEncapsulate(kem.publicKey)
    const a = nativeCrypto.generateDhKeyPair()
    const b = nativeCrypto.generateDhKeyPair()
    nativeCrypto.dh(a, nativeCrypto.importDhPublicKey(b.publicKey))
    return Buffer.from(nativeCrypto.kemDecapsulate(kem, ciphertext)).equals(sharedSecret) ? nativeCrypto : nobleCrypto
  } catch {
    return nobleCrypto
  }
})()
