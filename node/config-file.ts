// config.json and the health file: read, validated field by field, written atomically.
import { promises as fs } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { validatePolicy } from '../nixos/index.js'
import { CONFIG_VERSION, DEFAULT_AUDIT, DEFAULT_CONFIG, DEFAULT_DEPLOY, checkKeys, dataPaths, explicitConfig, fail, SYSTEM_CONFIG, type AuditConfig, type DeployConfig, type NodeConfig } from './config.js'
import { NodeError, fileErrorLine } from './errors.js'
import { parseDrift } from './drift/config.js'
import { parseAgentSpecs } from './agents/spec.js'
import { writeFileAtomic } from './fs-atomic.js'

function multiaddrList (path: string, field: string, value: unknown, withPeer = false): string[] {
  if (!Array.isArray(value)) fail(path, `"${field}" must be a list of multiaddrs`)
  return value.map((v) => {
    if (typeof v !== 'string') fail(path, `"${field}" must be a list of multiaddrs`)
    try {
      multiaddr(v)
    } catch {
      fail(path, `"${field}" has an invalid multiaddr: ${v} (write e.g. /ip4/10.0.0.1/tcp/4001${withPeer ? '/p2p/PEER_ID' : ''})`)
    }
    if (withPeer && !/\/p2p\/[^/]+$/.test(v)) fail(path, `"${field}" has an address that names no peer: ${v}; end it with /p2p/PEER_ID`)
    return v
  })
}

function jsonObject (path: string, text: string, shape: string): Record<string, unknown> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    fail(path, 'not valid JSON')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, `must be ${shape}`)
  return raw as Record<string, unknown>
}

/** Keys a section may hold beyond those its default spells out. */
const OPTIONAL_KEYS: Record<string, string[]> = { api: ['allowRemote'] }

/**
 * Every key at every level must be one the defaults name (each section's keys are its default's,
 * so a setting added to a default is accepted with no second list to keep in step).
 */
function checkSections (path: string, obj: Record<string, unknown>): void {
  checkKeys(path, '', obj, Object.keys(DEFAULT_CONFIG))
  for (const [section, fallback] of Object.entries(DEFAULT_CONFIG)) {
    const value = obj[section]
    if (fallback === null || typeof fallback !== 'object' || Array.isArray(fallback)) continue
    if (value === null || typeof value !== 'object' || Array.isArray(value)) continue
    checkKeys(path, `${section}.`, value, [...Object.keys(fallback), ...OPTIONAL_KEYS[section] ?? []])
  }
}

export function parseConfig (path: string, text: string): NodeConfig {
  const obj = jsonObject(path, text, 'a JSON object')
  if (obj.version !== CONFIG_VERSION) fail(path, `unsupported version ${String(obj.version)} (expected ${CONFIG_VERSION})`)
  checkSections(path, obj)
  const rawApi = obj.api ?? {}
  if (rawApi === null || typeof rawApi !== 'object' || Array.isArray(rawApi)) fail(path, '"api" must be {"host": string, "port": 0-65535}')
  // like every other section, a key left out keeps its default: {"api": {"port": 8300}} is enough
  const api = { ...DEFAULT_CONFIG.api, ...rawApi } as Record<string, unknown>
  if (typeof api.host !== 'string' || !Number.isInteger(api.port) || (api.port as number) < 0 || (api.port as number) > 65535) {
    fail(path, '"api" must be {"host": string, "port": 0-65535}')
  }
  if (api.allowRemote !== undefined && typeof api.allowRemote !== 'boolean') fail(path, '"api.allowRemote" must be true or false')
  return {
    version: CONFIG_VERSION,
    listen: multiaddrList(path, 'listen', obj.listen ?? DEFAULT_CONFIG.listen),
    bootstrap: multiaddrList(path, 'bootstrap', obj.bootstrap ?? DEFAULT_CONFIG.bootstrap, true),
    api: { host: api.host as string, port: api.port as number, ...(api.allowRemote === true ? { allowRemote: true } : {}) },
    deploy: parseDeploy(path, obj.deploy ?? {}),
    audit: parseAudit(path, obj.audit ?? {}),
    drift: parseDrift(path, obj.drift ?? {}),
    agents: parseAgentSpecs(path, obj.agents ?? [])
  }
}

function parseAudit (path: string, raw: unknown): AuditConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, '"audit" must be an object')
  const a = { ...DEFAULT_AUDIT, ...(raw as Partial<AuditConfig>) }
  if (!Number.isSafeInteger(a.historyDays) || a.historyDays < 0) fail(path, '"audit.historyDays" must be a whole number of days (0: keep only what the newest checkpoint retains)')
  if (typeof a.archive !== 'boolean') fail(path, '"audit.archive" must be true or false')
  if (!Number.isSafeInteger(a.checkpointIntervalMs) || a.checkpointIntervalMs < 0) fail(path, '"audit.checkpointIntervalMs" must be a non-negative integer')
  return a
}

/**
 * `fleetmesh start --health FILE` (what the NixOS module passes): {soakMs, checks} replacing
 * the config's health checks, validated exactly as the config's own.
 */
