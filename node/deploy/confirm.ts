// Confirm-or-revert and staged boots, the host's side (protocols/rollout/confirm.ts has the log's
// side): after an activation the host asks the members it is connected to, round after round,
// whether they hold its `confirming` entry (a range request of the audit sync protocol, answered
// with the entry's bytes, checked against its hash). One that does proves the new generation left
// the host in the mesh. The window is measured on the boot's monotonic clock from when the journal
// opened it, so a daemon restart resumes the wait with the time left; nothing here reads another
// host's clock. A generation staged for the next boot is written `pending-reboot`, and rebooted
// into when its release allows it. The deploy agent (agent.ts) owns the executor and the outcomes:
// this module only tells it what became of an attempt.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Logger } from 'pino'
import { monotonicMs, type Generation } from '../../nixos/index.js'
import type { AuditStore } from '../../protocols/audit/index.js'
import { UNCONFIRMED } from '../../protocols/rollout/index.js'
import type { Boots, Unreported } from './executor.js'
import type { OwnAttempts } from './report.js'
import { sleepUnlessAborted } from '../sleep.js'

/** Between rounds of asking the connected members. */
const ROUND_MS = 500

export interface ConfirmComponents {
  /** the window when a release sets none (deploy.confirmWindowMs); 0: this host does not confirm */
  windowMs: number
  /** the members this host is connected to, itself excluded */
  peers: () => string[]
  /** whether `peer` holds this host's entry `seq`, hashing to `hash` */
  holds: (peer: string, seq: number, hash: Uint8Array) => Promise<boolean>
  /** argv that reboots the host (deploy.rebootCommand) */
  rebootCommand: string[]
  /** default ROUND_MS */
  roundMs?: number
}

export type Held = 'confirmed' | 'unconfirmed' | 'stopped'

/**
 * Asks until a member holds the entry, the window closes (`endsAtMs` on the monotonic clock) or
 * `signal` stops the wait. A window that closed while the daemon was down still gets one round.
 */
export async function awaitHeld (c: ConfirmComponents, seq: number, hash: Uint8Array, endsAtMs: number, signal: AbortSignal): Promise<Held> {
  const round = c.roundMs ?? ROUND_MS
  for (;;) {
    const left = endsAtMs - monotonicMs()
    const asked = c.peers().map(async (p) => await c.holds(p, seq, hash).catch(() => false))
    const timeout = new Promise<false>((resolve) => { setTimeout(() => { resolve(false) }, Math.max(round, left)).unref() })
    const any = await Promise.race([Promise.all(asked).then((r) => r.some(Boolean)), firstTrue(asked), timeout])
    if (signal.aborted) return 'stopped'
    if (any) return 'confirmed'
    if (monotonicMs() >= endsAtMs) return 'unconfirmed'
    if (!await sleepUnlessAborted(Math.min(round, Math.max(0, endsAtMs - monotonicMs())), signal)) return 'stopped'
  }
}

/** Resolves true as soon as one resolves true (never otherwise: the others settle the race). */
async function firstTrue (ps: Array<Promise<boolean>>): Promise<true> {
  return await new Promise<true>((resolve) => { for (const p of ps) void p.then((ok) => { if (ok) resolve(true) }) })
}

/** Runs the reboot command; its failure is the caller's to log (the host stays pending-reboot). */
export async function reboot (argv: string[]): Promise<void> {
  const [bin, ...args] = argv
  if (bin === undefined) throw new Error('deploy.rebootCommand is empty')
  await promisify(execFile)(bin, args, { timeout: 60_000 })
}

/** What the confirm flow reads and writes of the deploy agent's host. */
export interface ConfirmHost {
  self: string
  boots: Boots
  own: Pick<OwnAttempts, 'has' | 'seqOf'>
  store: Pick<AuditStore, 'get'>
  /** appends one of this host's entries and folds it */
  append: (kind: string, body: object) => Promise<void>
  /** the fields of a release (as this host resolves it) that this flow reads */
  release: (id: string) => { confirmWindowMs?: number, reboot?: boolean } | undefined
  members: () => string[]
  log: Pick<Logger, 'info' | 'warn' | 'error'>
  /** aborted when the agent stops */
  signal: AbortSignal
}

