// Body schemas of the rollout kinds. Each parser checks a body that the audit codec has already
// decoded into the canonical data model, throws a RolloutError naming the offending field, and
// returns the SAME object typed: unknown optional fields are preserved, never stripped, so
// entries written by newer code (planned features) keep their meaning when re-read.
import { FEED_RE, STORE_PATH_RE, TAG_RE } from '../../crypto/ids.js'
import { RolloutError } from './errors.js'
import type { ConfirmingBody, PendingRebootBody } from './confirm.js'
import type {
  ApplyFailedBody, BudgetBody, ApplyOkBody, ApplyStartBody, ControlAction, Gate, HealthBody, OverdueBody, OverdueWhy, PinBody,
  QuarantineBody, QuarantineClearBody, ReleaseBody, ReleaseFloorBody, ReleaseSeenBody, ReleaseControlBody, RollbackBody, SoakedBody, Target, UnpinBody, Wave
} from './types.js'

// Bounds keep a hostile admin (or a corrupt store) from making every host fold a giant plan.
export const MAX_TARGETS = 1024
export const MAX_WAVES = 64
export const MAX_WAVE_HOSTS = 100_000
export const MAX_SOURCES = 16
/** feeds holding membership entries: admins write them, so this is far above any real mesh */
export const MAX_BASIS_FEEDS = 4096
export const MAX_RESUMES = 1024
/** entries an unpin or a quarantine-clear names: the CLI names every one in effect */
export const MAX_LIFTS = 1024
/** a pin's expiry: at most ten years */
export const MAX_PIN_EXPIRY_MS = 10 * 365 * 86_400_000
/**
 * The shortest freshness window: twice the audit layer's bound on a received entry's claimed time
 * (CLOCK_SKEW_MS, 5 min), so hosts whose clocks are off by no more than that do not refuse a
 * release they held at once.
 */
export const MIN_FRESH_FOR_MS = 10 * 60_000
/** the longest freshness window: ten years, as for a pin's expiry */
export const MAX_FRESH_FOR_MS = MAX_PIN_EXPIRY_MS
const MAX_ID_CHARS = 128
const MAX_PEER_CHARS = 128
const MAX_TAG_CHARS = 64
const MAX_URL_CHARS = 1024
const MAX_REASON_CHARS = 1024
const MAX_OUTPUT_CHARS = 4096

// Release ids appear in CLI arguments and log lines: no whitespace or control characters.
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@+-]*$/
const CONTROL_ACTIONS: readonly ControlAction[] = ['pause', 'resume', 'abort']
const OVERDUE_WHY: readonly OverdueWhy[] = ['silent', 'deadline']
// the executor's apply id
const ATTEMPT_RE = /^[A-Za-z0-9._:-]{1,128}$/
// "feed:seq" of a pause a resume lifts
const ENTRY_REF_RE = /^[1-9A-HJ-NP-Za-km-z]{1,128}:(0|[1-9][0-9]{0,15})$/

function invalid (path: string, why: string): RolloutError {
  return new RolloutError('ROLLOUT_BODY_INVALID', `${path}: ${why}`)
}

function record (v: unknown, path: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw invalid(path, 'must be a map')
  return v as Record<string, unknown>
}

function str (v: unknown, path: string, max: number, re?: RegExp): string {
  if (typeof v !== 'string' || v.length === 0) throw invalid(path, 'must be a non-empty string')
  if (v.length > max) throw new RolloutError('ROLLOUT_BODY_TOO_LARGE', `${path}: longer than ${max} characters`)
  if (re !== undefined && !re.test(v)) throw invalid(path, `must match ${re}`)
  return v
}

function optStr (v: unknown, path: string, max: number, re?: RegExp): void {
  if (v !== undefined) str(v, path, max, re)
}

function int (v: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalid(path, 'must be an integer')
  if (v < min || v > max) throw invalid(path, `must be in ${min}..${max}`)
  return v
}

function optInt (v: unknown, path: string, min: number, max?: number): void {
  if (v !== undefined) int(v, path, min, max)
}

function bool (v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw invalid(path, 'must be a boolean')
  return v
}

function list (v: unknown, path: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalid(path, 'must be a list')
  if (v.length > max) throw new RolloutError('ROLLOUT_BODY_TOO_LARGE', `${path}: more than ${max} items`)
  if (v.length < min) throw invalid(path, `needs at least ${min} item${min === 1 ? '' : 's'}`)
  return v
}

export function parseStorePath (v: unknown, path = 'path'): string {
  return str(v, path, 255, STORE_PATH_RE)
}

export function parseReleaseId (v: unknown, path = 'release'): string {
  return str(v, path, MAX_ID_CHARS, ID_RE)
}

function optAttempt (v: unknown, path: string): void {
  optStr(v, path, 128, ATTEMPT_RE)
}

