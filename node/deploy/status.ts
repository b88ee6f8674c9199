// What the deploy agent shows of itself (GET /v1/status's `deploy`, `release list`, its log lines):
// read-only views of its fold and its decisions.
import type { Generation } from '../../nixos/index.js'
import { effectiveRelease, planOf, releaseStatus, type Decision, type ReleaseStatus, type RolloutState } from '../../protocols/rollout/index.js'
import type { Intent } from './executor.js'
import type { RolloutMembership } from './membership.js'

export interface DeployStatus {
  enabled: boolean
  current: Generation | null
  desired: { release: string, path: string } | null
  applying: Intent | null
  decision: Decision | null
}

/** Where this host stands: what it runs, what its last decision wants it to run, and what it applies now. */
export function deployStatus (state: RolloutState, view: RolloutMembership, self: string, now: Omit<DeployStatus, 'enabled' | 'desired'>): DeployStatus {
  const d = now.decision
  let desired: DeployStatus['desired'] = null
  if (d?.action === 'apply') desired = { release: d.release, path: d.path }
  else if (d?.release !== undefined) {
    const body = effectiveRelease(state, view, d.release)?.body
    const target = body !== undefined ? planOf(state, body, view)?.targetOf.get(self) : undefined
    if (target !== undefined) desired = { release: d.release, path: target.path }
  }
  return { enabled: true, current: now.current, desired, applying: now.applying, decision: d }
}

/** Every release this host knows, newest first, with its fleet-wide status. */
export function releaseList (state: RolloutState, view: RolloutMembership, online: (peer: string) => boolean): ReleaseStatus[] {
  return [...state.releases.keys()]
    .map((id) => releaseStatus(state, view, id, online))
    .filter((s): s is ReleaseStatus => s !== undefined)
    .sort((a, b) => b.number - a.number)
}

/** The fields of a decision's log line when it differs from the last one: a decision is logged as it changes, not every tick. */
export function decisionChange (last: Decision | null, d: Decision): Record<string, unknown> | undefined {
  const reasonOf = (x: Decision | null): string | undefined => x !== null && 'reason' in x ? x.reason : undefined
  if (d.action === last?.action && reasonOf(d) === reasonOf(last) && d.release === last?.release) return undefined
  return { release: d.release, action: d.action, reason: reasonOf(d), wave: 'wave' in d ? d.wave : undefined }
}

/** What an attest's log line says of its body (overdue hosts, lifted pins, the freshness verdict). */
export function attestFields (d: Decision & { action: 'attest' }): Record<string, unknown> {
  if (d.kind === 'overdue') return { why: d.body.why, hosts: d.body.hosts.length }
  if (d.kind === 'unpin') return { lifts: d.body.lifts }
  return { stale: d.body.stale }
}