/** What became of an attempt that waited: confirmed (write its outcome), to roll back (why), or stopped (the restart resumes it). */
export type Verdict = 'confirmed' | 'stopped' | { rollback: string }

export class ConfirmFlow {
  constructor (private readonly c: ConfirmComponents, private readonly h: ConfirmHost) {}

  /** The confirm window of a release's hosts: its own, else this host's configured one (0: none; and for a mesh of one: nobody could confirm). */
  windowOf (release: string): number {
    if (this.h.members().every((m) => m === this.h.self)) return 0
    return this.h.release(release)?.confirmWindowMs ?? this.c.windowMs
  }

  /**
   * Confirm or revert: the window opens in the journal (or resumes there, with the time left on
   * this boot), `confirming` is written, and a member holding it confirms the generation; none
   * within the window, it is to be rolled back (`unconfirmed`). After a reboot inside the window, a
   * generation the host did not come back on is to be rolled back as `reverted-by-reboot`; one it
   * came back on gets a new window on this boot.
   */
  async confirm (u: Unreported): Promise<Verdict> {
    const { intent } = u
    const { boots, log } = this.h
    const attempt = intent.applyId
    const generation = (u.outcome as { generation: Generation }).generation
    let hold = u.hold ?? null
    if (hold !== null && hold.bootId !== await boots.bootId()) {
      const running = await boots.running()
      if (running !== null && running !== generation.path) return { rollback: `reverted-by-reboot: the host rebooted inside the confirm window and came back on ${running}` }
      hold = null
    }
    hold ??= await boots.holdConfirm(attempt, this.windowOf(intent.release))
    if (!this.h.own.has('confirming', attempt)) await this.h.append('confirming', { release: intent.release, path: intent.path, attempt, windowMs: hold.windowMs })
    const seq = this.h.own.seqOf('confirming', attempt) as number
    const stored = await this.h.store.get(this.h.self, seq)
    if (stored === undefined) throw new Error(`confirming entry ${seq} of this host is not in its store`)
    const endsAt = hold.sinceMs + hold.windowMs
    log.info({ release: intent.release, attempt, leftMs: Math.max(0, Math.round(endsAt - monotonicMs())) }, 'deploy: confirming: waiting for a member to hold this host\'s outcome')
    const held = await awaitHeld(this.c, seq, stored.hash, endsAt, this.h.signal)
    if (held === 'confirmed') log.info({ release: intent.release, attempt }, 'deploy: confirmed: a member holds this host\'s outcome')
    if (held !== 'unconfirmed') return held
    log.warn({ release: intent.release, attempt, windowMs: hold.windowMs, reason: UNCONFIRMED }, 'deploy: unconfirmed: no member held this host\'s outcome within the window: rolling back')
    return { rollback: `${UNCONFIRMED}: no member held this host's outcome within ${hold.windowMs} ms of its activation` }
  }

  /**
   * Staged for the next boot: `pending-reboot` in the log (the gate counts the host in flight),
   * and with a release that allows it, the reboot: once per boot (the journal keeps the request
   * with the boot id), so a daemon restart in that boot does not reboot the host again, and a
   * command that failed is left to the operator. The outcome comes after the boot, from the
   * journal: the attempt stays unreported until then.
   */
  async staged (u: Unreported, changes: string[]): Promise<void> {
    const { intent } = u
    const { log } = this.h
    const attempt = intent.applyId
    const allows = this.h.release(intent.release)?.reboot === true
    if (!this.h.own.has('pending-reboot', attempt)) {
      await this.h.append('pending-reboot', { release: intent.release, path: intent.path, attempt, changes, reboot: allows })
      log.info({ release: intent.release, attempt, changes }, 'deploy: staged for the next boot (switch-to-configuration boot): pending reboot')
    }
    if (!allows || !await this.h.boots.requestReboot(attempt)) return
    log.warn({ release: intent.release, attempt, command: this.c.rebootCommand }, 'deploy: rebooting into the staged generation')
    await reboot(this.c.rebootCommand).catch((err: Error) => {
      log.error({ err, release: intent.release, attempt }, 'deploy: the reboot command failed: the host stays pending reboot until it is rebooted')
    })
  }
}
