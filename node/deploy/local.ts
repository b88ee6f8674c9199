// An operator's own commands on this host, outside any release: `fleetmesh apply PATH` through
// the same engine, `fleetmesh rollback [--to N]` to an exact generation, and the generations
// themselves. Each is written into this host's feed too.
import { newApplyId, verify, type ApplyOutcome, type Generation } from '../../nixos/index.js'
import { NodeError } from '../errors.js'
import { noteCurrent, type DeployMetrics } from './metrics.js'
import type { NixExecutor } from './nix.js'
import { MAX_OUTPUT_CHARS, type Appender } from './report.js'

export interface LocalDeployComponents {
  nix: Pick<NixExecutor, 'profile' | 'engine' | 'policy'>
  store: Appender
  metrics?: DeployMetrics
}

export class LocalDeploy {
  /** local applies, rollbacks and re-activations running now */
  private inFlight = 0

  constructor (private readonly c: LocalDeployComponents) {}

  /** Whether one of this host's own commands is moving it between generations now (node/drift/). */
  busy (): boolean {
    return this.inFlight > 0
  }

  private async moving<T> (fn: () => Promise<T>): Promise<T> {
    this.inFlight++
    try {
      return await fn()
    } finally {
      this.inFlight--
    }
  }

  /**
   * Brings back the generation at `path` through the same engine as any apply (switched,
   * activated, health-checked, rolled back on failure): the repair of drift (node/drift/), which
   * writes its own entry.
   */
  async reactivate (path: string): Promise<ApplyOutcome> {
    return await this.moving(async () => {
      const outcome = await this.c.nix.engine.apply({ path, sources: [] })
      await noteCurrent(this.c.metrics, this.c.nix.profile)
      return outcome
    })
  }

  /** This host's generations, oldest first, the current one marked. */
  async generations (): Promise<Array<Generation & { current: boolean }>> {
    const profile = this.c.nix.profile
    const current = await profile.current()
    return (await profile.list()).sort((x, y) => x.number - y.number).map((g) => ({ ...g, current: g.number === current?.number }))
  }

  /** The closure difference between generations numbered `a` and `b`. */
  async diff (a: string | null, b: string | null): Promise<{ from: string, to: string, diff: string }> {
    const profile = this.c.nix.profile
    const gens = await profile.list()
    const pick = (n: string | null): string => {
      const g = gens.find((x) => String(x.number) === n)
      if (g === undefined) throw new NodeError('API_NOT_FOUND', `no generation ${n ?? ''}`)
      return g.path
    }
    const from = pick(a)
    const to = pick(b)
    return { from, to, diff: await profile.diff(from, to) }
  }

  /** `nix store diff-closures` between two store paths (`release plan`, `release diff`); throws when this store lacks one. */
  async diffPaths (from: string, to: string): Promise<string> {
    return await this.c.nix.profile.diff(from, to)
  }

  /** `fleetmesh apply PATH`: one host, through the same engine, outside any release. */
  async applyLocal (path: string, sources: string[], dryRun: boolean): Promise<{ preview: string, outcome: ApplyOutcome | null }> {
    const { profile } = this.c.nix
    const preview = await profile.preview(path).catch((err: Error) => `(no preview: ${err.message})`)
    if (dryRun) return { preview, outcome: null }
    return { preview, outcome: await this.moving(async () => await this.applyLocalNow(path, sources)) }
  }

  private async applyLocalNow (path: string, sources: string[]): Promise<ApplyOutcome> {
    const { profile, engine } = this.c.nix
    await this.c.store.append('local-apply', { path, phase: 'start' })
    const outcome = await engine.apply({ path, sources })
    await this.c.store.append('local-apply', { path, phase: 'end', status: outcome.status, ...('reason' in outcome ? { reason: outcome.reason.slice(0, MAX_OUTPUT_CHARS) } : {}) })
    await noteCurrent(this.c.metrics, profile)
    return outcome
  }

  /**
   * `fleetmesh rollback [--to N]`: back to an exact generation, activated and health-checked.
   * Without `--to`, the newest generation before the current one that the engine recorded
   * healthy; never one it recorded failed (an apply rolled back from it, or that failed after
   * switching to it); one it never saw (built outside fleetmesh) only when none was recorded healthy.
   */
  async rollbackLocal (to?: number): Promise<{ generation: Generation, healthy: boolean, failure?: string }> {
    return await this.moving(async () => await this.rollbackLocalNow(to))
  }

  private async rollbackLocalNow (to?: number): Promise<{ generation: Generation, healthy: boolean, failure?: string }> {
    const { profile, engine } = this.c.nix
    const gens = (await profile.list()).sort((a, b) => a.number - b.number)
    const current = await profile.current()
    const target = to !== undefined ? gens.find((g) => g.number === to) : pickRollback(gens, current, await engine.verdicts())
    if (target === undefined) throw new NodeError('API_NOT_FOUND', to !== undefined ? `no generation ${to}` : 'no generation before the current one that was not recorded failed')
    const started = Date.now()
    const generation = await profile.rollback(target)
    await profile.activate(newApplyId(started))
    const verdict = await verify(this.c.nix.policy)
    this.c.metrics?.rolledBack((Date.now() - started) / 1000)
    await this.c.store.append('local-rollback', { from: current?.path ?? null, to: generation.path, number: generation.number, healthy: verdict.ok })
    await noteCurrent(this.c.metrics, profile)
    return { generation, healthy: verdict.ok, ...(verdict.ok ? {} : { failure: `${verdict.failed.check}: ${verdict.failed.output}` }) }
  }
}

function pickRollback (gens: Generation[], current: Generation | null, verdicts: Map<string, 'healthy' | 'failed'>): Generation | undefined {
  const before = gens.filter((g) => current === null || g.number < current.number)
  const verdict = (g: Generation): 'healthy' | 'failed' | undefined => verdicts.get(`${g.number}:${g.path}`)
  return before.filter((g) => verdict(g) === 'healthy').pop() ?? before.filter((g) => verdict(g) === undefined).pop()
}
