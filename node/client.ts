// The client side of the control API, used by the CLI and by agent processes on the host.
import { promises as fs } from 'node:fs'
import { dataPaths } from './config.js'
import { NodeError } from './errors.js'
import type { ApiEndpoint } from './api.js'
import { startedBy } from './lock.js'

export class ApiError extends Error {
  constructor (readonly code: string, message: string, readonly status: number) {
    super(message)
    this.name = 'ApiError'
  }
}

export class ControlClient {
  constructor (readonly url: string, readonly token: string) {}

  /**
   * The data dir's daemon, once api.json is shown to be its own: the pid it names holds the
   * data dir's lock and was running when the file was written. A file left by a daemon that
   * died (its port now anyone's, its pid perhaps reused) never gets the token.
   */
  static async forDataDir (dataDir: string): Promise<ControlClient> {
    const paths = dataPaths(dataDir)
    const notRunning = (why: string): NodeError => new NodeError('DAEMON_NOT_RUNNING', `no fleetmesh daemon is running on ${dataDir}${why} (start one with "fleetmesh start")`)
    let endpoint: Partial<ApiEndpoint>
    let written: number
    let locker: number
    let token: string
    try {
      const text = await fs.readFile(paths.apiEndpoint, 'utf8')
      written = (await fs.stat(paths.apiEndpoint)).mtimeMs
      endpoint = JSON.parse(text) as Partial<ApiEndpoint>
      locker = Number.parseInt(await fs.readFile(paths.lock, 'utf8'), 10)
      token = (await fs.readFile(paths.apiToken, 'utf8')).trim()
    } catch {
      throw notRunning('')
    }
    if (typeof endpoint.url !== 'string' || !endpoint.url.startsWith('http://') || !Number.isSafeInteger(endpoint.pid) || (endpoint.pid as number) <= 0) {
      throw notRunning(': api.json is malformed')
    }
    if (endpoint.pid !== locker || !await startedBy(endpoint.pid as number, written)) {
      throw notRunning(`: api.json was left by a daemon that is gone (pid ${endpoint.pid as number})`)
    }
    return new ControlClient(endpoint.url, token)
  }

  async request<T> (method: string, path: string, body?: unknown): Promise<T> {
    let res: Response
    try {
      res = await fetch(this.url + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined
      })
    } catch {
      throw new NodeError('DAEMON_NOT_RUNNING', `the fleetmesh daemon at ${this.url} does not answer (is it running?)`)
    }
    const payload = await res.json().catch(() => null) as { error?: { code: string, message: string } } | null
    if (!res.ok) {
      throw new ApiError(payload?.error?.code ?? 'API_ERROR', payload?.error?.message ?? `HTTP ${res.status}`, res.status)
    }
    return payload as T
  }

  async get<T> (path: string): Promise<T> { return this.request<T>('GET', path) }
  async post<T> (path: string, body?: unknown): Promise<T> { return this.request<T>('POST', path, body ?? {}) }
  async delete<T> (path: string, body?: unknown): Promise<T> { return this.request<T>('DELETE', path, body ?? {}) }
}

/** A client of the data dir's daemon if one answers, else undefined. */
export async function runningDaemon (dataDir: string): Promise<ControlClient | undefined> {
  try {
    const client = await ControlClient.forDataDir(dataDir)
    await client.get('/v1/status')
    return client
  } catch (err) {
    if ((err as { code?: string }).code !== 'DAEMON_NOT_RUNNING') throw err
    return undefined
  }
}
