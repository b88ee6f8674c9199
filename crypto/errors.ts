// Typed errors of crypto/ outside the Noise encrypter (which has its own in noise/errors.ts).
// `code` is stable: callers and tests branch on it, never on the message.
export class IdentityError extends Error {
  constructor (readonly code: 'IDENTITY_MISSING' | 'IDENTITY_UNREADABLE' | 'IDENTITY_CORRUPT' | 'IDENTITY_INSECURE_MODE' | 'IDENTITY_EXISTS' | 'NOT_ED25519_PEER_ID', message: string) {
    super(message)
    this.name = 'IdentityError'
  }
}

/**
 * An invite code that cannot be used. INVITE_TYPO means the characters were damaged in
 * transit (checksum or alphabet), so the operator should re-copy it; INVITE_MALFORMED means
 * the code is intact but is not a valid invite (or not an invite at all).
 */
export class InviteError extends Error {
  constructor (readonly code: 'INVITE_MALFORMED' | 'INVITE_VERSION' | 'INVITE_TOO_LARGE' | 'INVITE_TYPO', message: string) {
    super(message)
    this.name = 'InviteError'
  }
}

/** A sealed room epoch key that cannot be opened: wrong shape, unknown version, or not for us. */
export class SealError extends Error {
  constructor (readonly code: 'SEAL_MALFORMED' | 'SEAL_VERSION' | 'SEAL_OPEN_FAILED', message: string) {
    super(message)
    this.name = 'SealError'
  }
}

/** A room message that cannot be encrypted or decrypted. */
export class RoomCipherError extends Error {
  constructor (readonly code: 'ROOM_MSG_MALFORMED' | 'ROOM_MSG_TOO_LARGE' | 'ROOM_MSG_AUTH_FAILED', message: string) {
    super(message)
    this.name = 'RoomCipherError'
  }
}
