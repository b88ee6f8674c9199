// The local control API: loopback HTTP guarded by a bearer token kept in a 0600 file in the
// data dir, so only users who can read the data dir can drive the daemon. Features register
// their routes here; the server knows nothing of what they do.
//
// A browser is the one client that cannot send a header: the fleet view is opened once as
// /ui?token=…, answered with an HttpOnly SameSite=Strict session cookie and a redirect to /ui,
// so the token leaves the address bar and history. The cookie authorises GET requests only, and
// a token in the query string nothing but that first /ui load. Every request must name this
// server by address in Host (and Origin, when a browser sends one): a web page whose DNS name
// rebinds to 127.0.0.1 is refused before its request reaches a route.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from './http.js'
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import { isIP, type AddressInfo } from 'node:net'
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

/** A registered route as its module wrote it (the OpenAPI document is checked against these). */
export interface RouteInfo { method: string, path: string, agents: boolean }

interface Route extends RouteInfo { pattern: RegExp, keys: string[], handler: ApiHandler }

const UI_PATH = '/ui'
const SESSION_DOMAIN = 'fleetmesh ui session v1'

/** 127.0.0.0/8, ::1 and localhost: what `api.host` may be without `api.allowRemote`. */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

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

/** The cookie's value: derived from the token, so the cookie jar never holds the token itself. */
function sessionOf (token: string): string {
  return createHash('sha256').update(SESSION_DOMAIN).update(token).digest('hex')
}

function cookie (req: IncomingMessage, name: string): string {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return ''
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
  /** the port listened on, which Host and Origin must name; set by listen */
  private port = -1
  private cookieName = ''

  constructor (private readonly token: string, private readonly log: Logger) {}

  /** `path` may hold `:name` segments, handed to the handler in `params`. */
  route (method: string, path: string, handler: ApiHandler, opts: RouteOptions = {}): void {
    const keys: string[] = []
    const pattern = new RegExp('^' + path.replace(/:([a-zA-Z]+)/g, (_, k: string) => { keys.push(k); return '([^/]+)' }) + '$')
    this.routes.push({ method, path, pattern, keys, handler, agents: opts.agents ?? false })
  }

  /** Every route registered so far, in registration order. */
  routeList (): RouteInfo[] {
    return this.routes.map(({ method, path, agents }) => ({ method, path, agents }))
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

  /** A host other than loopback needs `allowRemote` (config `api.allowRemote`): the API is the daemon's root. */
  async listen (host: string, port: number, opts: { allowRemote?: boolean } = {}): Promise<string> {
    if (!isLoopbackHost(host) && opts.allowRemote !== true) {
      throw new NodeError('CONFIG_INVALID', `api.host ${host} is not a loopback address; set "api": {"allowRemote": true} in config.json to serve the control API there`)
    }
    const server = createServer((req, res) => { void this.handle(req, res) })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void => {
        const where = `${host.includes(':') ? `[${host}]` : host}:${port}`
        reject(err.code === 'EADDRINUSE'
          ? new NodeError('LISTEN_FAILED', `the control API cannot listen on ${where}: the port is in use (another daemon?); stop it or set another "api": {"port": N} in config.json (0 picks a free one)`)
          : err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES'
            ? new NodeError('LISTEN_FAILED', `the control API cannot listen on ${where} (${err.code}); check "api" in config.json`)
            : err)
      }
      server.once('error', failed)
      server.listen(port, host, () => { server.off('error', failed); resolve() })
    })
    const addr = server.address() as AddressInfo
    const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    this.port = addr.port
    // Cookies are per host, not per port: two daemons on one machine keep apart by name.
    this.cookieName = `fleetmesh_ui_${addr.port}`
    return `http://${h}:${addr.port}`
  }

  async close (): Promise<void> {
    const server = this.server
    if (server == null) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /**
   * A rebinding page reaches us under its own DNS name, so Host (and Origin, when a browser
   * sends one) must name this port on an IP literal or localhost. An opaque Origin ("null")
   * is some sandboxed page's script, never the operator.
   */
  private checkOrigin (req: IncomingMessage): void {
    if (!this.ours(req.headers.host ?? '')) throw new NodeError('API_FORBIDDEN', 'the Host header does not name this control API')
    const origin = req.headers.origin
    if (origin !== undefined && !(origin.startsWith('http://') && this.ours(origin.slice(7)))) {
      throw new NodeError('API_FORBIDDEN', 'requests from other origins are refused')
    }
  }

  private ours (authority: string): boolean {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d+)$/.exec(authority)
    if (m === null || Number(m[2]) !== this.port) return false
    const host = m[1]!.replace(/^\[|\]$/g, '').toLowerCase()
    return host === 'localhost' || isIP(host) !== 0
  }

  /** The first load of the fleet view: trade the query token for the cookie, then drop it from the URL. */
  private openUi (url: URL, res: ServerResponse): boolean {
    if (url.pathname !== UI_PATH || !url.searchParams.has('token')) return false
    if (!tokenMatches(this.token, url.searchParams.get('token') ?? '')) throw new NodeError('API_UNAUTHORISED', 'missing or wrong API token')
    res.writeHead(303, {
      location: UI_PATH,
      'set-cookie': `${this.cookieName}=${sessionOf(this.token)}; HttpOnly; SameSite=Strict; Path=/`,
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer'
    })
    res.end()
    return true
  }

  private async authenticate (req: IncomingMessage, method: string): Promise<Principal> {
    const auth = req.headers.authorization ?? ''
    if (auth.startsWith('Bearer ')) return this.principalFor(auth.slice(7))
    // The cookie only reads: a state change always carries the token in a header.
    const session = method === 'GET' ? cookie(req, this.cookieName) : ''
    if (session !== '' && tokenMatches(sessionOf(this.token), session)) return { kind: 'operator' }
    throw new NodeError('API_UNAUTHORISED', 'missing or wrong API token')
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    try {
      this.checkOrigin(req)
      const method = req.method ?? 'GET'
      if (method === 'GET' && this.openUi(url, res)) return
      const principal = await this.authenticate(req, method)
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
