// The crash-safe apply journal: one record per apply, rewritten atomically at every phase,
// plus an `active` pointer that is set and cleared in the same batch as the record, so a
// restart always finds the one unfinished apply (if any) and the phase it reached. A record
// that carries a caller's tag also keeps an `unreported` key, in the same batch, until the
// caller says its outcome reached wherever it reports to: a crash between the terminal write
// and that report loses nothing.
import { NixosError } from './errors.js'
import type { ApplyOutcome, Generation } from './types.js'

export type ApplyPhase =
  | 'started' | 'previous-recorded' | 'switched' | 'activating' | 'verifying' | 'rolling-back'
  | 'staged' | 'ok' | 'rolled-back' | 'failed'

export const TERMINAL_PHASES: ReadonlySet<ApplyPhase> = new Set(['ok', 'rolled-back', 'failed'])
const PHASES: ReadonlySet<string> = new Set<ApplyPhase>(['started', 'previous-recorded', 'switched', 'activating', 'verifying', 'rolling-back', 'staged', 'ok', 'rolled-back', 'failed'])

/**
 * What an apply waits for after its activation, bound to the boot it began in (the kernel's
 * boot id), so a restart of the daemon resumes it and a reboot is told apart from one:
 * `confirm`: it ended ok and the host must see a member hold its outcome within `windowMs`,
 * counted from `sinceMs` on that boot's monotonic clock; `reboot`: staged with
 * `switch-to-configuration boot` (phase `staged`), it waits for the next boot.
 */
export interface ApplyHold {
  kind: 'confirm' | 'reboot'
  bootId: string
  windowMs: number
  sinceMs: number
  /** `reboot`: the boot in which the reboot command was asked to run for it (at most once per boot) */
  rebootIn?: string
}

export interface ApplyRecord {
  /**
   * 2 since activations run detached, in a journalled `activating` phase; a version-1 record in
   * `switched` may have been activating (its activation ran inside the old daemon).
   */
  v: 1 | 2
  id: string
  target: string
  phase: ApplyPhase
  /** The generation to return to; null when the profile had none. */
  previous: Generation | null
  switched: Generation | null
  startedAt: number
  updatedAt: number
  /** Why the apply did not end `ok` (a check's failure, an error message). */
  reason: string | null
  /** The caller's own description of the apply (the node's release intent), kept with it. */
  tag: string | null
  /** Set with the terminal phase: what the apply ended in. */
  outcome: ApplyOutcome | null
  /** False while the caller has not yet reported the outcome; untagged applies start true. */
  reported: boolean
  /** Absent or null: nothing is awaited. */
  hold?: ApplyHold | null
  /**
   * A revert's: the generation whose system it brought back. A later revert of that path goes
   * to what was recorded before that generation was applied, not back to the one reverted from.
   */
  restores?: Generation | null
}

export type JournalOp = { type: 'put', key: string, value: string } | { type: 'del', key: string }

/** The subset of an abstract-level database (or sublevel) with utf8 values that the journal uses. */
export interface JournalDb {
  get: (key: string) => Promise<string | undefined>
  batch: (ops: JournalOp[]) => Promise<void>
  values: (range: { gt: string, lt: string, reverse?: boolean, limit?: number }) => AsyncIterable<string>
}

const ACTIVE_KEY = 'active'
const RECORD_PREFIX = 'apply!'
const UNREPORTED_PREFIX = 'unreported!'
const MAX_RECORD_BYTES = 64 * 1024
const MAX_TAG_CHARS = 4096
export const APPLY_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/

export class Journal {
  constructor (private readonly db: JournalDb) {}

  /** The apply that has not reached a terminal phase, if any. */
  async active (): Promise<ApplyRecord | null> {
    const id = await this.db.get(ACTIVE_KEY)
    if (id === undefined) return null
    return await this.require(id, 'active pointer')
  }

  async get (id: string): Promise<ApplyRecord | null> {
    const raw = await this.db.get(RECORD_PREFIX + id)
    return raw === undefined ? null : decodeRecord(raw)
  }

  /** Most recent applies first (ids sort by start time, see newApplyId). */
  async history (limit = 50): Promise<ApplyRecord[]> {
    const out: ApplyRecord[] = []
    for await (const raw of this.db.values({ gt: RECORD_PREFIX, lt: RECORD_PREFIX + '\xff', reverse: true, limit })) {
      out.push(decodeRecord(raw))
    }
    return out
  }

