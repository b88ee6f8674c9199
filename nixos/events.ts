// What the deploy engine tells its caller while it works: one event per step of an apply (the
// node writes them into its log and metrics) and every health probe. A sink that throws never
// stops an apply: the journal, not the event stream, is what recover() trusts.
import type { NixosErrorCode } from './errors.js'
import type { CheckFailure, HealthCheck, ProbeReport } from './health.js'
import type { ApplyPhase, ApplyRecord } from './journal.js'
import type { Generation } from './types.js'

interface EventBase {
  /** Unique per event: `${applyId}:${uuid}`. */
  id: string
  applyId: string
  /** The store path being applied. */
  target: string
  at: number
}

export type DeployEvent = EventBase & (
  | { kind: 'apply-start', previous: Generation | null }
  | { kind: 'switched', generation: Generation }
  | { kind: 'health-failed', generation: Generation | null, check: string, checkKind: HealthCheck['kind'], failures: number, output: string }
  | { kind: 'rollback', from: Generation | null, to: Generation, reason: string }
  | { kind: 'apply-ok', generation: Generation }
  | { kind: 'staged', generation: Generation, changes: string[] }
  | { kind: 'apply-failed', code: NixosErrorCode, reason: string, rollbackAttempted: boolean }
  | { kind: 'pruned', deleted: number[] }
  | { kind: 'prune-failed', reason: string }
)

/** A health probe of the generation the engine is verifying, a new one or the previous one after a rollback. */
export type EngineProbe = ProbeReport & {
  applyId: string
  generation: Generation | null
  phase: Extract<ApplyPhase, 'verifying' | 'rolling-back'>
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** An event's own fields: the base (id, apply, target, time) is filled in from the apply's record. */
export type EventBody = DistributiveOmit<DeployEvent, keyof EventBase>

export class EngineEvents {
  constructor (
    private readonly now: () => number,
    private readonly onEvent?: (ev: DeployEvent) => void,
    /** Every health probe, kept out of onEvent because probes run many times a second. */
    private readonly onProbe?: (p: EngineProbe) => void
  ) {}

  emit (rec: Pick<ApplyRecord, 'id' | 'target'>, body: EventBody): void {
    const ev = { id: `${rec.id}:${crypto.randomUUID()}`, applyId: rec.id, target: rec.target, at: this.now(), ...body } as DeployEvent
    try {
      this.onEvent?.(ev)
    } catch {
      // The audit sink failing must not leave a host half-deployed.
    }
  }

  healthFailed (rec: Pick<ApplyRecord, 'id' | 'target'>, generation: Generation | null, f: CheckFailure): void {
    this.emit(rec, { kind: 'health-failed', generation, check: f.check, checkKind: f.kind, failures: f.failures, output: f.output })
  }

  /** The probe sink of one verification, when the caller listens for probes. */
  probeReporter (rec: Pick<ApplyRecord, 'id'>, generation: Generation | null, phase: EngineProbe['phase']): ((p: ProbeReport) => void) | undefined {
    const onProbe = this.onProbe
    return onProbe === undefined ? undefined : (p) => { onProbe({ ...p, applyId: rec.id, generation, phase }) }
  }
}
