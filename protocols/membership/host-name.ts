// The host-name syntax, alone in a module without imports: the CLI checks `--name` with it
// before loading anything else, and the admit and genesis schemas (codec.ts) hold names to it.

/** A host name: what `fleetmesh init --name` takes and every command that names a host accepts. */
export const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
export const HOST_NAME_RULE = '1-63 letters, digits, ".", "_" or "-", starting with a letter or digit'

export function isHostName (v: unknown): v is string {
  return typeof v === 'string' && HOST_NAME_RE.test(v)
}