  /** Tagged applies whose outcome the caller has not reported, oldest first. */
  async unreported (): Promise<ApplyRecord[]> {
    const out: ApplyRecord[] = []
    for await (const id of this.db.values({ gt: UNREPORTED_PREFIX, lt: UNREPORTED_PREFIX + '\xff' })) {
      out.push(await this.require(id, 'unreported key'))
    }
    return out.sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1))
  }

  /** Writes the records and moves the active pointer and their unreported keys in one atomic batch. */
  async write (...recs: ApplyRecord[]): Promise<void> {
    await this.db.batch(recs.flatMap((rec): JournalOp[] => {
      const value = encodeRecord(rec)
      const pointer: JournalOp = TERMINAL_PHASES.has(rec.phase)
        ? { type: 'del', key: ACTIVE_KEY }
        : { type: 'put', key: ACTIVE_KEY, value: rec.id }
      const unreported: JournalOp = rec.reported
        ? { type: 'del', key: UNREPORTED_PREFIX + rec.id }
        : { type: 'put', key: UNREPORTED_PREFIX + rec.id, value: rec.id }
      return [{ type: 'put', key: RECORD_PREFIX + rec.id, value }, pointer, unreported]
    }))
  }

  private async require (id: string, what: string): Promise<ApplyRecord> {
    if (!APPLY_ID_RE.test(id)) throw new NixosError('JOURNAL_CORRUPT', `journal ${what} is malformed`)
    const rec = await this.get(id)
    if (rec === null) throw new NixosError('JOURNAL_CORRUPT', `journal ${what} names missing apply ${id}`)
    return rec
  }
}

/** Time-sortable and unique: a zero-padded start time then randomness. */
export function newApplyId (now: number): string {
  return `${String(Math.floor(now)).padStart(15, '0')}-${crypto.randomUUID().slice(0, 8)}`
}

export function encodeRecord (rec: ApplyRecord): string {
  validateRecord(rec)
  // Fixed key order so the same record always encodes to the same bytes.
  return JSON.stringify({
    v: rec.v, id: rec.id, target: rec.target, phase: rec.phase, previous: rec.previous,
    switched: rec.switched, startedAt: rec.startedAt, updatedAt: rec.updatedAt, reason: rec.reason,
    tag: rec.tag, outcome: rec.outcome, reported: rec.reported, ...(rec.hold != null ? { hold: { kind: rec.hold.kind, bootId: rec.hold.bootId, windowMs: rec.hold.windowMs, sinceMs: rec.hold.sinceMs, ...(rec.hold.rebootIn !== undefined ? { rebootIn: rec.hold.rebootIn } : {}) } } : {}),
    ...(rec.restores != null ? { restores: { number: rec.restores.number, path: rec.restores.path } } : {})
  })
}

export function decodeRecord (raw: string): ApplyRecord {
  if (typeof raw !== 'string' || raw.length > MAX_RECORD_BYTES) throw new NixosError('JOURNAL_CORRUPT', 'journal record is oversize or not text')
  let v: unknown
  try {
    v = JSON.parse(raw)
  } catch (err) {
    throw new NixosError('JOURNAL_CORRUPT', 'journal record is not valid JSON (truncated?)', { cause: err })
  }
  // Version-1 records, written before tags and outcomes existed, were reported as they ended.
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && (v as { v?: unknown }).v === 1 && !('reported' in v)) v = { tag: null, outcome: null, reported: true, ...v }
  return validateRecord(v)
}

const bad = (why: string): never => { throw new NixosError('JOURNAL_CORRUPT', `journal record: ${why}`) }

