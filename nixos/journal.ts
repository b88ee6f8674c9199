// The crash-safe apply journal: one record per apply, rewritten atomically at every phase,
// plus an `active` pointer that is set and cleared in the same batch as the record, so a
// restart always finds the one unfinished apply (if any) and the phase it reached.
import { NixosError } from './errors.js'
import type { Generation } from './types.js'

export type ApplyPhase =
  | 'started' | 'previous-recorded' | 'switched' | 'verifying' | 'rolling-back'
  | 'ok' | 'rolled-back' | 'failed'

export const TERMINAL_PHASES: ReadonlySet<ApplyPhase> = new Set(['ok', 'rolled-back', 'failed'])
const PHASES: ReadonlySet<string> = new Set<ApplyPhase>(['started', 'previous-recorded', 'switched', 'verifying', 'rolling-back', 'ok', 'rolled-back', 'failed'])

export interface ApplyRecord {
  v: 1
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
const MAX_RECORD_BYTES = 64 * 1024
const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/

export class Journal {
  constructor (private readonly db: JournalDb) {}

  /** The apply that has not reached a terminal phase, if any. */
  async active (): Promise<ApplyRecord | null> {
    const id = await this.db.get(ACTIVE_KEY)
    if (id === undefined) return null
    if (!ID_RE.test(id)) throw new NixosError('JOURNAL_CORRUPT', 'journal active pointer is malformed')
    const rec = await this.get(id)
    if (rec === null) throw new NixosError('JOURNAL_CORRUPT', `journal active pointer names missing apply ${id}`)
    return rec
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

  /** Writes the record and moves the active pointer in one atomic batch. */
  async write (rec: ApplyRecord): Promise<void> {
    const value = encodeRecord(rec)
    const pointer: JournalOp = TERMINAL_PHASES.has(rec.phase)
      ? { type: 'del', key: ACTIVE_KEY }
      : { type: 'put', key: ACTIVE_KEY, value: rec.id }
    await this.db.batch([{ type: 'put', key: RECORD_PREFIX + rec.id, value }, pointer])
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
    switched: rec.switched, startedAt: rec.startedAt, updatedAt: rec.updatedAt, reason: rec.reason
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
  return validateRecord(v)
}

function validateRecord (v: unknown): ApplyRecord {
  const bad = (why: string): never => { throw new NixosError('JOURNAL_CORRUPT', `journal record: ${why}`) }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not an object')
  const r = v as Record<string, unknown>
  const allowed = ['v', 'id', 'target', 'phase', 'previous', 'switched', 'startedAt', 'updatedAt', 'reason']
  for (const k of Object.keys(r)) if (!allowed.includes(k)) bad(`unknown field ${k}`)
  if (r.v !== 1) bad('unsupported version')
  if (typeof r.id !== 'string' || !ID_RE.test(r.id)) bad('bad id')
  if (typeof r.target !== 'string' || r.target.length === 0 || r.target.length > 512) bad('bad target')
  if (typeof r.phase !== 'string' || !PHASES.has(r.phase)) bad('bad phase')
  for (const k of ['previous', 'switched'] as const) if (r[k] !== null && !isGeneration(r[k])) bad(`bad ${k}`)
  for (const k of ['startedAt', 'updatedAt'] as const) if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) bad(`bad ${k}`)
  if (r.reason !== null && (typeof r.reason !== 'string' || r.reason.length > 16 * 1024)) bad('bad reason')
  return r as unknown as ApplyRecord
}

function isGeneration (v: unknown): v is Generation {
  if (typeof v !== 'object' || v === null) return false
  const g = v as Record<string, unknown>
  return Object.keys(g).length === 2 && Number.isInteger(g.number) && (g.number as number) >= 1 &&
    typeof g.path === 'string' && g.path.length > 0 && g.path.length <= 512
}
