// Typed errors of the node: `code` is stable and the CLI maps each to a one-line message
// and an exit code, so scripts can trust both.
export type NodeErrorCode =
  | 'CONFIG_INVALID'
  | 'DATA_DIR_LOCKED'
  | 'DATA_DIR_INSECURE'
  | 'NOT_INITIALISED'
  | 'ALREADY_INITIALISED'
  | 'DAEMON_NOT_RUNNING'
  | 'API_UNAUTHORISED'
  | 'API_FORBIDDEN'
  | 'API_BAD_REQUEST'
  | 'API_NOT_FOUND'
  | 'NOT_ADMIN'
  | 'DEPLOY_DISABLED'
  | 'DATA_DIR_INVALID'
  | 'LISTEN_FAILED'
  /** a refusal the CLI reports with exit 5: pairing refused, an audit trail that does not verify */
  | 'REFUSED'

export class NodeError extends Error {
  constructor (readonly code: NodeErrorCode, message: string) {
    super(message)
    this.name = 'NodeError'
  }
}

const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of this path is a file, not a directory',
  EEXIST: 'already exists (and is not a directory)',
  EISDIR: 'is a directory, not a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device'
}

/** One line for a file system error Node raised (`ENOENT: …, open '/x'` says less, in its own words). */
export function fileErrorLine (err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException
  const words = typeof e?.code === 'string' ? ERRNO_WORDS[e.code] : undefined
  if (words === undefined || typeof e.path !== 'string') return undefined
  return `${e.path}: ${words}`
}