function validateRecord (v: unknown): ApplyRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not an object')
  const r = v as Record<string, unknown>
  const allowed = ['v', 'id', 'target', 'phase', 'previous', 'switched', 'startedAt', 'updatedAt', 'reason', 'tag', 'outcome', 'reported']
  for (const k of Object.keys(r)) if (!allowed.includes(k) && k !== 'hold' && k !== 'restores') bad(`unknown field ${k}`)
  for (const k of allowed) if (!(k in r)) bad(`missing ${k}`)
  if (r.hold != null) validateHold(r.hold)
  if (r.restores != null && !isGeneration(r.restores)) bad('bad restores')
  if ((r.phase === 'staged') !== (r.hold != null && (r.hold as ApplyHold).kind === 'reboot')) bad('a staged apply and only it waits for a reboot')
  if (r.hold != null && (r.hold as ApplyHold).kind === 'confirm' && r.phase !== 'ok') bad('only an apply that ended ok awaits its confirmation')
  if (r.v !== 1 && r.v !== 2) bad('unsupported version')
  if (typeof r.id !== 'string' || !APPLY_ID_RE.test(r.id)) bad('bad id')
  if (!isText(r.target, 512) || r.target === '') bad('bad target')
  if (typeof r.phase !== 'string' || !PHASES.has(r.phase)) bad('bad phase')
  for (const k of ['previous', 'switched'] as const) if (r[k] !== null && !isGeneration(r[k])) bad(`bad ${k}`)
  for (const k of ['startedAt', 'updatedAt'] as const) if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) bad(`bad ${k}`)
  if (r.reason !== null && !isText(r.reason, 16 * 1024)) bad('bad reason')
  if (r.tag !== null && !isText(r.tag, MAX_TAG_CHARS)) bad('bad tag')
  if (typeof r.reported !== 'boolean') bad('bad reported')
  if (r.outcome !== null) validateOutcome(r.outcome, r.id as string)
  if ((r.outcome !== null) !== TERMINAL_PHASES.has(r.phase as ApplyPhase) && !(r.outcome === null && r.reported === true)) bad('outcome does not match phase')
  return r as unknown as ApplyRecord
}

// A staged apply has no outcome yet: it waits for the next boot (phase `staged`).
const OUTCOME_FIELDS: Record<Exclude<ApplyOutcome['status'], 'staged'>, string[]> = {
  ok: ['status', 'id', 'generation'],
  'rolled-back': ['status', 'id', 'generation', 'reason', 'failedCheck'],
  failed: ['status', 'id', 'code', 'reason', 'transient']
}

function validateOutcome (v: unknown, id: string): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('outcome is not an object')
  const o = v as Record<string, unknown>
  const fields = Object.hasOwn(OUTCOME_FIELDS, o.status as string) ? OUTCOME_FIELDS[o.status as keyof typeof OUTCOME_FIELDS] : undefined
  if (fields === undefined) return bad('bad outcome status')
  for (const k of Object.keys(o)) if (!fields.includes(k)) bad(`unknown outcome field ${k}`)
  if (o.id !== id) bad('outcome of another apply')
  if (o.status !== 'failed' && !isGeneration(o.generation)) bad('bad outcome generation')
  if (o.status !== 'ok' && !isText(o.reason, 16 * 1024)) bad('bad outcome reason')
  if (o.status === 'failed' && (!isText(o.code, 64) || (o.transient !== undefined && typeof o.transient !== 'boolean'))) bad('bad failure')
  if (o.status === 'rolled-back' && o.failedCheck !== null) {
    const f = o.failedCheck as Record<string, unknown>
    if (typeof f !== 'object' || f === null || !isText(f.check, 1024) || !isText(f.kind, 16) || !Number.isInteger(f.failures) || !isText(f.output, 16 * 1024)) bad('bad outcome check')
  }
}

function validateHold (v: unknown): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('hold is not an object')
  const h = v as Record<string, unknown>
  for (const k of Object.keys(h)) if (!['kind', 'bootId', 'windowMs', 'sinceMs', 'rebootIn'].includes(k)) bad(`unknown hold field ${k}`)
  if (h.kind !== 'confirm' && h.kind !== 'reboot') bad('bad hold kind')
  if (!isText(h.bootId, 64) || h.bootId === '') bad('bad hold boot id')
  if (h.rebootIn !== undefined && (h.kind !== 'reboot' || !isText(h.rebootIn, 64) || h.rebootIn === '')) bad('bad hold reboot boot id')
  for (const k of ['windowMs', 'sinceMs'] as const) if (typeof h[k] !== 'number' || !Number.isFinite(h[k]) || (h[k] as number) < 0) bad(`bad hold ${k}`)
}

function isText (v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length <= max
}

function isGeneration (v: unknown): v is Generation {
  if (typeof v !== 'object' || v === null) return false
  const g = v as Record<string, unknown>
  return Object.keys(g).length === 2 && Number.isInteger(g.number) && (g.number as number) >= 1 &&
    typeof g.path === 'string' && g.path.length > 0 && g.path.length <= 512
}
