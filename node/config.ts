// Where a host keeps its state and how it is configured. Everything has an embedded default
// so `fleetmesh init && fleetmesh start` works with no flags; config.json overrides them
// (config-file.ts reads and validates it). The one module that reads the environment; kept
// light, as every CLI command loads it.
import { homedir } from 'node:os'
import { join } from 'node:path'
import { NodeError } from './errors.js'
import type { HealthCheck } from '../nixos/index.js'
import type { AgentSpec } from './agents/types.js'

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
  /** re-activate the generation the log says this host runs when it drifted from it (node/drift/) */
  repairDrift: boolean
  /** the link to the activated system, compared with the profile and the log (node/drift/) */
  currentSystem: string
  /** after an activation, a member must hold this host's outcome within this window or it rolls back (0: off); a release may set its own */
  confirmWindowMs: number
  /** argv that makes a generation the next boot's (kernel, initrd or systemd changed); "{path}" as in activation */
  bootActivation: string[]
  /** argv a release with `reboot` runs to reboot into a staged generation */
  rebootCommand: string[]
  /** the kernel's boot id, which binds the journal's confirm windows and staged boots to one boot */
  bootIdPath: string
}

export const DEFAULT_DEPLOY: DeployConfig = {
  profile: '/nix/var/nix/profiles/system',
  activation: ['{path}/bin/switch-to-configuration', 'switch'],
  activationEnv: {},
  activationTimeoutMs: 5 * 60_000,
  healthChecks: [],
  soakMs: 0,
  keep: 20,
  trustedPublicKeys: [],
  repairDrift: false,
  currentSystem: '/run/current-system',
  confirmWindowMs: 2 * 60_000,
  bootActivation: ['{path}/bin/switch-to-configuration', 'boot'],
  rebootCommand: ['systemctl', 'reboot'],
  bootIdPath: '/proc/sys/kernel/random/boot_id'
}

/** How often this host looks for drift (node/drift/). */
export interface DriftConfig {
  /** between periodic checks; 0: only on demand */
  intervalMs: number
}

export const DEFAULT_DRIFT: DriftConfig = { intervalMs: 5 * 60_000 }

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
  drift: DriftConfig
  /** agents this host supervises (node/agents/) */
  agents: AgentSpec[]
}

export const DEFAULT_CONFIG: NodeConfig = {
  version: CONFIG_VERSION,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  bootstrap: [],
  api: { host: '127.0.0.1', port: 0 },
  deploy: DEFAULT_DEPLOY,
  audit: DEFAULT_AUDIT,
  drift: DEFAULT_DRIFT,
  agents: []
}

export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLEETMESH_DATA_DIR != null && env.FLEETMESH_DATA_DIR !== '') return env.FLEETMESH_DATA_DIR
  const state = env.XDG_STATE_HOME != null && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state')
  return join(state, 'fleetmesh')
}

/** A system install's config, read when the data dir has none of its own. */
export const SYSTEM_CONFIG = '/etc/fleetmesh/config.json'

/** FLEETMESH_CONFIG (which `--config FILE` sets): the config file, ahead of the data dir's. */
export function explicitConfig (env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.FLEETMESH_CONFIG != null && env.FLEETMESH_CONFIG !== '' ? env.FLEETMESH_CONFIG : undefined
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** HOST:PORT of the unauthenticated /metrics listener; an IPv6 host may be bracketed. */
export interface ListenAddress { host: string, port: number }

/** What the daemon takes from its environment rather than from config.json. */
export interface RuntimeEnv {
  /** FLEETMESH_LOG_LEVEL: a pino level, info by default */
  logLevel: string
  /** FLEETMESH_LOG_FORMAT: json or pretty; pretty by default when stderr is a terminal */
  logFormat: 'json' | 'pretty'
  /** FLEETMESH_METRICS_LISTEN: also serve /metrics, without the API token, here */
  metricsListen?: ListenAddress
}

export function runtimeEnv (env: NodeJS.ProcessEnv = process.env, stderrIsTty = process.stderr.isTTY === true): RuntimeEnv {
  const logLevel = env.FLEETMESH_LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) fail('FLEETMESH_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, not ${logLevel}`)
  const format = env.FLEETMESH_LOG_FORMAT ?? ''
  if (format !== '' && format !== 'json' && format !== 'pretty') fail('FLEETMESH_LOG_FORMAT', `must be json or pretty (unset: pretty on a terminal, json otherwise), not ${format}`)
  const logFormat = format !== '' ? format : stderrIsTty ? 'pretty' : 'json'
  const listen = env.FLEETMESH_METRICS_LISTEN
  if (listen === undefined || listen === '') return { logLevel, logFormat }
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen)
  if (m === null || Number(m[2]) > 65535) fail('FLEETMESH_METRICS_LISTEN', `must be HOST:PORT, not ${listen}`)
  return { logLevel, logFormat, metricsListen: { host: m[1], port: Number(m[2]) } }
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

/** ` (did you mean "profile"?)` when one of `known` is a small typo away from `word`, else ''. */
export function didYouMean (word: string, known: Iterable<string>): string {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase())
    if (d < bestDistance) { best = k; bestDistance = d }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`
}

function editDistance (a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]
}

/** Refuses any key of `obj` that is not in `known`: a misspelt setting must not fall back to its default. */
export function checkKeys (path: string, where: string, obj: object, known: Iterable<string>): void {
  const names = [...known]
  for (const k of Object.keys(obj)) {
    if (!names.includes(k)) fail(path, `"${where}${k}" is not a setting${didYouMean(k, names)}; the settings ${where === '' ? 'are' : `of "${where.slice(0, -1)}" are`} ${names.join(', ')}`)
  }
}
