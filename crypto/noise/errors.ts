// Typed errors of the hybrid Noise encrypter. Callers branch on `code` (stable across
// releases); `name` follows libp2p's convention so the upgrader and the compliance suite
// recognise an unexpected peer the same way they do for classic Noise.

export type HybridNoiseErrorCode =
  | 'HANDSHAKE_DECRYPT_FAILED'
  | 'TRANSPORT_DECRYPT_FAILED'
  | 'INVALID_SIGNATURE'
  | 'UNEXPECTED_PEER'
  | 'INVALID_PUBLIC_KEY'
  | 'MALFORMED_MESSAGE'
  | 'MESSAGE_TOO_LARGE'
  | 'NONCE_EXHAUSTED'

export abstract class HybridNoiseError extends Error {
  abstract readonly code: HybridNoiseErrorCode
}

/** A handshake message failed AEAD authentication: tampered, or the peers' transcripts differ. */
export class HandshakeDecryptError extends HybridNoiseError {
  readonly code = 'HANDSHAKE_DECRYPT_FAILED'
  override readonly name = 'HandshakeDecryptError'
}

/** A transport frame failed AEAD authentication; the connection is aborted, nothing delivered. */
export class TransportDecryptError extends HybridNoiseError {
  readonly code = 'TRANSPORT_DECRYPT_FAILED'
  override readonly name = 'TransportDecryptError'
}

/** The identity key's signature over our view of the remote Noise static key does not verify. */
export class InvalidSignatureError extends HybridNoiseError {
  readonly code = 'INVALID_SIGNATURE'
  override readonly name = 'InvalidSignatureError'
}

/** The remote proved an identity other than the peer the caller expected. */
export class UnexpectedPeerError extends HybridNoiseError {
  readonly code = 'UNEXPECTED_PEER'
  override readonly name = 'UnexpectedPeerError'
}

/** A remote X25519 or ML-KEM public key was rejected by the primitive (low order, out of range). */
export class InvalidPublicKeyError extends HybridNoiseError {
  readonly code = 'INVALID_PUBLIC_KEY'
  override readonly name = 'InvalidPublicKeyError'
}

/** A handshake message or payload is truncated or does not follow its schema. */
export class MalformedMessageError extends HybridNoiseError {
  readonly code = 'MALFORMED_MESSAGE'
  override readonly name = 'MalformedMessageError'
}

/** A message exceeds what one Noise message (65535 bytes) can carry. */
export class MessageTooLargeError extends HybridNoiseError {
  readonly code = 'MESSAGE_TOO_LARGE'
  override readonly name = 'MessageTooLargeError'
}

/** A cipher state used up its nonces; the connection must be re-established. */
export class NonceExhaustedError extends HybridNoiseError {
  readonly code = 'NONCE_EXHAUSTED'
  override readonly name = 'NonceExhaustedError'
}
