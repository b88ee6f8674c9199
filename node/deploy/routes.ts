// Control API routes of deploys: releases (publish, list, status, pause/resume/abort),
// generations, local apply and rollback. Releases are validated by the same schema the log
// uses before they are signed, so a bad plan is refused here, not ignored by every host.
import { holdsStatus, parseRelease, type PinBody, type QuarantineBody, type ReleaseFloorBody } from '../../protocols/rollout/index.js'
import type { ApiServer } from '../api.js'
import { NodeError } from '../errors.js'
import type { MeshLibp2p } from '../libp2p.js'
import type { DeployAgent, PublishParams } from './agent.js'
import type { LocalDeploy } from './local.js'
import { clearQuarantine, optionalFields, pinHost, quarantinePath, releaseFloorStatus, setReleaseFloor, unpinHost } from './releases.js'

export interface DeployRouteComponents {
  api: Pick<ApiServer, 'route'>
  self: string
  libp2p: Pick<MeshLibp2p, 'getPeers'>
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
  api.route('POST', '/v1/releases', async (req) => {
    const b = (req.body ?? {}) as Partial<PublishParams>
    // The same schema every host applies to the entry: checked once more with a stand-in id.
    try {
      parseRelease({ id: 'r0-check', number: 1, targets: b.targets, waves: b.waves, maxFailures: b.maxFailures, ...optionalFields(b) })
    } catch (err) {
      throw new NodeError('API_BAD_REQUEST', (err as Error).message)
    }
    return agent().publish(b as PublishParams)
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
  api.route('POST', '/v1/pins', async (req) => pinHost(agent().desk(), (req.body ?? {}) as PinBody))
  api.route('DELETE', '/v1/pins/:host', async (req) => unpinHost(agent().desk(), req.params.host))
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
