// What drift detection counts, on the node's registry.
import { Counter, Gauge, type Registry } from 'prom-client'
import { DRIFT_WHATS, type DriftWhat, type RepairOutcome } from '../../protocols/drift/index.js'

/** clean / drift: a check that saw the host; skipped: an apply kept moving it; failed: it could not look */
export type CheckResult = 'clean' | 'drift' | 'skipped' | 'failed'

export interface DriftMetrics {
  checked: (result: CheckResult) => void
  /** what differs now, after a check that saw the host */
  detected: (what: DriftWhat[]) => void
  repaired: (outcome: RepairOutcome) => void
}

export function driftMetrics (registry: Registry): DriftMetrics {
  const detected = new Gauge({ name: 'fleetmesh_drift_detected', help: 'Whether the last drift check found this kind of drift (1) or not (0)', labelNames: ['what'], registers: [registry] })
  const checks = new Counter({ name: 'fleetmesh_drift_checks_total', help: 'Drift checks by result (clean, drift, skipped while an apply ran, failed)', labelNames: ['result'], registers: [registry] })
  const repairs = new Counter({ name: 'fleetmesh_drift_repairs_total', help: 'Re-activations of the desired generation after drift, by outcome', labelNames: ['outcome'], registers: [registry] })
  for (const what of DRIFT_WHATS) detected.set({ what }, 0)
  return {
    checked: (result) => { checks.inc({ result }) },
    detected: (what) => { for (const w of DRIFT_WHATS) detected.set({ what: w }, what.includes(w) ? 1 : 0) },
    repaired: (outcome) => { repairs.inc({ outcome }) }
  }
}