function peers (v: unknown, path: string, min: number): void {
  list(v, path, min, MAX_WAVE_HOSTS).forEach((h, i) => str(h, `${path}[${i}]`, MAX_PEER_CHARS, FEED_RE))
}

function basis (v: unknown, path: string): void {
  const b = record(v, path)
  const feeds = Object.keys(b)
  if (feeds.length > MAX_BASIS_FEEDS) throw new RolloutError('ROLLOUT_BODY_TOO_LARGE', `${path}: more than ${MAX_BASIS_FEEDS} feeds`)
  for (const f of feeds) {
    str(f, `${path} key`, MAX_PEER_CHARS, FEED_RE)
    int(b[f], `${path}.${f}`, 0)
  }
}

function source (v: unknown, path: string): void {
  const s = str(v, path, MAX_URL_CHARS)
  if (s !== 'peers' && !URL.canParse(s)) throw invalid(path, "must be a substituter URL or 'peers'")
}

function target (v: unknown, path: string): Target {
  const t = record(v, path)
  optStr(t.host, `${path}.host`, MAX_PEER_CHARS, FEED_RE)
  optStr(t.tag, `${path}.tag`, MAX_TAG_CHARS, TAG_RE)
  // both would be an AND nobody asked for; neither means "every member"
  if (t.host !== undefined && t.tag !== undefined) throw invalid(path, 'names a host or a tag, not both')
  parseStorePath(t.path, `${path}.path`)
  list(t.sources, `${path}.sources`, 1, MAX_SOURCES).forEach((s, i) => source(s, `${path}.sources[${i}]`))
  return t as Target
}

function gate (v: unknown, path: string): Gate {
  const g = record(v, path)
  int(g.healthy, `${path}.healthy`, 0, 100)
  int(g.soakMs, `${path}.soakMs`, 0)
  return g as Gate
}

function wave (v: unknown, path: string): Wave {
  const w = record(v, path)
  const selectors = ['hosts', 'tag', 'count', 'percent'].filter(k => w[k] !== undefined)
  if (selectors.length !== 1) throw invalid(path, 'needs exactly one of hosts, tag, count, percent')
  if (w.hosts !== undefined) peers(w.hosts, `${path}.hosts`, 1)
  optStr(w.tag, `${path}.tag`, MAX_TAG_CHARS, TAG_RE)
  optInt(w.count, `${path}.count`, 1)
  optInt(w.percent, `${path}.percent`, 1, 100)
  gate(w.gate, `${path}.gate`)
  optInt(w.waitOfflineMs, `${path}.waitOfflineMs`, 0)
  if (w.after !== undefined) str(record(w.after, `${path}.after`).tag, `${path}.after.tag`, MAX_TAG_CHARS, TAG_RE)
  return w as Wave
}

// Other keys are carried; budgets per tag across releases are `budget` entries (tag-budget.ts).
function budget (v: unknown, path: string): void {
  const b = record(v, path)
  if ((b.maxInFlight === undefined) === (b.maxInFlightPercent === undefined)) throw invalid(path, 'needs exactly one of maxInFlight, maxInFlightPercent')
  optInt(b.maxInFlight, `${path}.maxInFlight`, 1, MAX_WAVE_HOSTS)
  optInt(b.maxInFlightPercent, `${path}.maxInFlightPercent`, 1, 100)
}

export function parseRelease (body: unknown): ReleaseBody {
  const r = record(body, 'release')
  parseReleaseId(r.id, 'release.id')
  int(r.number, 'release.number', 1)
  list(r.targets, 'release.targets', 1, MAX_TARGETS).forEach((t, i) => target(t, `release.targets[${i}]`))
  list(r.waves, 'release.waves', 1, MAX_WAVES).forEach((w, i) => wave(w, `release.waves[${i}]`))
  int(r.maxFailures, 'release.maxFailures', 0)
  if (r.autoRevert !== undefined) bool(r.autoRevert, 'release.autoRevert')
  optInt(r.notBefore, 'release.notBefore', 0)
  optInt(r.expiresAt, 'release.expiresAt', 0)
  if (r.budget !== undefined) budget(r.budget, 'release.budget')
  optInt(r.freshForMs, 'release.freshForMs', MIN_FRESH_FOR_MS, MAX_FRESH_FOR_MS)
  if (r.after !== undefined) parseReleaseId(r.after, 'release.after')
  if (r.after === r.id) throw invalid('release.after', 'a release cannot wait for itself')
  if (r.basis !== undefined) basis(r.basis, 'release.basis')
  optInt(r.applyDeadlineMs, 'release.applyDeadlineMs', 1)
  optInt(r.quarantineAfter, 'release.quarantineAfter', 1, MAX_WAVE_HOSTS)
  optInt(r.confirmWindowMs, 'release.confirmWindowMs', 0, MAX_CONFIRM_WINDOW_MS)
  if (r.reboot !== undefined) bool(r.reboot, 'release.reboot')
  return r as ReleaseBody
}

