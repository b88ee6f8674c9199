// Typed errors of the checkpoint folder. `code` is stable: the audit codec registry reports it
// (as BODY_INVALID with this message) and callers branch on it, never on the message.
export type CheckpointErrorCode =
  /** a checkpoint body that breaks its schema (missing or unknown field, wrong type, out of range) */
  | 'CHECKPOINT_BODY_INVALID'

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError'
  constructor (readonly code: CheckpointErrorCode, message: string) {
    super(message)
  }
}

export function isCheckpointError (err: unknown, code?: CheckpointErrorCode): err is CheckpointError {
  return err instanceof CheckpointError && (code === undefined || err.code === code)
}
