// The operator's release commands as this host signs them: publish, pause/resume/abort and the
// fleet-wide rollback. What each entry must say is decided by protocols/rollout (numbering,
// which pauses a resume lifts, what a rollback returns to); this module only fills the bodies
// from this host's fold and signs them into its own feed.
import { createHash } from 'node:crypto'
import { budgetLifts, controlState, edgeDeadlock, parseBudget, tagBudgets, effectiveRelease, holdsStatus, nextReleaseNumber, parsePin, parseQuarantine, parseReleaseFloor, pinsOf, planRelease, refOf, releaseFloor, rollbackTargets, type Basis, type Budget, type MembershipView, type PinBody, type QuarantineBody, type ReleaseBody, type ReleaseFloorBody, type RolloutState } from '../../protocols/rollout/index.js'
import { NodeError } from '../errors.js'
import type { RolloutMembership } from './membership.js'

export interface PublishParams {
  targets: ReleaseBody['targets']
  waves: ReleaseBody['waves']
  maxFailures: number
  autoRevert?: boolean
  /** how long a started apply may go without an outcome before it counts as failed */
  applyDeadlineMs?: number
  /** hosts that must fail after activating a path before it is quarantined fleet-wide (default 1) */
  quarantineAfter?: number
  /** a host that first decides on the release this long after it was signed refuses it */
  freshForMs?: number
  /** the id of a release this one waits for (it must be known here) */
  after?: string
  /** at most this many (or this percentage) of its hosts in flight at once */
  budget?: Budget
  /** hosts reboot into a generation staged for the next boot (confirm.ts in protocols/rollout) */
  reboot?: boolean
  /** the confirm-or-revert window of its hosts (0: off); default each host's own */
  confirmWindowMs?: number
}

