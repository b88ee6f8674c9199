// Control API routes of deploys: releases (publish, list, status, pause/resume/abort),
// generations, local apply and rollback. Releases are validated by the same schema the log
// uses before they are signed, so a bad plan is refused here, not ignored by every host.
import { holdsStatus, parseRelease, type PinBody, type QuarantineBody, type ReleaseFloorBody } from '../../protocols/rollout/index.js'
import type { ApiServer } from '../api.js'
import { NodeError } from '../errors.js'
import type { MeshLibp2p } from '../libp2p.js'
import type { DeployAgent, PublishParams } from './agent.js'
import type { LocalDeploy } from './local.js'
import { diffReport, planReport, whyReport, type PlanDeps } from './plan.js'
import { budgetsStatus, clearQuarantine, optionalFields, setBudget, pinHost, quarantinePath, releaseFloorStatus, setReleaseFloor, unpinHost } from './releases.js'

export interface DeployRouteComponents {
  api: Pick<ApiServer, 'route'>
  self: string
  libp2p: Pick<MeshLibp2p, 'getPeers'>
  /** the peer id a request's host names: an id, a host name or a unique id prefix (node/host-names.ts) */
  resolveHost: (text: string) => string
  /** absent where Nix is not installed: every route then answers DEPLOY_DISABLED */
  deploy?: { agent: DeployAgent, local: LocalDeploy }
}

