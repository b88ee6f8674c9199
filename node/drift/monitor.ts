// Drift detection on this host: what runs (the activated system link), what the profile says,
// what this host's own log says it runs, and whether the running closure's store paths still
// hold what Nix recorded. Checked every `intervalMs` and on demand; a drift is written to this
// host's feed when it appears, changes or clears (ledger.ts), and with `repair` on the desired
// generation is re-activated through the deploy engine (health checks, rollback on failure).
import type { Logger } from 'pino'
import { NixosError, type ApplyOutcome, type Generation, type StoreVerification } from '../../nixos/index.js'
import type { AuditStore, StoredEntry } from '../../protocols/audit/index.js'
import { STORE_PATH_RE } from '../../crypto/ids.js'
import {
  DESIRED_KINDS, DRIFT_KIND, MAX_LINK_CHARS, MAX_MODIFIED_PATHS, MAX_REASON_CHARS, findDrift, foldDesired,
  type Desired, type DriftBody, type DriftState, type DriftWhat, type RepairOutcome
} from '../../protocols/drift/index.js'
import { Mutex } from '../../protocols/mutex.js'
import { DriftLedger } from './ledger.js'
import type { DriftMetrics } from './metrics.js'
import { sleepUnlessAborted } from '../sleep.js'

/** A check waits this long, this many times, for an apply to leave the host settled. */
const BUSY_WAIT_MS = 500
const BUSY_TRIES = 20

/** The machine as Nix sees it (nixos/: the system link, the profile, `nix store verify`). */
export interface HostSystem {
  activated: () => Promise<string | null>
  profile: () => Promise<Generation | null>
  verify: (root: string) => Promise<StoreVerification>
}

/** What drift needs of deploys: whether one moves the host now, and the normal apply path. */
export interface DriftDeploy {
  busy: () => boolean
  reactivate: (path: string) => Promise<ApplyOutcome>
}

export interface DriftMonitorComponents {
  self: string
  store: Pick<AuditStore, 'append' | 'log' | 'on' | 'off'>
  system: HostSystem
  deploy: DriftDeploy
  metrics: DriftMetrics
  log: Pick<Logger, 'info' | 'warn' | 'error'>
  /** deploy.repairDrift */
  repair: boolean
  /** 0: only on demand */
  intervalMs: number
}

export interface StoreReport { root: string, paths: number, modified: string[], modifiedCount: number }

export interface DriftReport {
  at: number
  drift: boolean
  what: DriftWhat[]
  activated: string | null
  profile: Generation | null
  desired: Desired | null
  store: StoreReport | null
  /** why the store could not be verified */
  storeError?: string
  /** why the check could not look at all (an apply kept moving the host, a link unreadable) */
  skipped?: string
  repair?: { outcome: RepairOutcome, reason?: string }
  /** the drift entries this check wrote, in order */
  wrote: DriftState[]
  /** an entry was due but this window's quota of drift entries was spent */
  suppressed?: boolean
}

interface Seen { activated: string | null, profile: Generation | null, desired: Desired | null, store: StoreReport | null, storeError?: string }

// Link targets and Nix's messages are not ours: no control characters into a signed entry.
const printable = (s: string, max: number): string => s.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, max)

export class DriftMonitor {
  private readonly c: DriftMonitorComponents
  private readonly ledger = new DriftLedger()
  private readonly lock = new Mutex()
  private desired: Desired | null = null
  /** moves with every own entry that may change the desired generation: a check that saw it move looks again */
  private version = 0
  private lastReport: DriftReport | null = null
  private timer?: NodeJS.Timeout
  private stopped = false
  private readonly stopping = new AbortController()

  constructor (c: DriftMonitorComponents) {
    this.c = c
  }

  async start (): Promise<void> {
    // Subscribed before the scan: an entry both deliver is folded twice, which changes nothing.
    this.c.store.on('entry', this.onEntry)
    for (const kind of [...DESIRED_KINDS, DRIFT_KIND]) {
      for await (const s of this.c.store.log({ kind })) this.fold(s)
    }
    this.schedule()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    clearTimeout(this.timer)
    this.c.store.off('entry', this.onEntry)
    await this.lock.run(async () => {})
  }

  /** The newest check's report, or null before the first. */
  last (): DriftReport | null {
    return this.lastReport
  }

  /** Checks now (after any check already running). */
  async check (): Promise<DriftReport> {
    return await this.lock.run(async () => {
      const report = await this.checkOnce(this.c.repair)
      this.lastReport = report
      return report
    })
  }

  private schedule (): void {
    if (this.stopped || this.c.intervalMs === 0) return
    this.timer = setTimeout(() => {
      this.check().catch((err: Error) => { this.c.log.error({ err }, 'drift: check failed') }).finally(() => { this.schedule() })
    }, this.c.intervalMs)
    this.timer.unref()
  }

  private readonly onEntry = (s: StoredEntry): void => { this.fold(s) }

  private fold (s: StoredEntry): void {
    const e = s.entry
    if (e.feed !== this.c.self) return
    if (e.kind === DRIFT_KIND) { this.ledger.note(e.seq, e.ts, e.body as DriftBody); return }
    if (!(DESIRED_KINDS as readonly string[]).includes(e.kind)) return
    this.desired = foldDesired(this.desired, { kind: e.kind, seq: e.seq, body: e.body })
    this.version++
  }

