// Control API routes of deploys: releases (publish, list, status, pause/resume/abort),
// generations, local apply and rollback. Releases are validated by the same schema the log
// uses before they are signed, so a bad plan is refused here, not ignored by every host.
import type { MeshNode } from './mesh.js'
import { NodeError } from './errors.js'
import { parseRelease } from '../protocols/rollout/index.js'
import type { DeployAgent, PublishParams } from './deploy.js'

function agentOf (node: MeshNode): DeployAgent {
  if (node.deploy === undefined) throw new NodeError('DEPLOY_DISABLED', 'deploys are disabled on this host: Nix is not installed (apt-get install nix-bin)')
  return node.deploy
}

export function registerDeployRoutes (node: MeshNode): void {
  const api = node.api
  const online = (peer: string): boolean => peer === node.peerId || node.libp2p.getPeers().some((p) => p.toString() === peer)

  api.route('GET', '/v1/deploy', async () => agentOf(node).status())
  api.route('GET', '/v1/releases', async () => ({ releases: agentOf(node).releases(online), flagged: agentOf(node).flags() }))
  api.route('GET', '/v1/releases/:id', async (req) => {
    const s = agentOf(node).release(req.params.id, online)
    if (s === undefined) throw new NodeError('API_NOT_FOUND', `no release ${req.params.id}`)
    return s
  })
  api.route('POST', '/v1/releases', async (req) => {
    const b = (req.body ?? {}) as Partial<PublishParams>
    // The same schema every host applies to the entry: checked once more with a stand-in id.
    try {
      parseRelease({ id: 'r0-check', number: 1, targets: b.targets, waves: b.waves, maxFailures: b.maxFailures, ...(b.autoRevert === true ? { autoRevert: true } : {}) })
    } catch (err) {
      throw new NodeError('API_BAD_REQUEST', (err as Error).message)
    }
    return agentOf(node).publish(b as PublishParams)
  })
  api.route('POST', '/v1/releases/:id/:action', async (req) => {
    const action = req.params.action
    if (action === 'rollback') return agentOf(node).rollbackRelease(req.params.id)
    if (action !== 'pause' && action !== 'resume' && action !== 'abort') throw new NodeError('API_NOT_FOUND', `no release action ${action}`)
    await agentOf(node).control(req.params.id, action)
    return { release: req.params.id, action }
  })

  api.route('GET', '/v1/generations', async () => {
    const a = agentOf(node)
    const current = await a.profile.current()
    return (await a.profile.list()).sort((x, y) => x.number - y.number).map((g) => ({ ...g, current: g.number === current?.number }))
  })
  api.route('GET', '/v1/generations/diff', async (req) => {
    const a = agentOf(node)
    const gens = await a.profile.list()
    const pick = (n: string | null): string => {
      const g = gens.find((x) => String(x.number) === n)
      if (g === undefined) throw new NodeError('API_NOT_FOUND', `no generation ${n ?? ''}`)
      return g.path
    }
    const from = pick(req.query.get('a'))
    const to = pick(req.query.get('b'))
    return { from, to, diff: await a.profile.diff(from, to) }
  })
  api.route('POST', '/v1/apply', async (req) => {
    const b = (req.body ?? {}) as { path?: unknown, sources?: unknown, dryRun?: unknown }
    if (typeof b.path !== 'string') throw new NodeError('API_BAD_REQUEST', 'path is required')
    const sources = Array.isArray(b.sources) && b.sources.every((s) => typeof s === 'string') ? b.sources as string[] : []
    return agentOf(node).applyLocal(b.path, sources, b.dryRun === true)
  })
  api.route('POST', '/v1/rollback', async (req) => {
    const to = (req.body as { to?: unknown } | undefined)?.to
    if (to !== undefined && !Number.isSafeInteger(to)) throw new NodeError('API_BAD_REQUEST', 'to must be a generation number')
    return agentOf(node).rollbackLocal(to as number | undefined)
  })
}
