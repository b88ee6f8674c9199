// The local control API: loopback HTTP guarded by a bearer token kept in a 0600 file in the
// data dir, so only users who can read the data dir can drive the daemon. Features register
// their routes here; the server knows nothing of what they do.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from './http.js'
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { NodeError } from './errors.js'
import { writeFileAtomic } from './fs-atomic.js'

export const MAX_REQUEST_BODY = 1024 * 1024

/** Who is calling: the operator (the data dir's token) or a local agent (its own token). */
export type Principal = { kind: 'operator' } | { kind: 'agent', agent: string }

/** Resolves a presented token that is not the operator's; undefined refuses the call. */
export type Authenticator = (token: string) => Promise<Principal | undefined>

export interface RouteOptions {
  /** agents may call this route with their own token (default: operator only) */
  agents?: boolean
}

export interface ApiRequest {
  principal: Principal
  method: string
  path: string
  query: URLSearchParams
  params: Record<string, string>
  body: unknown
  raw: IncomingMessage
}

/** A handler returns a JSON-able value, or takes over the response itself (streams). */
export type ApiHandler = (req: ApiRequest, res: ServerResponse) => Promise<unknown>

interface Route { method: string, pattern: RegExp, keys: string[], handler: ApiHandler, agents: boolean }

export interface ApiEndpoint { url: string, pid: number }

export async function loadOrCreateToken (path: string): Promise<string> {
  try {
    const token = (await fs.readFile(path, 'utf8')).trim()
    if (/^[0-9a-f]{64}$/.test(token)) return token
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('hex')
  await writeFileAtomic(path, token + '\n', 0o600)
  return token
}

// Hashing both sides first gives equal-length buffers, so timingSafeEqual never throws and
// the comparison time does not depend on where the strings differ or on their lengths.
function tokenMatches (expected: string, presented: string): boolean {
  const a = createHash('sha256').update(expected).digest()
  const b = createHash('sha256').update(presented).digest()
  return timingSafeEqual(a, b)
}

async function readBody (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_REQUEST_BODY) throw new NodeError('API_BAD_REQUEST', `request body over ${MAX_REQUEST_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new NodeError('API_BAD_REQUEST', 'request body is not valid JSON')
  }
}

const STATUS_OF: Partial<Record<string, number>> = {
  API_UNAUTHORISED: 401,
  API_FORBIDDEN: 403,
  API_BAD_REQUEST: 400,
  API_NOT_FOUND: 404
}

export class ApiServer {
  private readonly routes: Route[] = []
  private server?: Server
  private authenticator: Authenticator = async () => undefined

  constructor (private readonly token: string, private readonly log: Logger) {}

  /** `path` may hold `:name` segments, handed to the handler in `params`. */
  route (method: string, path: string, handler: ApiHandler, opts: RouteOptions = {}): void {
    const keys: string[] = []
    const pattern = new RegExp('^' + path.replace(/:([a-zA-Z]+)/g, (_, k: string) => { keys.push(k); return '([^/]+)' }) + '$')
    this.routes.push({ method, pattern, keys, handler, agents: opts.agents ?? false })
  }

  setAuthenticator (fn: Authenticator): void {
    this.authenticator = fn
  }

  private async principalFor (presented: string): Promise<Principal> {
    if (tokenMatches(this.token, presented)) return { kind: 'operator' }
    const p = presented.length > 0 && presented.length <= 256 ? await this.authenticator(presented) : undefined
    if (p === undefined) throw new NodeError('API_UNAUTHORISED', 'missing or wrong API token')
    return p
  }

  async listen (host: string, port: number): Promise<string> {
    const server = createServer((req, res) => { void this.handle(req, res) })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
    const addr = server.address() as AddressInfo
    const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return `http://${h}:${addr.port}`
  }

  async close (): Promise<void> {
    const server = this.server
    if (server == null) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    try {
      const auth = req.headers.authorization ?? ''
      const presented = auth.startsWith('Bearer ') ? auth.slice(7) : (url.searchParams.get('token') ?? '')
      const principal = await this.principalFor(presented)
      const method = req.method ?? 'GET'
      for (const r of this.routes) {
        if (r.method !== method) continue
        const m = r.pattern.exec(url.pathname)
        if (m == null) continue
        if (principal.kind !== 'operator' && !r.agents) throw new NodeError('API_FORBIDDEN', 'this route needs the operator token')
        const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])]))
        const body = method === 'GET' ? undefined : await readBody(req)
        const result = await r.handler({ principal, method, path: url.pathname, query: url.searchParams, params, body, raw: req }, res)
        if (!res.headersSent) {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify(result ?? null))
        }
        return
      }
      throw new NodeError('API_NOT_FOUND', `no route ${method} ${url.pathname}`)
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'INTERNAL'
      // One of the project's typed errors (a named class with a string code) is a refusal the
      // caller can act on; anything else (system errors included) is a fault of this daemon.
      const typed = typeof (err as { code?: unknown }).code === 'string' && (err as Error).name !== 'Error'
      const status = STATUS_OF[code] ?? (typed ? 409 : 500)
      if (status === 500) this.log.error({ err, path: url.pathname }, 'api handler failed')
      if (!res.headersSent) {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { code, message: (err as Error).message } }))
      } else {
        res.destroy()
      }
    }
  }
}

export async function writeEndpoint (path: string, endpoint: ApiEndpoint): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(endpoint) + '\n', 0o600)
}
