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

export class NodeError extends Error {
  constructor (readonly code: NodeErrorCode, message: string) {
    super(message)
    this.name = 'NodeError'
  }
}
