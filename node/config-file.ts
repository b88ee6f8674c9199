// config.json and the health file: read, validated field by field, written atomically.
import { promises as fs } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { validatePolicy } from '../nixos/index.js'
import { CONFIG_VERSION, DEFAULT_AUDIT, DEFAULT_CONFIG, DEFAULT_DEPLOY, dataPaths, fail, type AuditConfig, type DeployConfig, type NodeConfig } from './config.js'
import { NodeError } from './errors.js'
import { writeFileAtomic } from './fs-atomic.js'

function multiaddrList (path: string, field: string, value: unknown): string[] {
  if (!Array.isArray(value)) fail(path, `"${field}" must be a list of multiaddrs`)
  return value.map((v) => {
    if (typeof v !== 'string') fail(path, `"${field}" must be a list of multiaddrs`)
    try {
      multiaddr(v)
    } catch {
      fail(path, `"${field}" has an invalid multiaddr: ${v}`)
    }
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

export function parseConfig (path: string, text: string): NodeConfig {
  const obj = jsonObject(path, text, 'a JSON object')
  if (obj.version !== CONFIG_VERSION) fail(path, `unsupported version ${String(obj.version)} (expected ${CONFIG_VERSION})`)
  const api = (obj.api ?? DEFAULT_CONFIG.api) as Record<string, unknown>
  if (typeof api !== 'object' || typeof api.host !== 'string' || !Number.isInteger(api.port) || (api.port as number) < 0 || (api.port as number) > 65535) {
    fail(path, '"api" must be {"host": string, "port": 0-65535}')
  }
  if (api.allowRemote !== undefined && typeof api.allowRemote !== 'boolean') fail(path, '"api.allowRemote" must be true or false')
  return {
    version: CONFIG_VERSION,
    listen: multiaddrList(path, 'listen', obj.listen ?? DEFAULT_CONFIG.listen),
    bootstrap: multiaddrList(path, 'bootstrap', obj.bootstrap ?? DEFAULT_CONFIG.bootstrap),
    api: { host: api.host as string, port: api.port as number, ...(api.allowRemote === true ? { allowRemote: true } : {}) },
    deploy: parseDeploy(path, obj.deploy ?? {}),
    audit: parseAudit(path, obj.audit ?? {})
  }
}

function parseAudit (path: string, raw: unknown): AuditConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, '"audit" must be an object')
  const a = { ...DEFAULT_AUDIT, ...(raw as Partial<AuditConfig>) }
  for (const k of Object.keys(raw as object)) if (!(k in DEFAULT_AUDIT)) fail(path, `"audit.${k}" is not a setting`)
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
  return parseDeploy(path, { ...base, soakMs: h.soakMs ?? base.soakMs, healthChecks: h.checks ?? [] })
}

function parseDeploy (path: string, raw: unknown): DeployConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, '"deploy" must be an object')
  const d = { ...DEFAULT_DEPLOY, ...(raw as Partial<DeployConfig>) }
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string')
  if (typeof d.profile !== 'string' || !d.profile.startsWith('/')) fail(path, '"deploy.profile" must be an absolute path')
  if (!strings(d.activation) || d.activation.length === 0) fail(path, '"deploy.activation" must be a non-empty argv list')
  if (d.activationEnv === null || typeof d.activationEnv !== 'object' || !Object.values(d.activationEnv).every((v) => typeof v === 'string')) fail(path, '"deploy.activationEnv" must map names to strings')
  for (const k of ['activationTimeoutMs', 'soakMs', 'keep'] as const) {
    if (!Number.isSafeInteger(d[k]) || d[k] < 0) fail(path, `"deploy.${k}" must be a non-negative integer`)
  }
  if (!strings(d.trustedPublicKeys)) fail(path, '"deploy.trustedPublicKeys" must be a list of strings')
  if (!Array.isArray(d.healthChecks)) fail(path, '"deploy.healthChecks" must be a list')
  const shapes: Record<string, (c: Record<string, unknown>) => boolean> = {
    systemd: (c) => strings(c.units),
    http: (c) => typeof c.url === 'string',
    command: (c) => typeof c.command === 'string' || strings(c.command)
  }
  d.healthChecks.forEach((c: unknown, i: number) => {
    const check = c as Record<string, unknown>
    if (check === null || typeof check !== 'object' || !(String(check.kind) in shapes) || !shapes[String(check.kind)](check)) {
      fail(path, `"deploy.healthChecks[${i}]" must be {kind: "systemd", units} | {kind: "http", url} | {kind: "command", command}`)
    }
  })
  try {
    validatePolicy({ soakMs: d.soakMs, checks: d.healthChecks })
  } catch (err) {
    fail(path, (err as Error).message)
  }
  return d
}

export async function readConfig (dataDir: string): Promise<NodeConfig> {
  const path = dataPaths(dataDir).config
  let text: string
  try {
    text = await fs.readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NodeError('NOT_INITIALISED', `${dataDir} is not a fleetmesh data dir; run "fleetmesh init --data-dir ${dataDir}"`)
    }
    throw err
  }
  return parseConfig(path, text)
}

export async function writeConfig (dataDir: string, config: NodeConfig): Promise<void> {
  await writeFileAtomic(dataPaths(dataDir).config, JSON.stringify(config, null, 2) + '\n', 0o644)
}
