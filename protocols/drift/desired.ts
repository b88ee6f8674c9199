// Pure: which generation a host's own log says it runs, and what differs from it. The log's word
// is the newest (by seq, DESIGN §8: order within a feed) of the host's own entries that end an
// apply on a generation: a release's apply-ok, a rollback that worked, an operator's local apply
// that ended ok or local rollback. Entries that leave the host where it was (a failed apply, a
// transient failure, a start) say nothing.
import type { DriftWhat } from './schema.js'

export interface Desired {
  path: string
  /** the entry that says so */
  kind: string
  seq: number
}

interface Said { kind: string, seq: number, body: unknown }

/** The generation one entry says the host runs after it, or undefined when it says nothing. */
export function generationSaid (kind: string, body: unknown): string | undefined {
  const b = (body ?? {}) as Record<string, unknown>
  const path = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined
  switch (kind) {
    case 'apply-ok': return path(b.path)
    case 'rollback': return b.ok === true ? path(b.to) : undefined
    case 'local-apply': return b.phase === 'end' && b.status === 'ok' ? path(b.path) : undefined
    case 'local-rollback': return path(b.to)
    default: return undefined
  }
}

export const DESIRED_KINDS = ['apply-ok', 'rollback', 'local-apply', 'local-rollback'] as const

/** Folds one of the host's own entries in; entries may come in any order, the newest seq wins. */
export function foldDesired (current: Desired | null, e: Said): Desired | null {
  if (current !== null && current.seq >= e.seq) return current
  const path = generationSaid(e.kind, e.body)
  return path === undefined ? current : { path, kind: e.kind, seq: e.seq }
}

export interface Observed {
  /** where the activated system link points; null: no link (not a NixOS host) */
  activated: string | null
  /** the profile's current generation's path; null: no generation */
  profile: string | null
  desired: string | null
  /** modified store paths of the running closure; null: not verified */
  modifiedCount: number | null
}

/**
 * What differs, in DRIFT_WHATS order. With a desired generation, the activated system and the
 * profile are each held to it; without one, the activated system is held to the profile.
 */
export function findDrift (o: Observed): DriftWhat[] {
  const what: DriftWhat[] = []
  const reference = o.desired ?? o.profile
  if (o.activated !== null && reference !== null && o.activated !== reference) what.push('activation')
  if (o.desired !== null && o.profile !== o.desired) what.push('profile')
  if (o.modifiedCount !== null && o.modifiedCount > 0) what.push('store')
  return what
}
