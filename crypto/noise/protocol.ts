// Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256 as the Noise specification (rev. 34) and its
// KEM-based hybrid forward secrecy extension (HFS) define it, agnostic of libp2p:
//   -> e, e1
//   <- e, ee, ekem1, s, es
//   -> s, se
// Names follow the spec so the code reads beside it.
import { DH_LEN, KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, NONCE_LEN, TAG_LEN } from './crypto.js'
import { HandshakeDecryptError, MalformedMessageError, NonceExhaustedError } from './errors.js'
import type { AeadKey, Bytes, DhKeyPair, DhPublicKey, HybridCrypto, KemKeyPair } from './crypto.js'

export const PROTOCOL_NAME = 'Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256'
export const ZEROLEN = new Uint8Array(0)
// The spec reserves 2^64-1; a JS number stays exact up to 2^53-1, far beyond any connection.
const MAX_NONCE = Number.MAX_SAFE_INTEGER

export class CipherState {
  private n = 0
  private readonly nonce = new Uint8Array(NONCE_LEN)
  private readonly view = new DataView(this.nonce.buffer)
  // An ECMAScript private field: no property, reflection or debugger-free inspection of a
  // connection reaches the key.
  readonly #key?: AeadKey

  /** Takes `k` over: its bytes are wiped once the AEAD key is imported. */
  constructor (private readonly crypto: HybridCrypto, k?: Uint8Array) {
    if (k !== undefined) {
      this.#key = crypto.importAeadKey(k)
      k.fill(0)
    }
  }

  hasKey (): boolean {
    return this.#key !== undefined
  }

