// The public surface of node/deploy: the agent that rolls releases out on this host, the
// executors it drives, the operator's local commands and the deploy routes. The CLI commands
// (cli.ts) are imported on their own by the CLI, which runs none of this.
import type { Logger } from 'pino'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { AbstractLevel } from 'abstract-level'
import type { DeployConfig } from '../config.js'
import type { MeshLibp2p } from '../libp2p.js'
import type { NodeMetrics } from '../metrics.js'
import { DeployAgent, type DeployAgentComponents } from './agent.js'
import { LocalDeploy } from './local.js'
import { deployMetrics } from './metrics.js'
import { NixExecutor, type NixExecutorComponents } from './nix.js'

export { DeployAgent, type CatchUp, type DeployAgentComponents, type DeployAgentOptions, type DeployStatus, type Peers, type PublishParams, type RetryPolicy } from './agent.js'
export type { Executor, Intent, Unreported } from './executor.js'
export { RolloutMembership, type MembershipSource } from './membership.js'
export { deployMetrics, type DeployMetrics } from './metrics.js'
export { NixExecutor, type NixExecutorComponents } from './nix.js'
export { LocalDeploy, type LocalDeployComponents } from './local.js'
export { registerDeployRoutes, type DeployRouteComponents } from './routes.js'
export { sourcesFetcher, PEERS_SOURCE, type SourcesFetcherOptions } from './sources.js'

export interface NixDeployComponents extends Omit<DeployAgentComponents, 'executor' | 'metrics' | 'log' | 'peers' | 'confirm' | 'catchUp'> {
  /** the audit sync: the catch-up signal, and whether a member holds this host's entry (confirm-or-revert) */
  catchUp: DeployAgentComponents['catchUp'] & { holds: (peer: PeerId, feed: string, seq: number, hash: Uint8Array) => Promise<boolean> }
  libp2p: MeshLibp2p
  config: DeployConfig
  db: AbstractLevel<any, any, any>
  metrics: NodeMetrics
  log: Logger
  /** health checks of kind "agent" ask the agent supervisor (node/agents) */
  agents?: NixExecutorComponents['agents']
  activated?: NixExecutorComponents['activated']
}

/** Deploys on a host with Nix: the agent over the Nix executor, and the operator's local commands. */
export interface NixDeploy {
  agent: DeployAgent
  local: LocalDeploy
  stop: () => Promise<void>
}

export async function startNixDeploy (c: NixDeployComponents): Promise<NixDeploy> {
  const metrics = deployMetrics(c.metrics)
  const nix = new NixExecutor({ config: c.config, db: c.db, libp2p: c.libp2p, membership: c.membership, store: c.store, metrics, log: c.log, agents: c.agents, activated: c.activated })
  const peers = { connected: () => c.libp2p.getPeers().map(String) }
  const confirm = {
    windowMs: c.config.confirmWindowMs,
    rebootCommand: c.config.rebootCommand,
    peers: () => c.libp2p.getPeers().map(String).filter((p) => p !== c.self && c.membership.isMember(p)),
    holds: async (peer: string, seq: number, hash: Uint8Array) => await c.catchUp.holds(peerIdFromString(peer), c.self, seq, hash)
  }
  const agent = new DeployAgent({ self: c.self, store: c.store, catchUp: c.catchUp, peers, membership: c.membership, executor: nix, metrics, log: c.log, confirm })
  await nix.start()
  try {
    await agent.start()
  } catch (err) {
    await agent.stop()
    await nix.stop()
    throw err
  }
  return {
    agent,
    local: new LocalDeploy({ nix, store: c.store, metrics }),
    stop: async () => {
      await agent.stop()
      await nix.stop()
    }
  }
}
