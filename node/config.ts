// Where a host keeps its state and how it is configured. Everything has an embedded default
// so `fleetmesh init && fleetmesh start` works with no flags; config.json overrides them.
import { promises as fs } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { NodeError } from './errors.js'
import { writeFileAtomic } from './fs-atomic.js'

export const CONFIG_VERSION = 1

export interface NodeConfig {
  version: number
  /** libp2p listen multiaddrs; the default is a random loopback TCP port */
  listen: string[]
  /** multiaddrs (with /p2p/ID) dialled at start and redialled while disconnected */
  bootstrap: string[]
  /** the control API: loopback only unless an operator says otherwise */
  api: { host: string, port: number }
}

export const DEFAULT_CONFIG: NodeConfig = {
  version: CONFIG_VERSION,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  bootstrap: [],
  api: { host: '127.0.0.1', port: 0 }
}

export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLEETMESH_DATA_DIR != null && env.FLEETMESH_DATA_DIR !== '') return env.FLEETMESH_DATA_DIR
  const state = env.XDG_STATE_HOME != null && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state')
  return join(state, 'fleetmesh')
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

function fail (path: string, why: string): never {
  throw new NodeError('CONFIG_INVALID', `${path}: ${why}`)
}

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

export function parseConfig (path: string, text: string): NodeConfig {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    fail(path, 'not valid JSON')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, 'must be a JSON object')
  const obj = raw as Record<string, unknown>
  if (obj.version !== CONFIG_VERSION) fail(path, `unsupported version ${String(obj.version)} (expected ${CONFIG_VERSION})`)
  const api = (obj.api ?? DEFAULT_CONFIG.api) as Record<string, unknown>
  if (typeof api !== 'object' || typeof api.host !== 'string' || !Number.isInteger(api.port) || (api.port as number) < 0 || (api.port as number) > 65535) {
    fail(path, '"api" must be {"host": string, "port": 0-65535}')
  }
  return {
    version: CONFIG_VERSION,
    listen: multiaddrList(path, 'listen', obj.listen ?? DEFAULT_CONFIG.listen),
    bootstrap: multiaddrList(path, 'bootstrap', obj.bootstrap ?? DEFAULT_CONFIG.bootstrap),
    api: { host: api.host as string, port: api.port as number }
  }
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
