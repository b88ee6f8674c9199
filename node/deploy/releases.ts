// The operator's release commands as this host signs them: publish, pause/resume/abort and the
// fleet-wide rollback. What each entry must say is decided by protocols/rollout (numbering,
// which pauses a resume lifts, what a rollback returns to); this module only fills the bodies
// from this host's fold and signs them into its own feed.
import { randomBytes } from 'node:crypto'
import { controlState, effectiveRelease, nextReleaseNumber, rollbackTargets, type Basis, type MembershipView, type ReleaseBody, type RolloutState } from '../../protocols/rollout/index.js'
import { NodeError } from '../errors.js'
import type { RolloutMembership } from './membership.js'

export interface PublishParams {
  targets: ReleaseBody['targets']
  waves: ReleaseBody['waves']
  maxFailures: number
  autoRevert?: boolean
  /** how long a started apply may go without an outcome before it counts as failed */
  applyDeadlineMs?: number
}

/** What the commands read and write: this host's fold and membership, and its own feed. */
export interface ReleaseDesk {
  self: string
  state: RolloutState
  view: Pick<RolloutMembership, 'isAdmin' | 'basis'> & MembershipView
  append: (kind: string, body: object) => Promise<void>
  log: { info: (obj: object, msg: string) => void }
}

function admin (d: ReleaseDesk, what: string): void {
  if (!d.view.isAdmin(d.self)) throw new NodeError('NOT_ADMIN', `only admins may ${what}`)
}

/**
 * Signs a release into this admin's feed: numbered one above every admin release seen, with the
 * membership it is planned against (its basis) frozen in.
 */
export async function publishRelease (d: ReleaseDesk, p: PublishParams): Promise<ReleaseBody> {
  admin(d, 'publish releases')
  const number = nextReleaseNumber(d.state, d.view)
  const basis: Basis = d.view.basis()
  const body: ReleaseBody = {
    id: `r${number}-${randomBytes(3).toString('hex')}`,
    number,
    targets: p.targets,
    waves: p.waves,
    maxFailures: p.maxFailures,
    ...(p.autoRevert === true ? { autoRevert: true } : {}),
    ...(p.applyDeadlineMs !== undefined ? { applyDeadlineMs: p.applyDeadlineMs } : {}),
    basis
  }
  await d.append('release', body)
  d.log.info({ release: body.id, number }, 'release published')
  return body
}

/**
 * `release pause|resume|abort`. A resume names every pause in effect that this host sees (so it
 * lifts other admins' pauses it has seen, never unseen ones) and accepts the hosts that failed
 * the release, which is what lifts a halt: a halt stays until an admin says so.
 */
export async function controlRelease (d: ReleaseDesk, release: string, action: 'pause' | 'resume' | 'abort'): Promise<void> {
  admin(d, 'pause, resume or abort releases')
  if (!d.state.releases.has(release)) throw new NodeError('API_NOT_FOUND', `no release ${release}`)
  if (action !== 'resume') {
    await d.append('release-control', { release, action })
    return
  }
  const pauses = controlState(d.state, d.view, release).pauses
  const o = d.state.outcomes.get(release)
  const failed = [...new Set([...o?.failed ?? [], ...(o?.overdue ?? []).filter((r) => r.body.why === 'deadline').flatMap((r) => r.body.hosts)])].sort()
  await d.append('release-control', { release, action, ...(pauses.length > 0 ? { resumes: pauses } : {}), ...(failed.length > 0 ? { accept: failed } : {}) })
}

/**
 * `fleetmesh rollback --release ID`: a new release (so no host ever moves backwards by replaying
 * an old entry) that sends ID's targets back to the paths of the last release the fleet ran
 * healthy, with ID's waves and gates. Never to a halted or never-healthy release.
 */
export async function rollbackRelease (d: ReleaseDesk, id: string): Promise<ReleaseBody> {
  const targets = rollbackTargets(d.state, d.view, id)
  const bad = effectiveRelease(d.state, d.view, id)?.body
  if (targets === undefined || bad === undefined) throw new NodeError('API_NOT_FOUND', `no release ${id}`)
  const back = targets.map(({ target: t, from }) => {
    if (from === undefined) throw new NodeError('API_NOT_FOUND', `no earlier release the fleet ran healthy gave ${t.tag !== undefined ? `tag ${t.tag}` : t.host !== undefined ? `host ${t.host}` : 'every host'} another path to return to`)
    return { ...from.target }
  })
  return await publishRelease(d, { targets: back, waves: bad.waves, maxFailures: bad.maxFailures, autoRevert: bad.autoRevert })
}