  encryptWithAd (ad: Uint8Array, plaintext: Bytes): Bytes {
    if (this.#key === undefined) return plaintext
    const ciphertext = this.crypto.seal(this.#key, this.nextNonce(), ad, plaintext)
    this.n++
    return ciphertext
  }

  /** Throws whatever the AEAD throws on a bad tag; callers map it to their typed error. */
  decryptWithAd (ad: Uint8Array, ciphertext: Bytes): Bytes {
    if (this.#key === undefined) return ciphertext
    const plaintext = this.crypto.open(this.#key, this.nextNonce(), ad, ciphertext)
    this.n++
    return plaintext
  }

  private nextNonce (): Uint8Array {
    if (this.n > MAX_NONCE) throw new NonceExhaustedError('cipher state ran out of nonces')
    // 32 zero bits then the 64-bit little-endian counter, as Noise's ChaChaPoly ENCRYPT says
    this.view.setUint32(4, this.n >>> 0, true)
    this.view.setUint32(8, Math.floor(this.n / 0x1_0000_0000), true)
    return this.nonce
  }
}

export class SymmetricState {
  cs: CipherState
  ck: Uint8Array
  h: Uint8Array

  constructor (private readonly crypto: HybridCrypto, protocolName: string) {
    const name = new TextEncoder().encode(protocolName)
    if (name.byteLength <= 32) {
      this.h = new Uint8Array(32)
      this.h.set(name)
    } else {
      this.h = crypto.sha256(name)
    }
    // a copy: ck is wiped as it is replaced, h is the public handshake hash
    this.ck = this.h.slice()
    this.cs = new CipherState(crypto)
  }

  mixKey (ikm: Uint8Array): void {
    const [ck, k] = this.crypto.hkdf(this.ck, ikm)
    this.ck.fill(0)
    this.ck = ck
    this.cs = new CipherState(this.crypto, k)
  }

  mixHash (data: Uint8Array): void {
    this.h = this.crypto.sha256(this.h, data)
  }

  encryptAndHash (plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cs.encryptWithAd(this.h, plaintext).subarray()
    this.mixHash(ciphertext)
    return ciphertext
  }

  decryptAndHash (ciphertext: Uint8Array): Uint8Array {
    let plaintext: Uint8Array
    try {
      plaintext = this.cs.decryptWithAd(this.h, ciphertext).subarray()
    } catch (err) {
      throw new HandshakeDecryptError('handshake message failed authentication', { cause: err })
    }
    this.mixHash(ciphertext)
    return plaintext
  }

  /** The two transport keys, raw: for known-answer tests, which wipe them. */
  splitKeys (): [Uint8Array, Uint8Array] {
    return this.crypto.hkdf(this.ck, ZEROLEN)
  }

  split (): [CipherState, CipherState] {
    const [k1, k2] = this.splitKeys()
    return [new CipherState(this.crypto, k1), new CipherState(this.crypto, k2)]
  }

  /** Wipes the chaining key, from which every later key would follow. */
  destroy (): void {
    this.ck.fill(0)
  }
}

/** Reads fixed-size fields off a received handshake message, refusing truncation. */
class MessageReader {
  private offset = 0
  constructor (private readonly message: Uint8Array, private readonly label: string) {}

  take (length: number): Uint8Array {
    if (this.offset + length > this.message.byteLength) {
      throw new MalformedMessageError(`${this.label} is truncated (${this.message.byteLength} bytes)`)
    }
    const field = this.message.subarray(this.offset, this.offset + length)
    this.offset += length
    return field
  }

  rest (): Uint8Array {
    return this.message.subarray(this.offset)
  }
}

export interface HandshakeStateInit {
  crypto: HybridCrypto
  initiator: boolean
  prologue: Uint8Array
  /** the local static X25519 key pair */
  s: DhKeyPair
  /** where fresh ephemeral key pairs come from; generated on demand when absent */
  ephemerals?: EphemeralSource
}

/** Supplies each ephemeral key pair once: generated ahead of need, or fixed for known answers. */
export interface EphemeralSource {
  dh(): DhKeyPair
  kem(): KemKeyPair
}

export class XXhfsHandshakeState {
  readonly ss: SymmetricState
  readonly initiator: boolean
  readonly s: DhKeyPair
  private e?: DhKeyPair
  private e1?: KemKeyPair
  re?: DhPublicKey
  rs?: DhPublicKey
  private re1?: Uint8Array
  private readonly crypto: HybridCrypto
  private readonly ephemerals: EphemeralSource

  constructor (init: HandshakeStateInit) {
    this.crypto = init.crypto
    this.initiator = init.initiator
    this.s = init.s
    this.ephemerals = init.ephemerals ?? { dh: () => init.crypto.generateDhKeyPair(), kem: () => init.crypto.generateKemKeyPair() }
    this.ss = new SymmetricState(init.crypto, PROTOCOL_NAME)
    this.ss.mixHash(init.prologue)
  }

  /** The handshake hash, for channel binding; final once message C is processed. */
  get handshakeHash (): Uint8Array {
    return this.ss.h
  }

  // -> e, e1
  writeMessageA (payload: Uint8Array): Uint8Array {
    const e = this.writeE()
    this.e1 = this.ephemerals.kem()
    // e1 is sent with EncryptAndHash; no key exists yet, so it is a plain MixHash
    const e1 = this.ss.encryptAndHash(this.e1.publicKey)
    return concat(e, e1, this.ss.encryptAndHash(payload))
  }

  readMessageA (message: Uint8Array): Uint8Array {
    const r = new MessageReader(message, 'handshake message A')
    this.readE(r)
    this.re1 = this.ss.decryptAndHash(r.take(KEM_PUBLIC_KEY_LEN))
    return this.ss.decryptAndHash(r.rest())
  }

  // <- e, ee, ekem1, s, es
  writeMessageB (payload: Uint8Array): Uint8Array {
    const e = this.writeE()
    this.mixDh(this.requireE(), this.requireRe())
    const { ciphertext, sharedSecret } = this.crypto.kemEncapsulate(required(this.re1, 're1'))
    const ekem1 = this.ss.encryptAndHash(ciphertext)
    this.ss.mixKey(sharedSecret)
    sharedSecret.fill(0)
    const s = this.ss.encryptAndHash(this.s.publicKey)
    this.mixDh(this.s, this.requireRe())
    return concat(e, ekem1, s, this.ss.encryptAndHash(payload))
  }

  readMessageB (message: Uint8Array): Uint8Array {
    const r = new MessageReader(message, 'handshake message B')
    this.readE(r)
    this.mixDh(this.requireE(), this.requireRe())
    const ciphertext = this.ss.decryptAndHash(r.take(KEM_CIPHERTEXT_LEN + TAG_LEN))
    const sharedSecret = this.crypto.kemDecapsulate(required(this.e1, 'e1'), ciphertext)
    this.ss.mixKey(sharedSecret)
    sharedSecret.fill(0)
    this.readS(r)
    this.mixDh(this.requireE(), this.requireRs())
    return this.readPayload(r)
  }

  // -> s, se
  writeMessageC (payload: Uint8Array): Uint8Array {
    const s = this.ss.encryptAndHash(this.s.publicKey)
    this.mixDh(this.s, this.requireRe())
    return concat(s, this.ss.encryptAndHash(payload))
  }

  readMessageC (message: Uint8Array): Uint8Array {
    const r = new MessageReader(message, 'handshake message C')
    this.readS(r)
    this.mixDh(this.requireE(), this.requireRs())
    return this.readPayload(r)
  }

  /** [initiator→responder, responder→initiator] transport cipher states. */
  split (): [CipherState, CipherState] {
    return this.ss.split()
  }

  /** Known-answer tests only: the raw transport keys, in split's order. */
  splitKeys (): [Uint8Array, Uint8Array] {
    return this.ss.splitKeys()
  }

  /**
   * Wipes what the handshake no longer needs and must not leave behind: the ephemeral private
   * keys and the chaining key. The static key outlives it (one per encrypter).
   */
  destroy (): void {
    this.ss.destroy()
    if (this.e !== undefined) this.crypto.destroyKeyPair(this.e)
    if (this.e1 !== undefined) this.crypto.destroyKeyPair(this.e1)
    this.e = undefined
    this.e1 = undefined
  }

  private writeE (): Uint8Array {
    this.e = this.ephemerals.dh()
    this.ss.mixHash(this.e.publicKey)
    return this.e.publicKey
  }

  private readE (r: MessageReader): void {
    const re = r.take(DH_LEN)
    this.re = this.crypto.importDhPublicKey(re)
    this.ss.mixHash(re)
  }

  private readS (r: MessageReader): void {
    const rs = this.ss.decryptAndHash(r.take(DH_LEN + TAG_LEN))
    this.rs = this.crypto.importDhPublicKey(rs)
  }

  private readPayload (r: MessageReader): Uint8Array {
    // the cipher has a key by now, so even an empty payload carries a tag
    if (r.rest().byteLength < TAG_LEN) throw new MalformedMessageError('handshake payload is truncated')
    return this.ss.decryptAndHash(r.rest())
  }

  private mixDh (local: DhKeyPair, remote: DhPublicKey): void {
    const shared = this.crypto.dh(local, remote)
    this.ss.mixKey(shared)
    shared.fill(0)
  }

  private requireE (): DhKeyPair { return required(this.e, 'e') }
  private requireRe (): DhPublicKey { return required(this.re, 're') }
  private requireRs (): DhPublicKey { return required(this.rs, 'rs') }
}

function required<T> (value: T | undefined, name: string): T {
  // only reachable by calling the message methods out of order: a programming error
  if (value === undefined) throw new Error(`handshake state has no ${name} yet`)
  return value
}

function concat (...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.byteLength
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}