  private async checkOnce (mayRepair: boolean): Promise<DriftReport> {
    let seen: Seen | null
    try {
      seen = await this.settled()
    } catch (err) {
      this.c.metrics.checked('failed')
      this.c.log.warn({ err: (err as Error).message }, 'drift: cannot look at this host')
      return { ...this.emptyReport(), skipped: (err as Error).message }
    }
    if (seen === null) {
      this.c.metrics.checked('skipped')
      return { ...this.emptyReport(), skipped: 'an apply kept moving this host between generations' }
    }
    const what = findDrift({ activated: seen.activated, profile: seen.profile?.path ?? null, desired: seen.desired?.path ?? null, modifiedCount: seen.store?.modifiedCount ?? null })
    this.c.metrics.checked(what.length > 0 ? 'drift' : 'clean')
    this.c.metrics.detected(what)
    const report: DriftReport = { at: Date.now(), drift: what.length > 0, what, ...seen, wrote: [] }
    const found = bodyOf(seen, what)
    const due = this.ledger.next(found)
    if (due !== null) await this.write(report, due === 'cleared' ? { ...found, state: 'cleared', what: [] } : found)
    if (what.length > 0 && due === 'detected') this.c.log.warn({ what, activated: seen.activated, profile: seen.profile?.path, desired: seen.desired?.path, modified: seen.store?.modifiedCount }, 'drift: this host differs from what its log says it runs')
    const repairable = what.includes('activation') || what.includes('profile')
    if (!mayRepair || !repairable || seen.desired === null || this.ledger.repaired(found)) return report
    return await this.repair(report, found, seen.desired.path)
  }

  /** Re-activates the desired generation, writes how it went, and looks again. */
  private async repair (report: DriftReport, found: DriftBody, path: string): Promise<DriftReport> {
    this.c.log.warn({ path }, 'drift: re-activating the generation the log says this host runs')
    let outcome: ApplyOutcome
    try {
      outcome = await this.c.deploy.reactivate(path)
    } catch (err) {
      outcome = { status: 'failed', id: '', code: err instanceof NixosError ? err.code : 'NIX_COMMAND_FAILED', reason: (err as Error).message }
    }
    if (outcome.status === 'failed' && outcome.code === 'APPLY_IN_PROGRESS') {
      // Nothing was touched: the next check tries again.
      this.c.log.info('drift: an apply holds the engine; the repair waits for the next check')
      return report
    }
    this.c.metrics.repaired(outcome.status)
    const reason = 'reason' in outcome ? printable(outcome.reason, MAX_REASON_CHARS) : ''
    await this.write(report, { ...found, state: 'repair', outcome: outcome.status, ...(reason !== '' ? { reason } : {}) })
    this.c.log.info({ path, outcome: outcome.status, reason: reason === '' ? undefined : reason }, 'drift: repair ended')
    const after = await this.checkOnce(false)
    return { ...after, repair: { outcome: outcome.status, ...(reason !== '' ? { reason } : {}) }, wrote: [...report.wrote, ...after.wrote], ...(report.suppressed === true || after.suppressed === true ? { suppressed: true } : {}) }
  }

  private async write (report: DriftReport, body: DriftBody): Promise<void> {
    if (!this.ledger.allowed()) {
      report.suppressed = true
      this.c.log.warn({ state: body.state, what: body.what }, 'drift: entry not written: too many drift entries this hour')
      return
    }
    await this.c.store.append(DRIFT_KIND, body)
    report.wrote.push(body.state)
  }

  /**
   * Looks at the host when no apply moves it: an apply seen starting, running or logging its
   * outcome during the look makes it look again. Null when the host never settled.
   */
  private async settled (): Promise<Seen | null> {
    for (let i = 0; i < BUSY_TRIES && !this.stopped; i++) {
      if (i > 0 && !await this.sleep(BUSY_WAIT_MS)) break
      if (this.c.deploy.busy()) continue
      const version = this.version
      const seen = await this.look()
      if (!this.c.deploy.busy() && version === this.version) return seen
    }
    return null
  }

  private async look (): Promise<Seen> {
    const [activated, profile] = await Promise.all([this.c.system.activated(), this.c.system.profile()])
    const desired = this.desired
    // The closure that runs: the activated one when it is a store path, else the profile's.
    const root = activated !== null && STORE_PATH_RE.test(activated) ? activated : profile?.path ?? null
    if (root === null) return { activated, profile, desired, store: null }
    try {
      const v = await this.c.system.verify(root)
      return { activated, profile, desired, store: { root, paths: v.paths, modified: v.modified.map((m) => m.path), modifiedCount: v.modifiedCount } }
    } catch (err) {
      return { activated, profile, desired, store: null, storeError: (err as Error).message }
    }
  }

  private emptyReport (): DriftReport {
    return { at: Date.now(), drift: false, what: [], activated: null, profile: null, desired: this.desired, store: null, wrote: [] }
  }

  private async sleep (ms: number): Promise<boolean> {
    if (this.stopped) return false
    return await sleepUnlessAborted(ms, this.stopping.signal)
  }
}

/** The entry body of what a check saw (its `state` is the caller's to set). */
function bodyOf (seen: Seen, what: DriftWhat[]): DriftBody {
  const modified = seen.store !== null && seen.store.modifiedCount > 0 ? seen.store : null
  return {
    v: 1,
    state: 'detected',
    what,
    ...(seen.activated !== null ? { activated: printable(seen.activated, MAX_LINK_CHARS) } : {}),
    ...(seen.profile !== null && STORE_PATH_RE.test(seen.profile.path) ? { profile: seen.profile.path, generation: seen.profile.number } : {}),
    ...(seen.desired !== null && STORE_PATH_RE.test(seen.desired.path) ? { desired: seen.desired.path } : {}),
    ...(modified !== null ? { modified: modified.modified.slice(0, MAX_MODIFIED_PATHS), modifiedCount: modified.modifiedCount } : {})
  }
}
