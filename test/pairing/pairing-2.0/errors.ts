// FROZEN: protocols/pairing/errors.ts as release 42a2a15 shipped it (before host names), byte for
// byte but for import paths: the peer that compat.test.ts pairs the current code with. Never edit.
// Every way pairing can fail has its own code, so `fleetmesh join` can print one distinct
// line for each and tests can tell them apart.
export type PairingErrorCode =
  | 'INVITE_UNKNOWN'
  | 'INVITE_EXPIRED'
  | 'INVITE_REVOKED'
  | 'INVITE_USED_UP'
  | 'PROOF_INVALID'
  | 'WRONG_MESH'
  | 'RATE_LIMITED'
  | 'INVITER_NOT_ADMIN'
  | 'INVITER_UNREACHABLE'
  | 'PAIRING_MALFORMED'
  | 'PAIRING_TIMEOUT'
  | 'PAIRING_FAILED'
  | 'INVITE_STORE_CORRUPT'
  /** the inviter's welcome names another mesh than the invite: the joiner adopts nothing */
  | 'WELCOME_MISMATCH'

export class PairingError extends Error {
  constructor (readonly code: PairingErrorCode, message: string) {
    super(message)
    this.name = 'PairingError'
  }
}

/** The codes an inviter may send back on the wire; anything else is a malformed reply. */
export const WIRE_ERROR_CODES: ReadonlySet<string> = new Set<PairingErrorCode>([
  'INVITE_UNKNOWN', 'INVITE_EXPIRED', 'INVITE_REVOKED', 'INVITE_USED_UP', 'PROOF_INVALID', 'WRONG_MESH',
  'RATE_LIMITED', 'INVITER_NOT_ADMIN', 'PAIRING_MALFORMED', 'PAIRING_FAILED'
])
