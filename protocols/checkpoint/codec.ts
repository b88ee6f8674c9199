// The checkpoint entry body: constant size whatever the fleet, because the cover (the heads it
// summarises) and the retained refs (the entries every host keeps below it) travel apart and are
// checked against the two roots signed here (protocols/audit/heads-root.ts).
import type { BodyValidator } from '../audit/index.js'
import { CheckpointError } from './errors.js'

export const CHECKPOINT_KIND = 'checkpoint'

export interface CheckpointBody {
  /** above every counted checkpoint its signer had seen */
  number: number
  /** headsRoot of the covered heads: the signer's heads when it wrote it, minus forked feeds */
  cover: Uint8Array
  /** how many heads the cover has */
  count: number
  /** headsRoot of the retained refs: the covered entries every host keeps (retain.ts) */
  retain: Uint8Array
  /** how many refs */
  retained: number
}

const FIELDS = ['number', 'cover', 'count', 'retain', 'retained']
const ROOT_BYTES = 32

function invalid (message: string): never {
  throw new CheckpointError('CHECKPOINT_BODY_INVALID', `checkpoint: ${message}`)
}

function uint (v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) invalid(`${field} must be an integer >= ${min}`)
  return v
}

function root (v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== ROOT_BYTES) invalid(`${field} must be ${ROOT_BYTES} bytes`)
  return v
}

/** The typed body; throws CheckpointError(CHECKPOINT_BODY_INVALID) on anything else. */
export function validateCheckpoint (body: unknown): CheckpointBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) invalid('body must be a map')
  const b = body as Record<string, unknown>
  for (const k of Object.keys(b)) if (!FIELDS.includes(k)) invalid(`unknown field "${k}"`)
  for (const k of FIELDS) if (!Object.hasOwn(b, k)) invalid(`missing field "${k}"`)
  return {
    number: uint(b.number, 'number', 1),
    cover: root(b.cover, 'cover'),
    count: uint(b.count, 'count', 0),
    retain: root(b.retain, 'retain'),
    retained: uint(b.retained, 'retained', 0)
  }
}

/** kind → validator, for the audit codec registry's registerParsers. */
export function checkpointSchemas (): Record<string, BodyValidator> {
  return { [CHECKPOINT_KIND]: (body) => { validateCheckpoint(body); return true } }
}
