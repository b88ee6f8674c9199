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
  /** the joiner's host name is not one (protocols/membership HOST_NAME_RE) */
  | 'NAME_INVALID'
  | 'PAIRING_TIMEOUT'
  | 'PAIRING_FAILED'
  | 'INVITE_STORE_CORRUPT'
  /** the inviter's welcome names another mesh than the invite: the joiner adopts nothing */
  | 'WELCOME_MISMATCH'
  /** an `invite` entry's body does not follow its schema (invite-entry.ts) */
  | 'INVITE_ENTRY_INVALID'

export class PairingError extends Error {
  constructor (readonly code: PairingErrorCode, message: string) {
    super(message)
    this.name = 'PairingError'
  }
}

/** The codes an inviter may send back on the wire; anything else is a malformed reply. */
export const WIRE_ERROR_CODES: ReadonlySet<string> = new Set<PairingErrorCode>([
  'INVITE_UNKNOWN', 'INVITE_EXPIRED', 'INVITE_REVOKED', 'INVITE_USED_UP', 'PROOF_INVALID', 'WRONG_MESH',
  'RATE_LIMITED', 'INVITER_NOT_ADMIN', 'PAIRING_MALFORMED', 'NAME_INVALID', 'PAIRING_FAILED'
])
