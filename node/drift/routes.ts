// Control API routes of drift: the last check's report, and a check now.
import type { ApiServer } from '../api.js'
import { NodeError } from '../errors.js'
import type { DriftMonitor } from './monitor.js'

export interface DriftRouteComponents {
  api: Pick<ApiServer, 'route'>
  /** absent where Nix is not installed: both routes answer DEPLOY_DISABLED */
  monitor?: Pick<DriftMonitor, 'check' | 'last'>
}

export function registerDriftRoutes (c: DriftRouteComponents): void {
  const monitor = (): Pick<DriftMonitor, 'check' | 'last'> => {
    if (c.monitor === undefined) throw new NodeError('DEPLOY_DISABLED', 'drift detection is off on this host: Nix is not installed (apt-get install nix-bin)')
    return c.monitor
  }
  c.api.route('GET', '/v1/drift', async () => ({ report: monitor().last() }))
  c.api.route('POST', '/v1/drift/check', async () => await monitor().check())
}
