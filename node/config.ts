// Where a host keeps its state and how it is configured. Everything has an embedded default
// so `fleetmesh init && fleetmesh start` works with no flags; config.json overrides them
// (config-file.ts reads and validates it). The one module that reads the environment; kept
// light, as every CLI command loads it.
import { homedir } from 'node:os'
import { join } from 'node:path'
import { NodeError } from './errors.js'
import type { HealthCheck } from '../nixos/index.js'

export const CONFIG_VERSION = 1

/** How this host applies generations (nixos/); the names match services.fleetmesh in module.nix. */
export interface DeployConfig {
  /** the Nix profile holding system generations */
  profile: string
  /** argv run to activate a generation; "{path}" stands for its store path */
  activation: string[]
  /** extra environment of the activation command */
  activationEnv: Record<string, string>
  activationTimeoutMs: number
  /** checks every new generation must pass, and how long it must stay healthy */
  healthChecks: HealthCheck[]
  soakMs: number
  /** generations kept when old ones are deleted */
  keep: number
  /** when set, fetched closures must be signed by one of these Nix keys (name:base64) */
  trustedPublicKeys: string[]
}

export const DEFAULT_DEPLOY: DeployConfig = {
  profile: '/nix/var/nix/profiles/system',
  activation: ['{path}/bin/switch-to-configuration', 'switch'],
  activationEnv: {},
  activationTimeoutMs: 5 * 60_000,
  healthChecks: [],
  soakMs: 0,
  keep: 20,
  trustedPublicKeys: []
}

/** How much of the audit log this host keeps, and its checkpoints (node/checkpoints.ts). */
export interface AuditConfig {
  /** entries below the newest checkpoint's cover are kept this many days, then dropped unless retained */
  historyDays: number
  /** an archive host keeps every entry: the full trail stays exportable and verifiable */
  archive: boolean
  /** an admin host writes a checkpoint this often (0: never on its own; `fleetmesh audit checkpoint` still does) */
  checkpointIntervalMs: number
}

export const DEFAULT_AUDIT: AuditConfig = { historyDays: 30, archive: false, checkpointIntervalMs: 24 * 3_600_000 }

export interface NodeConfig {
  version: number
  /** libp2p listen multiaddrs; the default is a random loopback TCP port */
  listen: string[]
  /** multiaddrs (with /p2p/ID) dialled at start and redialled while disconnected */
  bootstrap: string[]
  /** the control API: a loopback host unless `allowRemote` says the operator means otherwise */
  api: { host: string, port: number, allowRemote?: boolean }
  deploy: DeployConfig
  audit: AuditConfig
}

export const DEFAULT_CONFIG: NodeConfig = {
  version: CONFIG_VERSION,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  bootstrap: [],
  api: { host: '127.0.0.1', port: 0 },
  deploy: DEFAULT_DEPLOY,
  audit: DEFAULT_AUDIT
}

export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLEETMESH_DATA_DIR != null && env.FLEETMESH_DATA_DIR !== '') return env.FLEETMESH_DATA_DIR
  const state = env.XDG_STATE_HOME != null && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state')
  return join(state, 'fleetmesh')
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** HOST:PORT of the unauthenticated /metrics listener; an IPv6 host may be bracketed. */
export interface ListenAddress { host: string, port: number }

/** What the daemon takes from its environment rather than from config.json. */
export interface RuntimeEnv {
  /** FLEETMESH_LOG_LEVEL: a pino level, info by default */
  logLevel: string
  /** FLEETMESH_METRICS_LISTEN: also serve /metrics, without the API token, here */
  metricsListen?: ListenAddress
}

export function runtimeEnv (env: NodeJS.ProcessEnv = process.env): RuntimeEnv {
  const logLevel = env.FLEETMESH_LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) fail('FLEETMESH_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, not ${logLevel}`)
  const listen = env.FLEETMESH_METRICS_LISTEN
  if (listen === undefined || listen === '') return { logLevel }
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen)
  if (m === null || Number(m[2]) > 65535) fail('FLEETMESH_METRICS_LISTEN', `must be HOST:PORT, not ${listen}`)
  return { logLevel, metricsListen: { host: m[1], port: Number(m[2]) } }
}

/** The files of a data dir, named in one place. */
export function dataPaths (dataDir: string) {
  return {
    dataDir,
    identity: join(dataDir, 'identity.json'),
    config: join(dataDir, 'config.json'),
    db: join(dataDir, 'db'),
    lock: join(dataDir, 'daemon.lock'),
    apiToken: join(dataDir, 'api-token'),
    apiEndpoint: join(dataDir, 'api.json')
  }
}

export function fail (path: string, why: string): never {
  throw new NodeError('CONFIG_INVALID', `${path}: ${why}`)
}
