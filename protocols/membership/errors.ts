// Typed errors of the membership view. `code` is stable: the audit codec registry reports it
// (as BODY_INVALID with this message) and tests branch on it, never on the message.
export class MembershipError extends Error {
  constructor (readonly code: 'MEMBERSHIP_BODY_INVALID', message: string) {
    super(message)
    this.name = 'MembershipError'
  }
}
