// Known-answer handshakes of test/vectors/noise-xxhfs-mlkem768.json: every key derives from
// one base byte B (static_i = 32 bytes of B+1, static_r = B+2, ephemeral DH i/r = B+3/B+4,
// ML-KEM seed = 64 bytes of B+5, encapsulation randomness = 32 bytes of B+6), prologue and
// payloads empty. Another implementation that produces the same record interoperates.
import { nobleCrypto, nobleEncapsulate } from './crypto.js'
import { XXhfsHandshakeState, ZEROLEN } from './protocol.js'
import type { HybridCrypto } from './crypto.js'

export interface HandshakeVector {
  static_i_public: string
  static_r_public: string
  ephemeral_dh_i_public: string
  ephemeral_dh_r_public: string
  ephemeral_kem_i_public_first_16: string
  msg_a_bytes: number
  msg_b_bytes: number
  msg_c: string
  handshake_hash: string
  cs1_k: string
  cs2_k: string
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/**
 * Runs both roles with keys derived from `base`. `crypto` does everything but the responder's
 * encapsulation, which needs fixed randomness that only @noble accepts.
 */
export function computeVector (base: number, crypto: HybridCrypto = nobleCrypto): HandshakeVector {
  if (!Number.isInteger(base) || base < 0 || base > 249) {
    throw new RangeError('base must be an integer in 0..249 so that base+6 is a byte')
  }
  const fill = (offset: number, length: number): Uint8Array => new Uint8Array(length).fill(base + offset)
  const encapsulationRandomness = fill(6, 32)
  const initiator = new XXhfsHandshakeState({
    crypto,
    initiator: true,
    prologue: ZEROLEN,
    s: crypto.dhKeyPairFromPrivate(fill(1, 32)),
    ephemerals: { dh: () => crypto.dhKeyPairFromPrivate(fill(3, 32)), kem: () => crypto.kemKeyPairFromSeed(fill(5, 64)) }
  })
  const responder = new XXhfsHandshakeState({
    crypto: { ...crypto, kemEncapsulate: (publicKey) => nobleEncapsulate(publicKey, encapsulationRandomness) },
    initiator: false,
    prologue: ZEROLEN,
    s: crypto.dhKeyPairFromPrivate(fill(2, 32)),
    ephemerals: { dh: () => crypto.dhKeyPairFromPrivate(fill(4, 32)), kem: () => { throw new Error('the responder has no KEM key pair') } }
  })

  const msgA = initiator.writeMessageA(ZEROLEN)
  responder.readMessageA(msgA)
  const msgB = responder.writeMessageB(ZEROLEN)
  initiator.readMessageB(msgB)
  const msgC = initiator.writeMessageC(ZEROLEN)
  responder.readMessageC(msgC)

  const [cs1, cs2] = initiator.splitKeys()
  const [rcs1, rcs2] = responder.splitKeys()
  if (hex(initiator.handshakeHash) !== hex(responder.handshakeHash) || hex(cs1) !== hex(rcs1) || hex(cs2) !== hex(rcs2)) {
    throw new Error('initiator and responder derived different secrets')
  }

  return {
    static_i_public: hex(initiator.s.publicKey),
    static_r_public: hex(responder.s.publicKey),
    ephemeral_dh_i_public: hex(msgA.subarray(0, 32)),
    ephemeral_dh_r_public: hex(msgB.subarray(0, 32)),
    ephemeral_kem_i_public_first_16: hex(msgA.subarray(32, 48)),
    msg_a_bytes: msgA.byteLength,
    msg_b_bytes: msgB.byteLength,
    msg_c: hex(msgC),
    handshake_hash: hex(initiator.handshakeHash),
    cs1_k: hex(cs1),
    cs2_k: hex(cs2)
  }
}
