// Drift detection, attached to a host: the monitor over Nix (the system link, the profile,
// `nix store verify`), its metrics, and its routes.
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { NixProfileBackend, readSystemLink, verifyClosure } from '../../nixos/index.js'
import type { AuditStore } from '../../protocols/audit/index.js'
import type { ApiServer } from '../api.js'
import type { DeployConfig, DriftConfig } from '../config.js'
import { driftMetrics } from './metrics.js'
import { DriftMonitor, type DriftDeploy } from './monitor.js'
import { registerDriftRoutes } from './routes.js'

export { DriftMonitor, type DriftDeploy, type DriftReport, type HostSystem, type StoreReport } from './monitor.js'
export { driftMetrics, type DriftMetrics } from './metrics.js'

export interface DriftComponents {
  self: string
  store: Pick<AuditStore, 'append' | 'log' | 'on' | 'off'>
  api: Pick<ApiServer, 'route'>
  registry: Registry
  log: Pick<Logger, 'info' | 'warn' | 'error'>
  drift: DriftConfig
  deployConfig: Pick<DeployConfig, 'profile' | 'currentSystem' | 'repairDrift'>
  /** absent where Nix is not installed: no monitor, and the routes say so */
  deploy?: DriftDeploy
}

/** Registers the routes and, with deploys on, starts the monitor; returns the closer. */
export async function attachDrift (c: DriftComponents): Promise<() => Promise<void>> {
  if (c.deploy === undefined) {
    registerDriftRoutes({ api: c.api })
    return async () => {}
  }
  // Only read here: every change of the profile goes through the deploy engine.
  const profile = new NixProfileBackend({ profile: c.deployConfig.profile })
  const monitor = new DriftMonitor({
    self: c.self,
    store: c.store,
    system: {
      activated: async () => await readSystemLink(c.deployConfig.currentSystem),
      profile: async () => await profile.current(),
      verify: async (root) => await verifyClosure(root)
    },
    deploy: c.deploy,
    metrics: driftMetrics(c.registry),
    log: c.log,
    repair: c.deployConfig.repairDrift,
    intervalMs: c.drift.intervalMs
  })
  registerDriftRoutes({ api: c.api, monitor })
  await monitor.start()
  return async () => { await monitor.stop() }
}
