// Kills a host mid-apply. A CrashExecutor is one incarnation of a host's agent in front of the
// host's executor (its "disk", which outlives the incarnation): armed with a phase, it stops at
// that point of the next apply and calls `onCrash`, which tears the host down as kill -9 would
// (the store closes under the agent). From then on this incarnation forwards nothing: a dead
// process neither finishes its apply nor reports to the journal. The next incarnation gets a new
// CrashExecutor over the same executor, whose journal still holds whatever was not reported.
import type { ApplyOutcome, Generation, HealthVerdict } from '../../nixos/index.js'
import type { Executor, Intent, Unreported } from '../../node/deploy/index.js'

/**
 * Where an apply can die: after apply-start is logged but before the executor began it; after
 * the executor's outcome is in its journal but before the log append; after the append but
 * before the journal heard it was reported; during the gate soak.
 */
export const PHASES = ['before-run', 'after-run', 'before-reported', 'soak'] as const
export type Phase = typeof PHASES[number]

class Killed extends Error {
  constructor () { super('the host was killed') }
}

export class CrashExecutor implements Executor {
  private dead = false
  private readonly waiting: Array<(err: Error) => void> = []

  /** `soakFails`: this host's health fails during its gate soak (asked at every soak, with the path it runs). */
  constructor (private readonly disk: Executor, private phase: Phase | undefined, private readonly onCrash: (phase: Phase) => void, private readonly soakFails: (path: string | undefined) => boolean = () => false) {}

  get killed (): boolean { return this.dead }

  /** Releases every call the dead incarnation left hanging; they reject and change nothing. */
  bury (): void {
    this.dead = true
    for (const reject of this.waiting.splice(0)) reject(new Killed())
  }

  private async at (phase: Phase): Promise<void> {
    if (this.dead) throw new Killed()
    if (this.phase !== phase) return
    this.phase = undefined
    this.dead = true
    this.onCrash(phase)
    await new Promise<never>((_resolve, reject) => { this.waiting.push(reject) })
  }

  async run (intent: Intent, sources: string[]): Promise<ApplyOutcome> {
    await this.at('before-run')
    const outcome = await this.disk.run(intent, sources)
    await this.at('after-run')
    return outcome
  }

  async rollbackSoak (intent: Intent, reason: string): Promise<ApplyOutcome> {
    if (this.dead) throw new Killed()
    return await this.disk.rollbackSoak(intent, reason)
  }

  async unreported (): Promise<Unreported[]> {
    if (this.dead) throw new Killed()
    return await this.disk.unreported()
  }

  async reported (applyId: string): Promise<void> {
    await this.at('before-reported')
    await this.disk.reported(applyId)
  }

  async current (): Promise<Generation | null> {
    if (this.dead) throw new Killed()
    return await this.disk.current()
  }

  async watchHealth (soakMs: number, signal: AbortSignal): Promise<HealthVerdict> {
    if (soakMs > 0) await this.at('soak')
    const verdict = await this.disk.watchHealth(soakMs, signal)
    if (this.dead) throw new Killed()
    if (this.soakFails((await this.disk.current())?.path)) return { ok: false, probes: {}, failed: { check: 'chaos', kind: 'http', failures: 1, output: 'injected health failure during the soak' } }
    return verdict
  }
}
