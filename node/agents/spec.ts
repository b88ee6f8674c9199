// The `agents` list of config.json, validated field by field; every error names its field.
import { isAgentName } from '../../protocols/rooms/codec.js'
import { checkKeys, fail } from '../config.js'
import type { AgentSpec, Liveness, RestartPolicy } from './types.js'

export type { AgentSpec, Liveness, RestartPolicy } from './types.js'

export const MAX_AGENTS = 64
const MAX_ARG_CHARS = 4096
const MAX_ARGS = 256
const MAX_ENV = 256
const MAX_ENV_VALUE_CHARS = 32_768
const HOUR = 3_600_000
const DAY = 24 * HOUR
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/
/** what the supervisor sets for the agent itself */
export const RESERVED_ENV = ['FLEETMESH_AGENT', 'FLEETMESH_AGENT_TOKEN', 'FLEETMESH_API_URL'] as const

export const DEFAULT_RESTART: RestartPolicy = { backoffInitialMs: 100, backoffMaxMs: 30_000, maxRestarts: 5, windowMs: 60_000 }
const DEFAULTS = { memoryIntervalMs: 1000, stopGraceMs: 5000, escalateWithinMs: 10 * 60_000, logs: { maxBytes: 1024 * 1024, files: 3 } }
const SPEC_KEYS = ['name', 'backend', 'command', 'args', 'env', 'cwd', 'user', 'restart', 'memoryMaxBytes', 'memoryIntervalMs', 'liveness', 'stopGraceMs', 'escalateWithinMs', 'logs']
const LIVENESS_KEYS: Record<Liveness['kind'], string[]> = {
  heartbeat: ['kind', 'timeoutMs'],
  http: ['kind', 'url', 'intervalMs', 'timeoutMs'],
  command: ['kind', 'argv', 'intervalMs', 'timeoutMs']
}

function object (path: string, field: string, v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(path, `"${field}" must be an object`)
  return v as Record<string, unknown>
}

function int (path: string, field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(path, `"${field}" must be a whole number in ${min}..${max}`)
  return v
}

function text (path: string, field: string, v: unknown, max = MAX_ARG_CHARS): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || v.includes('\0')) fail(path, `"${field}" must be a non-empty string of at most ${max} characters`)
  return v
}

function argv (path: string, field: string, v: unknown, min: number): string[] {
  if (!Array.isArray(v) || v.length < min || v.length > MAX_ARGS) fail(path, `"${field}" must be a list of ${min}..${MAX_ARGS} strings`)
  return v.map((a, i) => {
    if (typeof a !== 'string' || a.length > MAX_ARG_CHARS || a.includes('\0')) fail(path, `"${field}[${i}]" must be a string of at most ${MAX_ARG_CHARS} characters`)
    return a
  })
}

function parseRestart (path: string, at: string, raw: unknown): RestartPolicy {
  const o = object(path, at, raw)
  checkKeys(path, `${at}.`, o, Object.keys(DEFAULT_RESTART))
  const r = { ...DEFAULT_RESTART, ...o } as Record<string, unknown>
  const backoffInitialMs = int(path, `${at}.backoffInitialMs`, r.backoffInitialMs, 10, HOUR)
  const backoffMaxMs = int(path, `${at}.backoffMaxMs`, r.backoffMaxMs, backoffInitialMs, HOUR)
  return {
    backoffInitialMs,
    backoffMaxMs,
    maxRestarts: int(path, `${at}.maxRestarts`, r.maxRestarts, 1, 1000),
    windowMs: int(path, `${at}.windowMs`, r.windowMs, 1000, DAY)
  }
}

function parseLiveness (path: string, at: string, raw: unknown): Liveness {
  const o = object(path, at, raw)
  const kind = o.kind as Liveness['kind']
  if (!(typeof kind === 'string' && kind in LIVENESS_KEYS)) fail(path, `"${at}.kind" must be "heartbeat", "http" or "command"`)
  checkKeys(path, `${at}.`, o, LIVENESS_KEYS[kind])
  const timeoutMs = int(path, `${at}.timeoutMs`, o.timeoutMs, 100, DAY)
  if (kind === 'heartbeat') return { kind, timeoutMs }
  const intervalMs = int(path, `${at}.intervalMs`, o.intervalMs, 50, HOUR)
  if (kind === 'http') {
    const url = text(path, `${at}.url`, o.url)
    if (!/^https?:\/\/[^\s]+$/.test(url)) fail(path, `"${at}.url" must be an http(s) URL`)
    return { kind, url, intervalMs, timeoutMs }
  }
  const command = argv(path, `${at}.argv`, o.argv, 1)
  if (command[0] === '') fail(path, `"${at}.argv[0]" must name a program`)
  return { kind, argv: command, intervalMs, timeoutMs }
}

