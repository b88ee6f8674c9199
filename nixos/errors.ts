// Typed errors of the deploy engine. Callers (the node, the CLI) branch on `code`,
// which is stable across releases; messages are for humans and may change.

export type NixosErrorCode =
  | 'NIX_MISSING'
  | 'NIX_COMMAND_FAILED'
  | 'NIX_TIMEOUT'
  | 'INVALID_STORE_PATH'
  | 'PATH_NOT_FETCHED'
  | 'GENERATION_NOT_FOUND'
  | 'ACTIVATION_FAILED'
  | 'HEALTH_CHECK_FAILED'
  | 'INVALID_CONFIG'
  | 'JOURNAL_CORRUPT'
  | 'APPLY_IN_PROGRESS'
  | 'ROLLBACK_FAILED'
  | 'APPLY_INTERRUPTED'
  /** a staged apply a newer one replaced before the reboot */
  | 'APPLY_SUPERSEDED'
  | 'CLOSURE_MALFORMED'
  | 'CLOSURE_TOO_LARGE'
  | 'CLOSURE_HASH_MISMATCH'
  | 'CLOSURE_SIGNATURE_INVALID'
  | 'STORE_VERIFY_FAILED'

export class NixosError extends Error {
  readonly code: NixosErrorCode

  constructor (code: NixosErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'NixosError'
    this.code = code
  }
}

/** A Nix tool exited non-zero (or could not start); carries the tail of its stderr. */
export class NixCommandError extends NixosError {
  readonly command: string
  readonly exitCode: number | null
  readonly stderrTail: string

  constructor (code: 'NIX_MISSING' | 'NIX_COMMAND_FAILED' | 'NIX_TIMEOUT', command: string, exitCode: number | null, stderrTail: string, options?: { cause?: unknown }) {
    super(code, `${command} ${code === 'NIX_TIMEOUT' ? 'timed out' : `failed (exit ${exitCode ?? 'none'})`}: ${stderrTail.trim()}`, options)
    this.name = 'NixCommandError'
    this.command = command
    this.exitCode = exitCode
    this.stderrTail = stderrTail
  }
}

/** The activation command of a generation failed or timed out. */
export class ActivationError extends NixosError {
  readonly outputTail: string

  constructor (message: string, outputTail: string, options?: { cause?: unknown }) {
    super('ACTIVATION_FAILED', `${message}: ${outputTail.trim()}`, options)
    this.name = 'ActivationError'
    this.outputTail = outputTail
  }
}

export class ClosureError extends NixosError {
  constructor (code: 'CLOSURE_MALFORMED' | 'CLOSURE_TOO_LARGE' | 'CLOSURE_HASH_MISMATCH' | 'CLOSURE_SIGNATURE_INVALID' | 'INVALID_STORE_PATH', message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'ClosureError'
  }
}