export function registerDeployRoutes (c: DeployRouteComponents): void {
  const { api, self, libp2p } = c
  const deploy = (): NonNullable<DeployRouteComponents['deploy']> => {
    if (c.deploy === undefined) throw new NodeError('DEPLOY_DISABLED', 'deploys are disabled on this host: Nix is not installed (apt-get install nix-bin)')
    return c.deploy
  }
  const agent = (): DeployAgent => deploy().agent
  const local = (): LocalDeploy => deploy().local
  const online = (peer: string): boolean => peer === self || libp2p.getPeers().some((p) => p.toString() === peer)

  api.route('GET', '/v1/deploy', async () => agent().status())
  api.route('GET', '/v1/releases', async () => ({ releases: agent().releases(online), flagged: agent().flags() }))
  api.route('GET', '/v1/releases/:id', async (req) => {
    const s = agent().release(req.params.id, online)
    if (s === undefined) throw new NodeError('API_NOT_FOUND', `no release ${req.params.id}`)
    return s
  })
  /** A release's parameters as a request gives them, hosts resolved to peer ids and checked by the log's schema. */
  const releaseParams = (body: unknown): PublishParams => {
    const b = (body ?? {}) as Partial<PublishParams>
    // Hosts may be given by name: the signed plan names them by peer id.
    const named = (h: unknown): unknown => typeof h === 'string' ? c.resolveHost(h) : h
    if (Array.isArray(b.targets)) b.targets = b.targets.map((t) => typeof t === 'object' && t !== null && 'host' in t ? { ...t, host: named(t.host) as string } : t)
    if (Array.isArray(b.waves)) b.waves = b.waves.map((w) => typeof w === 'object' && w !== null && Array.isArray(w.hosts) ? { ...w, hosts: w.hosts.map(named) as string[] } : w)
    // The same schema every host applies to the entry: checked once more with a stand-in id.
    try {
      parseRelease({ id: 'r0-check', number: 1, targets: b.targets, waves: b.waves, maxFailures: b.maxFailures, ...optionalFields(b) })
    } catch (err) {
      throw new NodeError('API_BAD_REQUEST', (err as Error).message)
    }
    return b as PublishParams
  }
  api.route('POST', '/v1/releases', async (req) => agent().publish(releaseParams(req.body)))

  // A dry run, a per-host comparison and a decision trace (node/deploy/plan.ts): nothing is signed.
  const planDeps = (): PlanDeps => ({
    desk: agent().desk(),
    online,
    nix: { current: async () => (await local().generations()).find((g) => g.current)?.path, diff: async (a, b) => await local().diffPaths(a, b) }
  })
  api.route('POST', '/v1/release-plan', async (req) => await planReport(planDeps(), releaseParams(req.body)))
  api.route('GET', '/v1/release-diff', async (req) => {
    const a = req.query.get('a')
    const b = req.query.get('b')
    if (a === null || b === null) throw new NodeError('API_BAD_REQUEST', 'a and b (release ids) are required')
    return await diffReport(planDeps(), a, b)
  })
  api.route('GET', '/v1/releases/:id/why', async (req) => {
    const host = req.query.get('host')
    return whyReport(planDeps(), req.params.id, host === null ? self : c.resolveHost(host), Date.now())
  })

  // Per-tag budgets across releases (protocols/rollout/tag-budget.ts): admin-signed `budget` entries.
  api.route('GET', '/v1/budgets', async () => ({ budgets: budgetsStatus(agent().desk()) }))
  api.route('POST', '/v1/budgets', async (req) => {
    const b = (req.body ?? {}) as { selector?: unknown, max?: unknown }
    if (typeof b.selector !== 'string') throw new NodeError('API_BAD_REQUEST', 'selector is required (tag:T)')
    if (!Number.isSafeInteger(b.max)) throw new NodeError('API_BAD_REQUEST', 'max must be a whole number of hosts')
    return await setBudget(agent().desk(), b.selector, b.max as number)
  })
  api.route('DELETE', '/v1/budgets', async (req) => {
    const selector = (req.body as { selector?: unknown } | undefined)?.selector
    if (typeof selector !== 'string') throw new NodeError('API_BAD_REQUEST', 'selector is required (tag:T)')
    return await setBudget(agent().desk(), selector, undefined)
  })
  api.route('POST', '/v1/releases/:id/:action', async (req) => {
    const action = req.params.action
    if (action === 'rollback') return agent().rollbackRelease(req.params.id)
    if (action !== 'pause' && action !== 'resume' && action !== 'abort') throw new NodeError('API_NOT_FOUND', `no release action ${action}`)
    await agent().control(req.params.id, action)
    return { release: req.params.id, action }
  })

  // Pins and quarantines: admin-signed entries every host's decisions read (protocols/rollout/holds.ts).
  api.route('GET', '/v1/pins', async () => ({ pins: holdsStatus(agent().state, agent().view).pins }))
  api.route('POST', '/v1/pins', async (req) => {
    const b = (req.body ?? {}) as PinBody
    return pinHost(agent().desk(), typeof b.host === 'string' ? { ...b, host: c.resolveHost(b.host) } : b)
  })
  api.route('DELETE', '/v1/pins/:host', async (req) => unpinHost(agent().desk(), c.resolveHost(req.params.host)))
  api.route('GET', '/v1/quarantine', async () => ({ quarantined: holdsStatus(agent().state, agent().view).quarantined }))
  api.route('POST', '/v1/quarantine', async (req) => quarantinePath(agent().desk(), (req.body ?? {}) as QuarantineBody))
  api.route('DELETE', '/v1/quarantine', async (req) => {
    const path = (req.body as { path?: unknown } | undefined)?.path
    if (typeof path !== 'string') throw new NodeError('API_BAD_REQUEST', 'path is required')
    return clearQuarantine(agent().desk(), path)
  })

  // The release floor: every host refuses the releases numbered below it (protocols/rollout/fresh.ts).
  api.route('GET', '/v1/release-floor', async () => ({ floor: releaseFloorStatus(agent()) }))
  api.route('POST', '/v1/release-floor', async (req) => setReleaseFloor(agent().desk(), (req.body ?? {}) as ReleaseFloorBody))

  api.route('GET', '/v1/generations', async () => local().generations())
  api.route('GET', '/v1/generations/diff', async (req) => local().diff(req.query.get('a'), req.query.get('b')))
  api.route('POST', '/v1/apply', async (req) => {
    const b = (req.body ?? {}) as { path?: unknown, sources?: unknown, dryRun?: unknown }
    if (typeof b.path !== 'string') throw new NodeError('API_BAD_REQUEST', 'path is required')
    const sources = Array.isArray(b.sources) && b.sources.every((s) => typeof s === 'string') ? b.sources as string[] : []
    return local().applyLocal(b.path, sources, b.dryRun === true)
  })
  api.route('POST', '/v1/rollback', async (req) => {
    const to = (req.body as { to?: unknown } | undefined)?.to
    if (to !== undefined && !Number.isSafeInteger(to)) throw new NodeError('API_BAD_REQUEST', 'to must be a generation number')
    return local().rollbackLocal(to as number | undefined)
  })
}
