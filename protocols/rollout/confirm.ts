// Confirm-or-revert and deferred activation, as the log records them (issue 14, 5 and 6).
//
// A host that activated a generation writes `confirming {release, path, attempt, windowMs}`, then
// waits to see a member hold that very entry: proof that the new generation kept it in the mesh.
// Seen within the window (measured by the host itself, on its own monotonic clock: DESIGN §8), it
// writes its apply-ok; not seen, it rolls back by itself and writes apply-failed with a reason
// starting `unconfirmed`. A generation that changes the kernel, initrd or systemd is staged for
// the next boot instead: `pending-reboot {release, path, attempt, changes, reboot}`, and after the
// boot the host verifies it and writes its apply-ok (or, back on another system, apply-failed
// `reverted-by-reboot`). Both entries are a host's latest outcome for the release until then, so
// the gate counts the host in flight and not healthy (gates.ts: neither apply-ok nor soaked), and
// the budget counts it in flight: a reboot happens under the release's budget.
// Their schemas are in schema.ts with the other kinds'.
import type { ReleaseOutcomes } from './types.js'

export interface ConfirmingBody { release: string, path: string, attempt: string, windowMs: number, [planned: string]: unknown }
export interface PendingRebootBody { release: string, path: string, attempt: string, changes: string[], reboot: boolean, [planned: string]: unknown }

/** How an apply-failed's `reason` starts when the host could not confirm (the engine's after a reboot: `reverted-by-reboot`). */
export const UNCONFIRMED = 'unconfirmed'

export type AwaitState = 'confirming' | 'pending-reboot'

/** The host waits on the release: its latest outcome entry is `confirming` or `pending-reboot`. */
export function awaitStateOf (outcomes: ReadonlyMap<string, ReleaseOutcomes>, release: string, host: string): AwaitState | undefined {
  const kind = outcomes.get(release)?.latest.get(host)?.kind
  return kind === 'confirming' || kind === 'pending-reboot' ? kind : undefined
}
