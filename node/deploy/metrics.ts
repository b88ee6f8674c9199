// What deploys count, as hooks: the daemon hangs its Prometheus metrics on them, the simulator
// counts nothing.
import type { ApplyOutcome, Generation } from '../../nixos/index.js'
import type { NodeMetrics } from '../metrics.js'

export interface DeployMetrics {
  /** the generation this host runs ('current') or is moving to ('desired', for a release) */
  generation: (which: 'current' | 'desired', path: string | null, release: string | null) => void
  applied: (outcome: ApplyOutcome['status'], seconds: number) => void
  healthFailed: (check: string) => void
  rolledBack: (seconds: number) => void
}

export function deployMetrics (m: Pick<NodeMetrics, 'setGeneration' | 'applies' | 'applyDuration' | 'healthChecks' | 'rollbackDuration'>): DeployMetrics {
  return {
    generation: (which, path, release) => { m.setGeneration(which, path, release) },
    applied: (outcome, seconds) => {
      m.applies.inc({ outcome })
      m.applyDuration.observe({ outcome }, seconds)
    },
    healthFailed: (check) => { m.healthChecks.inc({ check, result: 'failed' }) },
    rolledBack: (seconds) => { m.rollbackDuration.observe(seconds) }
  }
}

/** Sets the 'current' generation from what the host runs now (none when it cannot tell). */
export async function noteCurrent (metrics: DeployMetrics | undefined, host: { current: () => Promise<Generation | null> }): Promise<void> {
  if (metrics === undefined) return
  const current = await host.current().catch(() => null)
  metrics.generation('current', current?.path ?? null, null)
}
