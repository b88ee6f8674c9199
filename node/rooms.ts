// Rooms on a host: starts the room service and gives local agents its API.
//   operator only:
//   POST   /v1/agents                          {agent, ttlSeconds?} → {agent, token, expiresAt}
//   DELETE /v1/agents/:agent                   revokes every token of the agent → {agent, revoked}
//   POST   /v1/rooms                           {name, members: [{host, agent}], history?}
//   POST   /v1/rooms/:id/members               {host, agent}
//   DELETE /v1/rooms/:id/members/:host/:agent
//   GET    /v1/rooms/:id/stats                 what the room's frames did on this host
//   operator and agents:
//   GET    /v1/rooms
//   POST   /v1/rooms/:id/messages              {text, agent?}
//   GET    /v1/rooms/:id/messages?since=&limit=&wait=
//   GET    /v1/rooms/:id/stream?since=         server-sent events, one `data:` JSON line each
// Who acts: the operator token may act as any agent named in the request; an agent token
// (issued by POST /v1/agents, kept only as a hash, agent-tokens.ts) acts as its own agent and no
// other, until it expires or is revoked; a revoke also ends the streams and long polls it holds
// open. The ApiServer resolves agent tokens through the authenticator attachRooms installs. Membership
// changes are signed by the host, in its audit feed: they are the operator's, never an agent's.
import type { ServerResponse } from 'node:http'
import type { GossipSub } from '@libp2p/gossipsub'
import type { AbstractLevel } from 'abstract-level'
import type { Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import type { HostIdentity } from '../crypto/identity.js'
import { isPeerId } from '../crypto/ids.js'
import type { AuditStore } from '../protocols/audit/index.js'
import {
  RoomError, RoomService, isAgentName, roomsSublevel,
  type RoomErrorCode, type RoomInfo, type RoomMember, type RoomMembershipView, type RoomMessageOut, type RoomStats
} from '../protocols/rooms/index.js'
import { AgentTokens } from './agent-tokens.js'
import type { ApiHandler, ApiRequest, ApiServer } from './api.js'
import { NodeError } from './errors.js'

export interface AttachRoomsDeps {
  libp2p: Libp2p<{ pubsub: GossipSub }>
  store: AuditStore
  identity: HostIdentity
  membership: RoomMembershipView
  /** the peer id a request's host names: an id, a host name or a unique id prefix (node/host-names.ts) */
  resolveHost: (text: string) => string
  /** the host's root level db: rooms take the sublevels "rooms" and "room-agents" */
  db: AbstractLevel<any, any, any>
  api: ApiServer
  log: Logger
  history?: { maxMessages?: number, maxAgeMs?: number }
}

export interface Rooms {
  service: RoomService
  agents: AgentTokens
}

const KEEPALIVE_MS = 15_000
const MAX_WAIT_MS = 60_000
const MAX_TEXT_CHARS = 60_000

const STATUS: Partial<Record<RoomErrorCode, number>> = {
  ROOM_UNKNOWN: 404,
  ROOM_NOT_AUTHORISED: 403,
  ROOM_NOT_MEMBER: 403,
  ROOM_BAD_REQUEST: 400,
  ROOM_BODY_INVALID: 400,
  ROOM_HOST_UNKNOWN: 400,
  ROOM_TOO_MANY_HOSTS: 400
}

function bad (message: string): never {
  throw new RoomError('ROOM_BAD_REQUEST', message)
}

function objectBody (body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) bad('the request body must be a JSON object')
  return body as Record<string, unknown>
}

function member (v: unknown, resolveHost: (text: string) => string): RoomMember {
  const m = objectBody(v)
  if (typeof m.host !== 'string') bad('host must be a host\'s name or peer id')
  const host = resolveHost(m.host)
  if (!isPeerId(host)) bad('host must be a host\'s name or peer id')
  if (!isAgentName(m.agent)) bad('agent must be a name of 1..32 letters, digits, ".", "_" or "-"')
  return { host, agent: m.agent }
}

function cursorParam (v: string | null): number {
  if (v === null || v === '') return 0
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) bad('since must be a cursor (a non-negative integer)')
  return n
}

