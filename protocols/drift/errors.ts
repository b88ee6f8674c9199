// Typed errors of drift entries: `code` is stable, the message names the offending field.

export type DriftErrorCode =
  /** a `drift` body that breaks its schema */
  | 'DRIFT_BODY_INVALID'
  /** a `drift` body over one of its bounds */
  | 'DRIFT_BODY_TOO_LARGE'

export class DriftError extends Error {
  readonly code: DriftErrorCode

  constructor (code: DriftErrorCode, message: string) {
    super(message)
    this.name = 'DriftError'
    this.code = code
  }
}
