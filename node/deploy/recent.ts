// The apply an agent's crash loop may fail (node/agents escalation): this host's newest apply-ok,
// with its age on this host's own clocks. Written by this process, the age counts from the write
// on the monotonic clock. Written before a restart (an activation may restart fleetmesh itself,
// and the agents it brings start with the new daemon), it counts from the entry's own ts, read on
// this host's wall clock (its own claim, DESIGN §8), and only while that generation is still the
// one the profile runs.
import type { Generation } from '../../nixos/index.js'
import type { Entry } from '../../protocols/audit/index.js'
import type { SoakWatch } from '../../protocols/rollout/index.js'
import type { OwnAttempts } from './report.js'

export interface RecentOk { release: string, path: string, attempt: string }

export class RecentApply {
  private ok: { watch: SoakWatch, at: number } | undefined
  /** this host's newest apply-ok in the log, until start() settles it */
  private newest: Pick<Entry, 'seq' | 'ts' | 'body'> | undefined

  constructor (private readonly self: string, private readonly own: Pick<OwnAttempts, 'has'>) {}

  /** Files one entry of the log at start. */
  note (e: Pick<Entry, 'feed' | 'kind' | 'seq' | 'ts' | 'body'>): void {
    if (e.feed === this.self && e.kind === 'apply-ok' && (this.newest === undefined || e.seq > this.newest.seq)) this.newest = e
  }

  /** After the log is folded: the newest apply-ok counts if the profile still runs its generation. */
  resume (current: Generation | null, now = Date.now()): void {
    const e = this.newest
    this.newest = undefined
    const b = e?.body as { release?: unknown, path?: unknown, attempt?: unknown } | undefined
    if (e === undefined || typeof b?.release !== 'string' || typeof b.attempt !== 'string' || typeof b.path !== 'string' || b.path !== current?.path) return
    const ageMs = Math.max(0, now - e.ts)
    this.ok = { watch: { release: b.release, path: b.path, attempt: b.attempt, soakMs: 0 }, at: performance.now() - ageMs }
  }

  /** This process wrote an apply-ok: it is the newest. */
  written (ok: RecentOk): void {
    this.newest = undefined
    this.ok = { watch: { ...ok, soakMs: 0 }, at: performance.now() }
  }

  /** The newest apply-ok if it came within `withinMs` and this host has failed or rolled back nothing of that attempt since. */
  within (withinMs: number): { release: string, attempt: string } | undefined {
    const r = this.ok
    if (r === undefined || performance.now() - r.at > withinMs || this.own.has('apply-failed', r.watch.attempt) || this.own.has('rollback', r.watch.attempt)) return undefined
    return { release: r.watch.release, attempt: r.watch.attempt }
  }

  /** The watch of `attempt` when it is the newest apply-ok. */
  of (attempt: string): SoakWatch | undefined {
    return this.ok?.watch.attempt === attempt ? this.ok.watch : undefined
  }
}
