// The `drift` entry: a host says, in its own feed, that what it runs drifted from what its log
// says it runs (`detected`), that it tried to bring it back (`repair`), or that the drift it
// reported is gone (`cleared`). Bounded: a broken disk or an attacker rewriting links decides
// how often drift changes, never how large an entry is.
import { STORE_PATH_RE } from '../../crypto/ids.js'
import { DriftError } from './errors.js'

export const DRIFT_KIND = 'drift'
export const DRIFT_STATES = ['detected', 'repair', 'cleared'] as const
/**
 * activation: the activated system is not the one the log says (or, with nothing in the log,
 * not the profile's current generation); profile: the profile's current generation is not the
 * one the log says; store: a path of the running closure no longer matches its recorded hash.
 */
export const DRIFT_WHATS = ['activation', 'profile', 'store'] as const
/** staged: the desired generation changes what only a reboot brings up (kernel, initrd, systemd): made the next boot's */
export const REPAIR_OUTCOMES = ['ok', 'rolled-back', 'failed', 'staged'] as const
/** store paths named in one entry; the rest are counted */
export const MAX_MODIFIED_PATHS = 16
export const MAX_LINK_CHARS = 1024
export const MAX_REASON_CHARS = 1000

export type DriftState = typeof DRIFT_STATES[number]
export type DriftWhat = typeof DRIFT_WHATS[number]
export type RepairOutcome = typeof REPAIR_OUTCOMES[number]

export interface DriftBody {
  v: 1
  state: DriftState
  /** what differs, in DRIFT_WHATS order; empty once cleared */
  what: DriftWhat[]
  /** where the activated system link points (any absolute path: the link is an attacker's to write) */
  activated?: string
  /** the profile's current generation */
  profile?: string
  generation?: number
  /** the generation this host's own log says it runs */
  desired?: string
  /** store paths found modified, at most MAX_MODIFIED_PATHS, of `modifiedCount` */
  modified?: string[]
  modifiedCount?: number
  /** `repair` only */
  outcome?: RepairOutcome
  reason?: string
}

function invalid (field: string, why: string): DriftError {
  return new DriftError('DRIFT_BODY_INVALID', `drift.${field}: ${why}`)
}

function storePath (v: unknown, field: string): void {
  if (typeof v !== 'string' || !STORE_PATH_RE.test(v)) throw invalid(field, 'must be a store path')
}

function text (v: unknown, field: string, max: number): void {
  if (typeof v !== 'string' || v.length === 0) throw invalid(field, 'must be a non-empty string')
  if (v.length > max) throw new DriftError('DRIFT_BODY_TOO_LARGE', `drift.${field}: longer than ${max} characters`)
  if (/[\u0000-\u001f\u007f]/.test(v)) throw invalid(field, 'must hold no control characters')
}

function count (v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(field, 'must be a non-negative integer')
}

function oneOf<T extends string> (v: unknown, field: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) throw invalid(field, `must be one of ${allowed.join(', ')}`)
  return v as T
}

/** Checks a decoded body; returns the same object typed (unknown fields are kept, like rollout's). */
export function parseDrift (body: unknown): DriftBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || body instanceof Uint8Array) throw invalid('body', 'must be a map')
  const b = body as Record<string, unknown>
  if (b.v !== 1) throw invalid('v', 'must be 1')
  const state = oneOf(b.state, 'state', DRIFT_STATES)
  if (!Array.isArray(b.what)) throw invalid('what', 'must be a list')
  if (b.what.length > DRIFT_WHATS.length) throw new DriftError('DRIFT_BODY_TOO_LARGE', `drift.what: more than ${DRIFT_WHATS.length} items`)
  const what = b.what.map((w, i) => oneOf(w, `what[${i}]`, DRIFT_WHATS))
  if (what.some((w, i) => i > 0 && DRIFT_WHATS.indexOf(w) <= DRIFT_WHATS.indexOf(what[i - 1]))) throw invalid('what', `must be distinct, in the order ${DRIFT_WHATS.join(', ')}`)
  if ((state === 'cleared') !== (what.length === 0)) throw invalid('what', state === 'cleared' ? 'must be empty once cleared' : 'must name what differs')
  if (b.activated !== undefined) {
    text(b.activated, 'activated', MAX_LINK_CHARS)
    if (!(b.activated as string).startsWith('/')) throw invalid('activated', 'must be an absolute path')
  }
  if (b.profile !== undefined) storePath(b.profile, 'profile')
  if (b.generation !== undefined) count(b.generation, 'generation')
  if (b.desired !== undefined) storePath(b.desired, 'desired')
  if (b.modified !== undefined) {
    if (!Array.isArray(b.modified)) throw invalid('modified', 'must be a list')
    if (b.modified.length > MAX_MODIFIED_PATHS) throw new DriftError('DRIFT_BODY_TOO_LARGE', `drift.modified: more than ${MAX_MODIFIED_PATHS} paths`)
    b.modified.forEach((p, i) => { storePath(p, `modified[${i}]`) })
  }
  if (b.modifiedCount !== undefined) count(b.modifiedCount, 'modifiedCount')
  if ((b.outcome !== undefined) !== (state === 'repair')) throw invalid('outcome', 'is given exactly for a repair')
  if (b.outcome !== undefined) oneOf(b.outcome, 'outcome', REPAIR_OUTCOMES)
  if (b.reason !== undefined) text(b.reason, 'reason', MAX_REASON_CHARS)
  return b as unknown as DriftBody
}

export const driftSchemas = { [DRIFT_KIND]: parseDrift } as const