export function parseHealthFile (path: string, text: string, base: DeployConfig): DeployConfig {
  const h = jsonObject(path, text, '{"soakMs": N, "checks": [...]}')
  checkKeys(path, '', h, ['soakMs', 'checks'])
  return parseDeploy(path, { ...base, soakMs: h.soakMs ?? base.soakMs, healthChecks: h.checks ?? [] })
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string')
const CHECK_COMMON_KEYS = ['kind', 'name', 'intervalMs', 'retries', 'startPeriodMs', 'timeoutMs']
const CHECK_SHAPES: Record<string, { keys: string[], valid: (c: Record<string, unknown>) => boolean }> = {
  systemd: { keys: ['units'], valid: (c) => strings(c.units) },
  http: { keys: ['url', 'expectStatus'], valid: (c) => typeof c.url === 'string' },
  command: { keys: ['command'], valid: (c) => typeof c.command === 'string' || strings(c.command) },
  agent: { keys: [], valid: (c) => typeof c.name === 'string' }
}

function parseDeploy (path: string, raw: unknown): DeployConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, '"deploy" must be an object')
  const d = { ...DEFAULT_DEPLOY, ...(raw as Partial<DeployConfig>) }
  if (typeof d.profile !== 'string' || !d.profile.startsWith('/')) fail(path, '"deploy.profile" must be an absolute path')
  if (!strings(d.activation) || d.activation.length === 0) fail(path, '"deploy.activation" must be a non-empty argv list')
  if (d.activationEnv === null || typeof d.activationEnv !== 'object' || !Object.values(d.activationEnv).every((v) => typeof v === 'string')) fail(path, '"deploy.activationEnv" must map names to strings')
  for (const k of ['activationTimeoutMs', 'soakMs', 'keep', 'confirmWindowMs'] as const) {
    if (!Number.isSafeInteger(d[k]) || d[k] < 0) fail(path, `"deploy.${k}" must be a non-negative integer`)
  }
  if (!strings(d.trustedPublicKeys)) fail(path, '"deploy.trustedPublicKeys" must be a list of strings')
  if (typeof d.repairDrift !== 'boolean') fail(path, '"deploy.repairDrift" must be true or false')
  if (typeof d.currentSystem !== 'string' || !d.currentSystem.startsWith('/')) fail(path, '"deploy.currentSystem" must be an absolute path')
  for (const k of ['bootActivation', 'rebootCommand'] as const) if (!strings(d[k]) || d[k].length === 0) fail(path, `"deploy.${k}" must be a non-empty argv list`)
  if (typeof d.bootIdPath !== 'string' || !d.bootIdPath.startsWith('/')) fail(path, '"deploy.bootIdPath" must be an absolute path')
  if (!Array.isArray(d.healthChecks)) fail(path, '"deploy.healthChecks" must be a list')
  d.healthChecks.forEach((c: unknown, i: number) => {
    const check = c as Record<string, unknown>
    const shape = check !== null && typeof check === 'object' ? CHECK_SHAPES[String(check.kind)] : undefined
    if (shape === undefined || !shape.valid(check)) {
      fail(path, `"deploy.healthChecks[${i}]" must be {kind: "systemd", units} | {kind: "http", url} | {kind: "command", command} | {kind: "agent", name}`)
    }
    checkKeys(path, `deploy.healthChecks[${i}].`, check, [...CHECK_COMMON_KEYS, ...shape.keys])
  })
  try {
    validatePolicy({ soakMs: d.soakMs, checks: d.healthChecks })
  } catch (err) {
    fail(path, (err as Error).message)
  }
  return d
}

export interface ConfigSources {
  /** FLEETMESH_CONFIG or `--config` */
  explicit?: string
  system?: string
}

/**
 * The config file a data dir runs on, first found: `--config FILE` / FLEETMESH_CONFIG (which
 * must exist), the data dir's own config.json (the one `init` writes), /etc/fleetmesh/config.json.
 */
export async function findConfig (dataDir: string, sources: ConfigSources = { explicit: explicitConfig(), system: SYSTEM_CONFIG }): Promise<{ path: string, text: string }> {
  const read = async (path: string): Promise<{ path: string, text: string } | undefined> => {
    try {
      return { path, text: await fs.readFile(path, 'utf8') }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new NodeError('CONFIG_INVALID', `${path}: cannot read it: ${fileErrorLine(err) ?? (err as Error).message}`)
    }
  }
  if (sources.explicit !== undefined) {
    const found = await read(sources.explicit)
    if (found === undefined) throw new NodeError('CONFIG_INVALID', `${sources.explicit}: no such config file (named by --config or FLEETMESH_CONFIG)`)
    return found
  }
  const found = await read(dataPaths(dataDir).config) ?? (sources.system !== undefined ? await read(sources.system) : undefined)
  if (found === undefined) throw new NodeError('NOT_INITIALISED', `${dataDir} is not a fleetmesh data dir; run "fleetmesh init --data-dir ${dataDir}"`)
  return found
}

/**
 * Whether the data dir's own config.json is the one in effect: only then does the daemon write
 * to it (pinning listen ports), so a system install's config is never shadowed by a copy.
 */
export async function ownConfigInEffect (dataDir: string, explicit = explicitConfig()): Promise<boolean> {
  return explicit === undefined && await fs.access(dataPaths(dataDir).config).then(() => true, () => false)
}

/** The config a new data dir's `init` leaves to others: --config/FLEETMESH_CONFIG, or the system's. */
export async function sharedConfig (sources: ConfigSources = { explicit: explicitConfig(), system: SYSTEM_CONFIG }): Promise<string | undefined> {
  if (sources.explicit !== undefined) return sources.explicit
  if (sources.system === undefined) return undefined
  return await fs.access(sources.system).then(() => sources.system, () => undefined)
}

export async function readConfig (dataDir: string, sources?: ConfigSources): Promise<NodeConfig> {
  const { path, text } = await findConfig(dataDir, sources)
  return parseConfig(path, text)
}

export async function writeConfig (dataDir: string, config: NodeConfig): Promise<void> {
  await writeFileAtomic(dataPaths(dataDir).config, JSON.stringify(config, null, 2) + '\n', 0o644)
}