/** The optional release fields a publish carries over from its parameters, as the schema names them. */
export function optionalFields (p: Partial<PublishParams>): Partial<ReleaseBody> {
  return {
    ...(p.autoRevert === true ? { autoRevert: true } : {}),
    ...(p.applyDeadlineMs !== undefined ? { applyDeadlineMs: p.applyDeadlineMs } : {}),
    ...(p.quarantineAfter !== undefined ? { quarantineAfter: p.quarantineAfter } : {}),
    ...(p.freshForMs !== undefined ? { freshForMs: p.freshForMs } : {}),
    ...(p.after !== undefined ? { after: p.after } : {}),
    ...(p.budget !== undefined ? { budget: p.budget } : {}),
    ...(p.reboot === true ? { reboot: true } : {}),
    ...(p.confirmWindowMs !== undefined ? { confirmWindowMs: p.confirmWindowMs } : {})
  }
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
 * The release this admin would sign now: numbered one above every admin release seen, with the
 * membership it is planned against (its basis) frozen in, and an id derived from the signer and
 * all of that — so `release plan` shows the very waves a publish made next gives (count and
 * percent waves are assigned by the id), as long as no release or membership entry arrives in
 * between; two admins never derive the same id.
 */
export function draftRelease (d: Pick<ReleaseDesk, 'self' | 'state' | 'view'>, p: PublishParams): ReleaseBody {
  // at the floor at least: a release numbered below it would be refused by every host
  const number = Math.max(nextReleaseNumber(d.state, d.view), releaseFloor(d.state.holds.fresh, d.view)?.body.number ?? 0)
  const basis: Basis = d.view.basis()
  const fields = { targets: p.targets, waves: p.waves, maxFailures: p.maxFailures, ...optionalFields(p), basis }
  const id = `r${number}-${createHash('sha256').update(JSON.stringify([d.self, number, fields])).digest('hex').slice(0, 6)}`
  return { id, number, ...fields }
}

/** Signs the draft release (draftRelease) into this admin's feed. */
export async function publishRelease (d: ReleaseDesk, p: PublishParams): Promise<ReleaseBody> {
  admin(d, 'publish releases')
  const body = draftRelease(d, p)
  const { number, basis } = body as ReleaseBody & { basis: Basis }
  if (p.after !== undefined && effectiveRelease(d.state, d.view, p.after) === undefined) throw new NodeError('API_NOT_FOUND', `after: no release ${p.after}`)
  const deadlock = edgeDeadlock(planRelease(body, d.view.asOf(basis) ?? d.view), body)
  if (deadlock !== undefined) throw new NodeError('API_BAD_REQUEST', `after: ${deadlock}`)
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

function checked<T> (parse: (b: unknown) => T, body: unknown): T {
  try {
    return parse(body)
  } catch (err) {
    throw new NodeError('API_BAD_REQUEST', (err as Error).message)
  }
}

/** `fleetmesh pin HOST --path P --reason TEXT [--expires D]`: signs a pin of a member host. */
export async function pinHost (d: ReleaseDesk, p: PinBody): Promise<PinBody> {
  admin(d, 'pin hosts')
  const body = checked(parsePin, { host: p.host, path: p.path, reason: p.reason, ...(p.expiresMs !== undefined ? { expiresMs: p.expiresMs } : {}) })
  if (!d.view.isMember(body.host)) throw new NodeError('API_NOT_FOUND', `${body.host} is not a member of this mesh`)
  await d.append('pin', body)
  d.log.info({ host: body.host, path: body.path }, 'host pinned')
  return body
}

/** `fleetmesh unpin HOST`: lifts every pin of HOST this host sees, by naming each. */
export async function unpinHost (d: ReleaseDesk, host: string): Promise<{ host: string, lifts: string[] }> {
  admin(d, 'unpin hosts')
  const lifts = pinsOf(d.state.holds, d.view, host).map(refOf)
  if (lifts.length === 0) throw new NodeError('API_NOT_FOUND', `${host} is not pinned`)
  await d.append('unpin', { host, lifts })
  return { host, lifts }
}

/** `fleetmesh quarantine PATH --reason TEXT`: no host applies PATH in any release until it is cleared. */
export async function quarantinePath (d: ReleaseDesk, q: QuarantineBody): Promise<QuarantineBody> {
  admin(d, 'quarantine store paths')
  const body = checked(parseQuarantine, { path: q.path, reason: q.reason })
  await d.append('quarantine', body)
  d.log.info({ path: body.path }, 'store path quarantined')
  return body
}

/** `fleetmesh quarantine clear PATH`: lifts every quarantine and counted failure of PATH this host sees, by naming each. */
export async function clearQuarantine (d: ReleaseDesk, path: string): Promise<{ path: string, clears: string[] }> {
  admin(d, 'clear quarantines')
  const clears = holdsStatus(d.state, d.view).quarantined.find((q) => q.path === path)?.refs ?? []
  if (clears.length === 0) throw new NodeError('API_NOT_FOUND', `${path} is not quarantined`)
  await d.append('quarantine-clear', { path, clears })
  return { path, clears }
}

/** `fleetmesh release-floor N --reason TEXT`: every host refuses the releases numbered below N. */
export async function setReleaseFloor (d: ReleaseDesk, f: ReleaseFloorBody): Promise<ReleaseFloorBody> {
  admin(d, 'set the release floor')
  const body = checked(parseReleaseFloor, { number: f.number, reason: f.reason })
  const now = releaseFloor(d.state.holds.fresh, d.view)
  // the highest counted floor wins: a lower one would change nothing
  if (now !== undefined && now.body.number >= body.number) throw new NodeError('API_BAD_REQUEST', `the release floor is already #${now.body.number} (set by ${now.feed}); a floor only rises`)
  await d.append('release-floor', body)
  d.log.info({ number: body.number }, 'release floor set')
  return body
}

/** The floor in effect, or null. */
export function releaseFloorStatus (d: Pick<ReleaseDesk, 'state' | 'view'>): { number: number, reason: string, by: string, ref: string } | null {
  const f = releaseFloor(d.state.holds.fresh, d.view)
  return f === undefined ? null : { number: f.body.number, reason: f.body.reason, by: f.feed, ref: refOf(f) }
}

/** `fleetmesh budget set SELECTOR N` / `budget clear SELECTOR`: replaces (or lifts) every budget of SELECTOR this host sees, by naming each. */
export async function setBudget (d: ReleaseDesk, selector: string, max: number | undefined): Promise<{ selector: string, max?: number, lifts: string[] }> {
  admin(d, max === undefined ? 'clear budgets' : 'set budgets')
  const lifts = budgetLifts(d.state.budgets, d.view, selector)
  if (max === undefined && lifts.length === 0) throw new NodeError('API_NOT_FOUND', `no budget for ${selector}`)
  const body = checked(parseBudget, { selector, ...(max !== undefined ? { max } : {}), ...(lifts.length > 0 ? { lifts } : {}) })
  await d.append('budget', body)
  d.log.info({ selector, max }, max === undefined ? 'budget cleared' : 'budget set')
  return { selector, ...(max !== undefined ? { max } : {}), lifts }
}

/** The budgets in effect: selector, max, and the entries that set it ("feed:seq"). */
export function budgetsStatus (d: Pick<ReleaseDesk, 'state' | 'view'>): Array<{ selector: string, max: number, by: string[], refs: string[] }> {
  return tagBudgets(d.state.budgets, d.view).map(b => ({ selector: b.selector, max: b.max, by: b.sets.map(s => s.feed), refs: b.sets.map(refOf) }))
}
