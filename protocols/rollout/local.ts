// Bodies of the entries a host writes for what an operator did on it by hand, outside any
// release (`fleetmesh apply`, `fleetmesh rollback`): no fold decides from them, but the drift
// check reads which generation the host should run from them (protocols/drift/desired.ts).
import { RolloutError } from './errors.js'
import { parseStorePath } from './schema.js'

export type LocalApplyBody =
  | { path: string, phase: 'start' }
  | { path: string, phase: 'end', status: LocalApplyStatus, reason?: string }
export type LocalApplyStatus = 'ok' | 'rolled-back' | 'failed' | 'staged'
export interface LocalRollbackBody { from: string | null, to: string, number: number, healthy: boolean }

const STATUSES: readonly string[] = ['ok', 'rolled-back', 'failed', 'staged']
/** what node/deploy writes of an engine's reason, with room to spare */
const MAX_REASON_CHARS = 4096

function invalid (kind: string, why: string): never {
  throw new RolloutError('ROLLOUT_BODY_INVALID', `${kind}: ${why}`)
}

function fields (kind: string, body: unknown, allowed: string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) invalid(kind, 'body must be a map')
  const b = body as Record<string, unknown>
  for (const k of Object.keys(b)) if (!allowed.includes(k)) invalid(kind, `unknown field "${k}"`)
  return b
}

export function parseLocalApply (body: unknown): LocalApplyBody {
  const b = fields('local-apply', body, ['path', 'phase', 'status', 'reason'])
  parseStorePath(b.path)
  if (b.phase === 'start') {
    if ('status' in b || 'reason' in b) invalid('local-apply', 'a start carries no status or reason')
  } else if (b.phase === 'end') {
    if (typeof b.status !== 'string' || !STATUSES.includes(b.status)) invalid('local-apply', `status must be one of ${STATUSES.join(', ')}`)
    if ('reason' in b && (typeof b.reason !== 'string' || b.reason.length > MAX_REASON_CHARS)) invalid('local-apply', `reason must be a string of at most ${MAX_REASON_CHARS} characters`)
  } else {
    invalid('local-apply', 'phase must be "start" or "end"')
  }
  return b as unknown as LocalApplyBody
}

export function parseLocalRollback (body: unknown): LocalRollbackBody {
  const b = fields('local-rollback', body, ['from', 'to', 'number', 'healthy'])
  if (b.from !== null) parseStorePath(b.from, 'from')
  parseStorePath(b.to, 'to')
  if (!Number.isSafeInteger(b.number) || (b.number as number) < 0) invalid('local-rollback', 'number must be a generation number')
  if (typeof b.healthy !== 'boolean') invalid('local-rollback', 'healthy must be a boolean')
  return b as unknown as LocalRollbackBody
}

export const localDeploySchemas = { 'local-apply': parseLocalApply, 'local-rollback': parseLocalRollback }
