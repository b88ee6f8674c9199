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
  /**
   * Releases numbered below it are sealed once this checkpoint counts: final, never applied or
   * reverted again, and their outcomes no longer retained (protocols/rollout/seal.ts). Absent
   * (checkpoints written before sealing, or nothing to seal): 0; never written as 0, so every
   * body has one encoding.
   */
  sealed: number
}

const FIELDS = ['number', 'cover', 'count', 'retain', 'retained']
const OPTIONAL = ['sealed']
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
  for (const k of Object.keys(b)) if (!FIELDS.includes(k) && !OPTIONAL.includes(k)) invalid(`unknown field "${k}"`)
  for (const k of FIELDS) if (!Object.hasOwn(b, k)) invalid(`missing field "${k}"`)
  return {
    number: uint(b.number, 'number', 1),
    cover: root(b.cover, 'cover'),
    count: uint(b.count, 'count', 0),
    retain: root(b.retain, 'retain'),
    retained: uint(b.retained, 'retained', 0),
    sealed: b.sealed === undefined ? 0 : uint(b.sealed, 'sealed', 1)
  }
}

/** The body as signed: `sealed` only when it seals something. */
export function checkpointBody (b: CheckpointBody): Record<string, unknown> {
  const { sealed, ...rest } = b
  return sealed > 0 ? { ...rest, sealed } : rest
}

/** kind → validator, for the audit codec registry's registerParsers. */
export function checkpointSchemas (): Record<string, BodyValidator> {
  return { [CHECKPOINT_KIND]: (body) => { validateCheckpoint(body); return true } }
}