export function parseReleaseControl (body: unknown): ReleaseControlBody {
  const c = record(body, 'release-control')
  parseReleaseId(c.release, 'release-control.release')
  if (!CONTROL_ACTIONS.includes(c.action as ControlAction)) throw invalid('release-control.action', `must be one of ${CONTROL_ACTIONS.join(', ')}`)
  if ((c.resumes !== undefined || c.accept !== undefined) && c.action !== 'resume') throw invalid('release-control', 'only a resume names pauses or accepted hosts')
  if (c.resumes !== undefined) {
    list(c.resumes, 'release-control.resumes', 1, MAX_RESUMES).forEach((r, i) => str(r, `release-control.resumes[${i}]`, 150, ENTRY_REF_RE))
  }
  if (c.accept !== undefined) peers(c.accept, 'release-control.accept', 1)
  return c as ReleaseControlBody
}

export function parseApplyStart (body: unknown): ApplyStartBody {
  const b = record(body, 'apply-start')
  parseReleaseId(b.release, 'apply-start.release')
  parseStorePath(b.path, 'apply-start.path')
  int(b.wave, 'apply-start.wave', 0, MAX_WAVES - 1)
  optAttempt(b.attempt, 'apply-start.attempt')
  return b as ApplyStartBody
}

export function parseApplyOk (body: unknown): ApplyOkBody {
  const b = record(body, 'apply-ok')
  parseReleaseId(b.release, 'apply-ok.release')
  parseStorePath(b.path, 'apply-ok.path')
  int(b.healthyAt, 'apply-ok.healthyAt', 0)
  optAttempt(b.attempt, 'apply-ok.attempt')
  return b as ApplyOkBody
}

export function parseApplyFailed (body: unknown): ApplyFailedBody {
  const b = record(body, 'apply-failed')
  parseReleaseId(b.release, 'apply-failed.release')
  parseStorePath(b.path, 'apply-failed.path')
  str(b.reason, 'apply-failed.reason', MAX_REASON_CHARS)
  optStr(b.check, 'apply-failed.check', MAX_ID_CHARS)
  optAttempt(b.attempt, 'apply-failed.attempt')
  return b as ApplyFailedBody
}

export function parseRollback (body: unknown): RollbackBody {
  const b = record(body, 'rollback')
  parseReleaseId(b.release, 'rollback.release')
  parseStorePath(b.from, 'rollback.from')
  parseStorePath(b.to, 'rollback.to')
  bool(b.ok, 'rollback.ok')
  optAttempt(b.attempt, 'rollback.attempt')
  return b as RollbackBody
}

export function parseHealth (body: unknown): HealthBody {
  const b = record(body, 'health')
  if (b.release !== undefined) parseReleaseId(b.release, 'health.release')
  parseStorePath(b.path, 'health.path')
  bool(b.ok, 'health.ok')
  optStr(b.check, 'health.check', MAX_ID_CHARS)
  if (b.output !== undefined && typeof b.output !== 'string') throw invalid('health.output', 'must be a string')
  if (typeof b.output === 'string' && b.output.length > MAX_OUTPUT_CHARS) throw new RolloutError('ROLLOUT_BODY_TOO_LARGE', `health.output: longer than ${MAX_OUTPUT_CHARS} characters`)
  return b as HealthBody
}

export function parseSoaked (body: unknown): SoakedBody {
  const b = record(body, 'soaked')
  parseReleaseId(b.release, 'soaked.release')
  parseStorePath(b.path, 'soaked.path')
  str(b.attempt, 'soaked.attempt', 128, ATTEMPT_RE)
  int(b.soakMs, 'soaked.soakMs', 0)
  return b as SoakedBody
}

export function parseOverdue (body: unknown): OverdueBody {
  const b = record(body, 'overdue')
  parseReleaseId(b.release, 'overdue.release')
  int(b.wave, 'overdue.wave', 0, MAX_WAVES - 1)
  peers(b.hosts, 'overdue.hosts', 1)
  if (!OVERDUE_WHY.includes(b.why as OverdueWhy)) throw invalid('overdue.why', `must be one of ${OVERDUE_WHY.join(', ')}`)
  return b as OverdueBody
}

function entryRefs (v: unknown, path: string): void {
  if (v !== undefined) list(v, path, 1, MAX_LIFTS).forEach((r, i) => str(r, `${path}[${i}]`, 150, ENTRY_REF_RE))
}

