// The libp2p flow over the XXhfs state machine, one function per role: write A, read B,
// verify the payload, write C, split. The payload binds the libp2p identity key to the Noise
// static key exactly as libp2p-noise does, so `remotePeer` is authenticated.
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { decodePayload, encodePayload } from './codec.js'
import { InvalidSignatureError, MalformedMessageError, UnexpectedPeerError } from './errors.js'
import { XXhfsHandshakeState, ZEROLEN } from './protocol.js'
import type { NoiseExtensions, NoiseHandshakePayload } from './codec.js'
import type { DhKeyPair, DhPublicKey, HybridCrypto } from './crypto.js'
import type { CipherState, EphemeralSource } from './protocol.js'
import type { AbortOptions, Logger, PrivateKey, PublicKey } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** One framed handshake message at a time; @libp2p/utils' lpStream is one. */
export interface HandshakeChannel {
  read(options?: AbortOptions): Promise<Uint8Array | Uint8ArrayList>
  write(message: Uint8Array, options?: AbortOptions): Promise<void>
}

/** Our libp2p identity key and its signature over our Noise static key: the payload's core. */
export interface LocalIdentity {
  identityKey: Uint8Array
  identitySig: Uint8Array
}

export interface HandshakeParams {
  channel: HandshakeChannel
  crypto: HybridCrypto
  identity: LocalIdentity
  prologue: Uint8Array
  /** the local Noise static key pair */
  s: DhKeyPair
  ephemerals?: EphemeralSource
  /** when known in advance, the handshake fails unless the remote proves this identity */
  remoteIdentityKey?: PublicKey
  extensions?: NoiseExtensions
  log: Logger
}

export interface HandshakeResult {
  remoteIdentityKey: PublicKey
  remoteExtensions?: NoiseExtensions
  handshakeHash: Uint8Array
  /** cipher state for what we send */
  send: CipherState
  /** cipher state for what we receive */
  receive: CipherState
}

const SIGNATURE_PREFIX = new TextEncoder().encode('noise-libp2p-static-key:')

export async function performHandshakeInitiator (params: HandshakeParams, options?: AbortOptions): Promise<HandshakeResult> {
  const { channel, crypto, prologue, s, log } = params
  const payload = createPayload(params)
  const hs = new XXhfsHandshakeState({ crypto, initiator: true, prologue, s, ephemerals: params.ephemerals })
  try {
    await channel.write(hs.writeMessageA(ZEROLEN), options)
    log.trace('sent message A')
    const remote = await verifyPayload(hs.readMessageB(await readMessage(channel, options)), required(hs.rs), params.remoteIdentityKey)
    log.trace('read message B, remote identity verified')
    await channel.write(hs.writeMessageC(payload), options)
    log.trace('sent message C')

    const [cs1, cs2] = hs.split()
    return { ...remote, handshakeHash: hs.handshakeHash, send: cs1, receive: cs2 }
  } finally {
    // a failed handshake leaves nothing behind either
    hs.destroy()
  }
}

export async function performHandshakeResponder (params: HandshakeParams, options?: AbortOptions): Promise<HandshakeResult> {
  const { channel, crypto, prologue, s, log } = params
  const payload = createPayload(params)
  const hs = new XXhfsHandshakeState({ crypto, initiator: false, prologue, s, ephemerals: params.ephemerals })
  try {
    // libp2p initiators send an empty payload in A; it is unauthenticated, so it is ignored
    hs.readMessageA(await readMessage(channel, options))
    log.trace('read message A')
    await channel.write(hs.writeMessageB(payload), options)
    log.trace('sent message B')
    const remote = await verifyPayload(hs.readMessageC(await readMessage(channel, options)), required(hs.rs), params.remoteIdentityKey)
    log.trace('read message C, remote identity verified')

    const [cs1, cs2] = hs.split()
    return { ...remote, handshakeHash: hs.handshakeHash, send: cs2, receive: cs1 }
  } finally {
    hs.destroy()
  }
}

async function readMessage (channel: HandshakeChannel, options?: AbortOptions): Promise<Uint8Array> {
  return (await channel.read(options)).subarray()
}

/**
 * Signs the static key once: it lives as long as the encrypter, so the signature does too, and
 * handshakes need not pay for a signature each (libp2p-noise signs per handshake).
 */
export async function signStaticKey (privateKey: PrivateKey, staticPublicKey: Uint8Array): Promise<LocalIdentity> {
  return {
    identityKey: publicKeyToProtobuf(privateKey.publicKey),
    identitySig: await privateKey.sign(signedBytes(staticPublicKey))
  }
}

function createPayload (params: HandshakeParams): Uint8Array {
  const payload: NoiseHandshakePayload = { ...params.identity }
  if (params.extensions !== undefined) payload.extensions = params.extensions
  return encodePayload(payload)
}

async function verifyPayload (
  bytes: Uint8Array,
  remoteStatic: DhPublicKey,
  expected?: PublicKey
): Promise<{ remoteIdentityKey: PublicKey, remoteExtensions?: NoiseExtensions }> {
  const payload = decodePayload(bytes)
  let identity: PublicKey
  try {
    identity = publicKeyFromProtobuf(payload.identityKey)
  } catch (err) {
    throw new MalformedMessageError('payload identity_key is not a libp2p public key', { cause: err })
  }
  if (expected !== undefined && !expected.equals(identity)) {
    throw new UnexpectedPeerError('remote proved an identity other than the expected peer')
  }
  let valid: boolean
  try {
    valid = await identity.verify(signedBytes(remoteStatic.bytes), payload.identitySig)
  } catch {
    valid = false // some key types throw instead of returning false on a malformed signature
  }
  if (!valid) {
    throw new InvalidSignatureError('identity signature over the Noise static key does not verify')
  }
  return payload.extensions === undefined
    ? { remoteIdentityKey: identity }
    : { remoteIdentityKey: identity, remoteExtensions: payload.extensions }
}

function signedBytes (staticPublicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNATURE_PREFIX.byteLength + staticPublicKey.byteLength)
  out.set(SIGNATURE_PREFIX)
  out.set(staticPublicKey, SIGNATURE_PREFIX.byteLength)
  return out
}

function required (rs: DhPublicKey | undefined): DhPublicKey {
  // readMessageB/C set rs or throw, so this only guards the types
  if (rs === undefined) throw new Error('remote static key missing after a completed message')
  return rs
}