function parseEnv (path: string, at: string, raw: unknown): Record<string, string> {
  const o = object(path, at, raw)
  const keys = Object.keys(o)
  if (keys.length > MAX_ENV) fail(path, `"${at}" has more than ${MAX_ENV} variables`)
  for (const k of keys) {
    if (!ENV_NAME_RE.test(k)) fail(path, `"${at}.${k}" is not an environment variable name`)
    if ((RESERVED_ENV as readonly string[]).includes(k)) fail(path, `"${at}.${k}" is set by the supervisor itself`)
    const v = o[k]
    if (typeof v !== 'string' || v.length > MAX_ENV_VALUE_CHARS || v.includes('\0')) fail(path, `"${at}.${k}" must be a string of at most ${MAX_ENV_VALUE_CHARS} characters`)
  }
  return { ...(o as Record<string, string>) }
}

export function parseAgentSpec (path: string, at: string, raw: unknown): AgentSpec {
  const o = object(path, at, raw)
  checkKeys(path, `${at}.`, o, SPEC_KEYS)
  if (!isAgentName(o.name)) fail(path, `"${at}.name" must be 1..32 letters, digits, ".", "_" or "-"`)
  const spec: AgentSpec = {
    name: o.name,
    command: text(path, `${at}.command`, o.command),
    args: argv(path, `${at}.args`, o.args ?? [], 0),
    env: parseEnv(path, `${at}.env`, o.env ?? {}),
    restart: parseRestart(path, `${at}.restart`, o.restart ?? {}),
    memoryIntervalMs: int(path, `${at}.memoryIntervalMs`, o.memoryIntervalMs ?? DEFAULTS.memoryIntervalMs, 50, HOUR),
    stopGraceMs: int(path, `${at}.stopGraceMs`, o.stopGraceMs ?? DEFAULTS.stopGraceMs, 0, 10 * 60_000),
    escalateWithinMs: int(path, `${at}.escalateWithinMs`, o.escalateWithinMs ?? DEFAULTS.escalateWithinMs, 0, DAY),
    logs: { ...DEFAULTS.logs }
  }
  if (o.backend !== undefined && o.backend !== 'process') {
    if (o.backend !== 'systemd') fail(path, `"${at}.backend" must be "process" or "systemd"`)
    spec.backend = 'systemd'
  }
  if (o.cwd !== undefined) {
    spec.cwd = text(path, `${at}.cwd`, o.cwd)
    if (!spec.cwd.startsWith('/')) fail(path, `"${at}.cwd" must be an absolute path`)
  }
  if (o.user !== undefined) {
    if (typeof o.user !== 'string' || !USER_RE.test(o.user)) fail(path, `"${at}.user" must be a user name`)
    spec.user = o.user
  }
  if (o.memoryMaxBytes !== undefined) spec.memoryMaxBytes = int(path, `${at}.memoryMaxBytes`, o.memoryMaxBytes, 1024 * 1024, 2 ** 48)
  if (o.liveness !== undefined) spec.liveness = parseLiveness(path, `${at}.liveness`, o.liveness)
  if (o.logs !== undefined) {
    const l = object(path, `${at}.logs`, o.logs)
    checkKeys(path, `${at}.logs.`, l, Object.keys(DEFAULTS.logs))
    spec.logs = {
      maxBytes: int(path, `${at}.logs.maxBytes`, l.maxBytes ?? DEFAULTS.logs.maxBytes, 4096, 1024 ** 3),
      files: int(path, `${at}.logs.files`, l.files ?? DEFAULTS.logs.files, 1, 20)
    }
  }
  return spec
}

/** config.json's `agents`: a list of specs with distinct names. */
export function parseAgentSpecs (path: string, raw: unknown): AgentSpec[] {
  if (!Array.isArray(raw)) fail(path, '"agents" must be a list of agent specs')
  if (raw.length > MAX_AGENTS) fail(path, `"agents" holds more than ${MAX_AGENTS} agents`)
  const specs = raw.map((r, i) => parseAgentSpec(path, `agents[${i}]`, r))
  const seen = new Set<string>()
  specs.forEach((s, i) => {
    if (seen.has(s.name)) fail(path, `"agents[${i}].name": another agent is named ${s.name}`)
    seen.add(s.name)
  })
  return specs
}
