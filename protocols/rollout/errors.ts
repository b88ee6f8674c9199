// Typed errors of the rollout folder. `code` is stable: the audit codec registry reports it (as
// BODY_INVALID with this message), the CLI and tests branch on it, never on the message.

export type RolloutErrorCode =
  /** a body of a rollout kind that breaks its schema (missing field, wrong type, out of range) */
  | 'ROLLOUT_BODY_INVALID'
  /** a body of a rollout kind over one of its size bounds (list length, string length) */
  | 'ROLLOUT_BODY_TOO_LARGE'

export class RolloutError extends Error {
  override readonly name = 'RolloutError'
  constructor (readonly code: RolloutErrorCode, message: string) {
    super(message)
  }
}

export function isRolloutError (err: unknown, code?: RolloutErrorCode): err is RolloutError {
  return err instanceof RolloutError && (code === undefined || err.code === code)
}
