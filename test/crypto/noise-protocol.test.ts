// The XXhfs state machine against the published vectors, and the properties the hybrid
// construction promises (the KEM secret alone changes the transport keys).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { defaultCrypto, nativeCrypto, nobleCrypto } from '../../crypto/noise/crypto.js'
import { InvalidPublicKeyError, MalformedMessageError } from '../../crypto/noise/errors.js'
import { PregeneratedEphemerals } from '../../crypto/noise/ephemerals.js'
import { CipherState, XXhfsHandshakeState, ZEROLEN } from '../../crypto/noise/protocol.js'
import { computeVector } from '../../crypto/noise/vectors.js'
import type { HybridCrypto } from '../../crypto/noise/crypto.js'
import type { HandshakeVector } from '../../crypto/noise/vectors.js'

interface VectorFile { protocol: string, vectors: Array<HandshakeVector & { vector_index: number, base: number }> }
const file = JSON.parse(readFileSync(new URL('../vectors/noise-xxhfs-mlkem768.json', import.meta.url), 'utf8')) as VectorFile

const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? ZEROLEN).toString('hex')

describe('Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256 vectors', () => {
  assert.equal(file.protocol, 'Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256')
  assert.ok(file.vectors.length >= 3)
  for (const crypto of [nobleCrypto, nativeCrypto]) {
    for (const expected of file.vectors) {
      it(`vector ${expected.vector_index} (base ${expected.base}) matches byte for byte with ${crypto.name}`, () => {
        const { vector_index: _index, base, ...fields } = expected
        assert.deepEqual(computeVector(base, crypto), fields)
      })
    }
  }
})

/** A deterministic handshake; `kemSecret` replaces the ML-KEM shared secret on both sides. */
function handshake (crypto: HybridCrypto, kemSecret?: Uint8Array): { beforeKem: string, k1: string, k2: string } {
  const fill = (v: number, n: number): Uint8Array => new Uint8Array(n).fill(v)
  const withSecret: HybridCrypto = kemSecret === undefined
    ? crypto
    : {
        ...crypto,
        // copies: each side wipes the secret it mixed in
        kemEncapsulate: (pk) => ({ ...crypto.kemEncapsulate(pk), sharedSecret: kemSecret.slice() }),
        kemDecapsulate: () => kemSecret.slice()
      }
  const i = new XXhfsHandshakeState({ crypto: withSecret, initiator: true, prologue: ZEROLEN, s: crypto.dhKeyPairFromPrivate(fill(1, 32)), ephemerals: { dh: () => crypto.dhKeyPairFromPrivate(fill(3, 32)), kem: () => crypto.kemKeyPairFromSeed(fill(5, 64)) } })
  const r = new XXhfsHandshakeState({ crypto: withSecret, initiator: false, prologue: ZEROLEN, s: crypto.dhKeyPairFromPrivate(fill(2, 32)), ephemerals: { dh: () => crypto.dhKeyPairFromPrivate(fill(4, 32)), kem: () => crypto.generateKemKeyPair() } })
  const a = i.writeMessageA(ZEROLEN)
  r.readMessageA(a)
  const b = r.writeMessageB(ZEROLEN)
  i.readMessageB(b)
  r.readMessageC(i.writeMessageC(ZEROLEN))
  const [cs1, cs2] = i.splitKeys()
  const [rcs1, rcs2] = r.splitKeys()
  assert.equal(hex(cs1), hex(rcs1))
  assert.equal(hex(cs2), hex(rcs2))
  // everything on the wire up to and including the KEM ciphertext (e, e1 | e, ekem1)
  return { beforeKem: hex(a) + hex(b.subarray(0, 32 + 1088 + 16)), k1: hex(cs1), k2: hex(cs2) }
}