export function parsePin (body: unknown): PinBody {
  const b = record(body, 'pin')
  str(b.host, 'pin.host', MAX_PEER_CHARS, FEED_RE)
  parseStorePath(b.path, 'pin.path')
  str(b.reason, 'pin.reason', MAX_REASON_CHARS)
  optInt(b.expiresMs, 'pin.expiresMs', 1, MAX_PIN_EXPIRY_MS)
  return b as PinBody
}

export function parseUnpin (body: unknown): UnpinBody {
  const b = record(body, 'unpin')
  str(b.host, 'unpin.host', MAX_PEER_CHARS, FEED_RE)
  entryRefs(b.lifts, 'unpin.lifts')
  if (b.expired !== undefined) bool(b.expired, 'unpin.expired')
  if (b.expired === true && b.lifts === undefined) throw invalid('unpin', 'an expiry names the pins it lifts')
  return b as UnpinBody
}

export function parseQuarantine (body: unknown): QuarantineBody {
  const b = record(body, 'quarantine')
  parseStorePath(b.path, 'quarantine.path')
  str(b.reason, 'quarantine.reason', MAX_REASON_CHARS)
  return b as QuarantineBody
}

export function parseQuarantineClear (body: unknown): QuarantineClearBody {
  const b = record(body, 'quarantine-clear')
  parseStorePath(b.path, 'quarantine-clear.path')
  entryRefs(b.clears, 'quarantine-clear.clears')
  return b as QuarantineClearBody
}

export function parseReleaseSeen (body: unknown): ReleaseSeenBody {
  const b = record(body, 'release-seen')
  parseReleaseId(b.release, 'release-seen.release')
  bool(b.stale, 'release-seen.stale')
  return b as ReleaseSeenBody
}

/** The longest confirm window (confirm.ts) a release or a host may ask for: one hour. */
export const MAX_CONFIRM_WINDOW_MS = 60 * 60_000
const BOOT_LINKS = ['kernel', 'initrd', 'systemd']

export function parseConfirming (body: unknown): ConfirmingBody {
  const b = record(body, 'confirming')
  parseReleaseId(b.release, 'confirming.release')
  parseStorePath(b.path, 'confirming.path')
  str(b.attempt, 'confirming.attempt', 128, ATTEMPT_RE)
  int(b.windowMs, 'confirming.windowMs', 1, MAX_CONFIRM_WINDOW_MS)
  return b as ConfirmingBody
}

export function parsePendingReboot (body: unknown): PendingRebootBody {
  const b = record(body, 'pending-reboot')
  parseReleaseId(b.release, 'pending-reboot.release')
  parseStorePath(b.path, 'pending-reboot.path')
  str(b.attempt, 'pending-reboot.attempt', 128, ATTEMPT_RE)
  list(b.changes, 'pending-reboot.changes', 0, BOOT_LINKS.length).forEach((c, i) => { if (!BOOT_LINKS.includes(c as string)) throw invalid(`pending-reboot.changes[${i}]`, `must be one of ${BOOT_LINKS.join(', ')}`) })
  bool(b.reboot, 'pending-reboot.reboot')
  return b as PendingRebootBody
}

export function parseReleaseFloor (body: unknown): ReleaseFloorBody {
  const b = record(body, 'release-floor')
  int(b.number, 'release-floor.number', 1)
  str(b.reason, 'release-floor.reason', MAX_REASON_CHARS)
  return b as ReleaseFloorBody
}

/** The selectors a budget entry takes: a tag for now. */
export const BUDGET_SELECTOR_RE = new RegExp(`^tag:${TAG_RE.source.replace(/^\^/, '').replace(/\$$/, '')}$`)

export function parseBudget (body: unknown): BudgetBody {
  const b = record(body, 'budget')
  str(b.selector, 'budget.selector', MAX_TAG_CHARS + 4, BUDGET_SELECTOR_RE)
  optInt(b.max, 'budget.max', 1, MAX_WAVE_HOSTS)
  entryRefs(b.lifts, 'budget.lifts')
  return b as BudgetBody
}

/** One parser per rollout kind; state.ts folds only bodies that pass. */
export const rolloutSchemas = {
  release: parseRelease,
  'release-control': parseReleaseControl,
  'apply-start': parseApplyStart,
  'apply-ok': parseApplyOk,
  'apply-failed': parseApplyFailed,
  rollback: parseRollback,
  health: parseHealth,
  soaked: parseSoaked,
  overdue: parseOverdue,
  pin: parsePin,
  unpin: parseUnpin,
  quarantine: parseQuarantine,
  'quarantine-clear': parseQuarantineClear,
  'release-seen': parseReleaseSeen,
  'release-floor': parseReleaseFloor,
  confirming: parseConfirming,
  'pending-reboot': parsePendingReboot,
  budget: parseBudget
} as const

export type RolloutKind = keyof typeof rolloutSchemas