/** The agent a request acts as: an agent token's own, or the one the operator names. */
function actingAgent (req: ApiRequest, claimed: unknown): string {
  const p = req.principal
  if (p.kind === 'agent') {
    if (claimed !== undefined && claimed !== null && claimed !== p.agent) throw new RoomError('ROOM_NOT_AUTHORISED', `this token acts as agent ${p.agent} only`)
    return p.agent
  }
  if (!isAgentName(claimed)) bad('name the agent to act as ("agent")')
  return claimed
}

/** Writes RoomErrors as the ApiServer writes its own: status and {error: {code, message}}. */
function guarded (handler: ApiHandler): ApiHandler {
  return async (req, res) => {
    try {
      return await handler(req, res)
    } catch (err) {
      if (!(err instanceof RoomError) || res.headersSent) throw err
      res.writeHead(STATUS[err.code] ?? 409, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { code: err.code, message: err.message } }))
      return undefined
    }
  }
}

function sse (res: ServerResponse, m: RoomMessageOut): void {
  res.write(`id: ${m.cursor}\ndata: ${JSON.stringify(m)}\n\n`)
}

export async function attachRooms (deps: AttachRoomsDeps): Promise<Rooms> {
  const service = new RoomService({
    libp2p: deps.libp2p,
    store: deps.store,
    identity: deps.identity,
    membership: deps.membership,
    db: roomsSublevel(deps.db),
    history: deps.history,
    log: deps.log
  })
  await service.start()
  const agents = new AgentTokens(deps.db)
  const api = deps.api
  api.setAuthenticator(async (token) => agents.resolve(token))
  const route = (method: string, path: string, handler: ApiHandler, agentsToo = false): void => { api.route(method, path, guarded(handler), { agents: agentsToo }) }

  /** The rooms a principal may see: an agent, those it is in; the operator, every room. */
  const visible = (req: ApiRequest): RoomInfo[] => {
    const p = req.principal
    return p.kind === 'agent' ? service.rooms().filter(r => service.isLocalMember(r.id, p.agent)) : service.rooms()
  }

  /**
   * The room a request's `:id` names: its id, or the name of exactly one room the principal may
   * see. Room names are not unique (any member may create one): an ambiguous name lists the ids.
   */
  const roomOf = (req: ApiRequest): string => {
    const text = req.params.id!
    if (service.room(text) !== undefined) return text
    const named = visible(req).filter(r => r.name === text)
    if (named.length > 1) throw new NodeError('API_BAD_REQUEST', `"${text}" names ${named.length} rooms: ${named.map(r => r.id).join(', ')}; name one by its id`)
    if (named.length === 0) throw new RoomError('ROOM_UNKNOWN', `no room ${text} (a room id or the name of one room this host knows; see "fleetmesh room list")`)
    return named[0]!.id
  }

  /** An agent principal reads and writes only rooms it is in; the operator, every room. */
  const mayUse = (req: ApiRequest, id: string): void => {
    const p = req.principal
    if (service.room(id) === undefined) throw new RoomError('ROOM_UNKNOWN', `no room ${id}`)
    if (p.kind === 'agent' && !service.isLocalMember(id, p.agent)) throw new RoomError('ROOM_NOT_MEMBER', `agent ${p.agent} is not a member of room ${id}`)
  }

  route('POST', '/v1/agents', async (req) => {
    const b = objectBody(req.body)
    if (!isAgentName(b.agent)) bad('agent must be a name of 1..32 letters, digits, ".", "_" or "-"')
    if (b.ttlSeconds !== undefined && (typeof b.ttlSeconds !== 'number' || !Number.isSafeInteger(b.ttlSeconds) || b.ttlSeconds <= 0)) bad('ttlSeconds must be a positive integer')
    return agents.issue(b.agent, b.ttlSeconds === undefined ? undefined : b.ttlSeconds * 1000)
  })

  route('DELETE', '/v1/agents/:agent', async (req) => {
    const agent = req.params.agent!
    if (!isAgentName(agent)) bad('agent must be a name of 1..32 letters, digits, ".", "_" or "-"')
    return { agent, revoked: await agents.revoke(agent) }
  })

  route('POST', '/v1/rooms', async (req) => {
    const b = objectBody(req.body)
    if (typeof b.name !== 'string' || b.name.length === 0 || b.name.length > 128) bad('name must be 1..128 characters')
    if (!Array.isArray(b.members) || b.members.length === 0) bad('members must be a non-empty list of {host, agent}')
    if (b.history !== undefined && b.history !== 'joined' && b.history !== 'shared') bad('history must be "joined" or "shared"')
    return service.create({ name: b.name, members: b.members.map((m) => member(m, deps.resolveHost)), history: b.history })
  })

  route('GET', '/v1/rooms', async (req): Promise<RoomInfo[]> => visible(req), true)

  route('POST', '/v1/rooms/:id/members', async (req) => service.addMember(roomOf(req), member(req.body, deps.resolveHost)))

  route('DELETE', '/v1/rooms/:id/members/:host/:agent', async (req) =>
    service.removeMember(roomOf(req), member({ host: req.params.host, agent: req.params.agent }, deps.resolveHost)))

  route('GET', '/v1/rooms/:id/stats', async (req): Promise<RoomStats> => service.stats(roomOf(req)))

  route('POST', '/v1/rooms/:id/messages', async (req) => {
    const b = objectBody(req.body)
    if (typeof b.text !== 'string' || b.text.length > MAX_TEXT_CHARS) bad(`text must be a string of at most ${MAX_TEXT_CHARS} characters`)
    const id = roomOf(req)
    mayUse(req, id)
    return service.send(id, actingAgent(req, b.agent), b.text)
  }, true)

  route('GET', '/v1/rooms/:id/messages', async (req) => {
    const id = roomOf(req)
    mayUse(req, id)
    const since = cursorParam(req.query.get('since'))
    const limit = Math.min(1000, Math.max(1, Number(req.query.get('limit') ?? 1000) || 1000))
    const wait = Math.min(MAX_WAIT_MS, Math.max(0, Number(req.query.get('wait') ?? 0) || 0))
    const first = await service.read(id, { since, limit })
    if (first.messages.length > 0 || wait === 0) return first
    // long poll: listen before re-reading, so a message landing in between is not missed
    const ac = new AbortController()
    const timer = setTimeout(() => { ac.abort() }, wait)
    req.raw.once('close', () => { ac.abort() })
    const token = agents.watch(req.principal)
    token.signal.addEventListener('abort', () => { ac.abort() })
    const live = service.live(id, ac.signal)
    try {
      const again = await service.read(id, { since, limit })
      if (again.messages.length > 0) return again
      await live.next()
      if (token.signal.aborted) throw new NodeError('API_UNAUTHORISED', 'the agent token was revoked or has expired')
      return await service.read(id, { since, limit })
    } finally {
      clearTimeout(timer)
      token.done()
      ac.abort()
      await live.return(undefined)
    }
  }, true)

  route('GET', '/v1/rooms/:id/stream', async (req, res) => {
    const id = roomOf(req)
    mayUse(req, id)
    const lastEventId = req.raw.headers['last-event-id']
    let cursor = cursorParam(req.query.get('since') ?? (typeof lastEventId === 'string' ? lastEventId : null))
    const ac = new AbortController()
    res.once('close', () => { ac.abort() })
    // a revoked or expired token ends the stream
    const token = agents.watch(req.principal)
    token.signal.addEventListener('abort', () => { ac.abort() })
    const live = service.live(id, ac.signal)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.write(': connected\n\n')
    const keepalive = setInterval(() => { res.write(': keep-alive\n\n') }, KEEPALIVE_MS)
    try {
      for (;;) {
        const backlog = await service.read(id, { since: cursor })
        for (const m of backlog.messages) sse(res, m)
        cursor = backlog.cursor
        if (backlog.messages.length < 1000) break
      }
      for await (const m of live) {
        if (m.cursor <= cursor) continue
        sse(res, m)
        cursor = m.cursor
      }
    } finally {
      clearInterval(keepalive)
      token.done()
      res.end()
    }
    return undefined
  }, true)

  return { service, agents }
}