describe('hybrid key schedule', () => {
  it('changing only the KEM shared secret changes both transport keys', () => {
    // a fixed ciphertext and fixed keys: the two runs differ in the KEM secret alone
    const crypto: HybridCrypto = { ...nobleCrypto, kemEncapsulate: (pk) => ({ ...nobleCrypto.kemEncapsulate(pk), ciphertext: new Uint8Array(1088).fill(7) }) }
    const a = handshake(crypto, new Uint8Array(32).fill(0xaa))
    const b = handshake(crypto, new Uint8Array(32).fill(0xab))
    assert.equal(a.beforeKem, b.beforeKem, 'identical wire bytes up to the KEM ciphertext')
    assert.notEqual(a.k1, b.k1)
    assert.notEqual(a.k2, b.k2)
  })

  it('a cipher state pair round-trips in order and refuses a replayed frame', () => {
    const [send, receive] = [new CipherState(nativeCrypto, new Uint8Array(32).fill(1)), new CipherState(nativeCrypto, new Uint8Array(32).fill(1))]
    const plaintext = new TextEncoder().encode('hello')
    for (let n = 0; n < 3; n++) {
      assert.equal(hex(receive.decryptWithAd(ZEROLEN, send.encryptWithAd(ZEROLEN, plaintext).subarray()).subarray()), hex(plaintext))
    }
    // a replayed or reordered frame uses a stale nonce and fails
    const frame = send.encryptWithAd(ZEROLEN, plaintext).subarray()
    assert.ok(receive.decryptWithAd(ZEROLEN, frame))
    assert.throws(() => receive.decryptWithAd(ZEROLEN, frame))
  })

  it('pregenerated ephemerals are fresh and never handed out twice', async () => {
    const source = new PregeneratedEphemerals(nativeCrypto)
    const seen = new Set<string>()
    for (let i = 0; i < 10; i++) {
      // alternately straight after a refill and before it has run
      if (i % 2 === 0) await new Promise(resolve => setImmediate(resolve))
      for (const pair of [source.dh(), source.kem(), source.dh()]) {
        assert.ok(!seen.has(hex(pair.publicKey)), `round ${i}: a key pair came out twice`)
        seen.add(hex(pair.publicKey))
      }
    }
  })

  for (const crypto of [nativeCrypto, nobleCrypto]) {
    it(`${crypto.name} refuses low-order X25519 points, invalid ML-KEM keys and wrong lengths`, () => {
      const local = crypto.generateDhKeyPair()
      // the all-zero point and the point of order 4 (u = 1) give an all-zero shared secret
      for (const point of [new Uint8Array(32), Uint8Array.of(1, ...new Array<number>(31).fill(0))]) {
        assert.throws(() => crypto.dh(local, crypto.importDhPublicKey(point)), InvalidPublicKeyError)
      }
      // coefficients of 0xfff exceed q = 3329: the FIPS 203 modulus check must reject them
      assert.throws(() => crypto.kemEncapsulate(new Uint8Array(1184).fill(0xff)), InvalidPublicKeyError)
      assert.throws(() => crypto.importDhPublicKey(new Uint8Array(31)), MalformedMessageError)
      assert.throws(() => crypto.kemEncapsulate(new Uint8Array(1183)), MalformedMessageError)
      assert.throws(() => crypto.kemDecapsulate(crypto.generateKemKeyPair(), new Uint8Array(1087)), MalformedMessageError)
    })
  }

  it('native and noble primitives agree', () => {
    const seed = new Uint8Array(64).fill(9)
    assert.equal(hex(nativeCrypto.kemKeyPairFromSeed(seed).publicKey), hex(nobleCrypto.kemKeyPairFromSeed(seed).publicKey))
    const enc = nobleCrypto.kemEncapsulate(nativeCrypto.kemKeyPairFromSeed(seed).publicKey)
    assert.equal(hex(nativeCrypto.kemDecapsulate(nativeCrypto.kemKeyPairFromSeed(seed), enc.ciphertext)), hex(enc.sharedSecret))
    const key = new Uint8Array(32).fill(3)
    const nonce = new Uint8Array(12).fill(4)
    const ad = new Uint8Array(5).fill(5)
    const pt = new Uint8Array(70000).map((_, i) => i)
    const sealed = nativeCrypto.seal(nativeCrypto.importAeadKey(key), nonce, ad, pt).subarray()
    assert.equal(hex(sealed), hex(nobleCrypto.seal(nobleCrypto.importAeadKey(key), nonce, ad, pt).subarray()))
    assert.equal(hex(nobleCrypto.open(nobleCrypto.importAeadKey(key), nonce, ad, sealed).subarray()), hex(pt))
    assert.deepEqual(nativeCrypto.hkdf(key, ZEROLEN).map(hex), nobleCrypto.hkdf(key, ZEROLEN).map(hex))
  })

  it('the default is node:crypto on a runtime with native ML-KEM-768 (Node 24), @noble otherwise', () => {
    const [major] = process.versions.node.split('.').map(Number)
    if (major >= 24) assert.equal(defaultCrypto, nativeCrypto)
    else assert.ok(defaultCrypto === nativeCrypto || defaultCrypto === nobleCrypto)
  })
})
