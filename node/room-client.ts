// The typed client an agent process imports to use rooms through its host's local API. An agent
// is given the API's URL and an agent token (`fleetmesh room token AGENT`), so the host knows who
// is speaking; a client holding the operator token passes `agent` instead.
import type { HistoryMode, RoomInfo, RoomMember, RoomMessageOut } from '../protocols/rooms/index.js'
import type { AgentStatus } from './agents/index.js'
import { ApiError, ControlClient } from './client.js'
import { NodeError } from './errors.js'

export type { RoomInfo, RoomMember, RoomMessageOut }

export interface RoomClientOptions {
  /** the control API's base URL (api.json in the data dir) */
  url: string
  /** an agent token, or the operator's api-token */
  token: string
  /** the agent to act as; required with the operator token, implied by an agent token */
  agent?: string
}

export class RoomClient {
  private readonly api: ControlClient

  constructor (private readonly opts: RoomClientOptions) {
    this.api = new ControlClient(opts.url, opts.token)
  }

  /**
   * The client of an agent its host supervises (node/agents): the supervisor hands it the API's
   * URL, its name and its own token in FLEETMESH_API_URL, FLEETMESH_AGENT and FLEETMESH_AGENT_TOKEN.
   */
  static fromEnv (env: NodeJS.ProcessEnv = process.env): RoomClient {
    const { FLEETMESH_API_URL: url, FLEETMESH_AGENT_TOKEN: token, FLEETMESH_AGENT: agent } = env
    if (url === undefined || token === undefined || agent === undefined) {
      throw new NodeError('API_BAD_REQUEST', 'FLEETMESH_API_URL, FLEETMESH_AGENT and FLEETMESH_AGENT_TOKEN are set only for an agent its host supervises')
    }
    return new RoomClient({ url, token, agent })
  }

  /** Tells the host's supervisor this agent is live (liveness "heartbeat"); only its own token is taken. */
  async heartbeat (): Promise<AgentStatus> {
    if (this.opts.agent === undefined) throw new NodeError('API_BAD_REQUEST', 'name the agent that heartbeats ("agent")')
    return this.api.post(`/v1/agents/${encodeURIComponent(this.opts.agent)}/heartbeat`)
  }

  private path (id: string, rest = ''): string {
    return `/v1/rooms/${encodeURIComponent(id)}${rest}`
  }

  async list (): Promise<RoomInfo[]> {
    return this.api.get('/v1/rooms')
  }

  /** create, add and remove change what the host signs: they need the operator token */
  async create (name: string, members: RoomMember[], history?: HistoryMode): Promise<RoomInfo> {
    return this.api.post('/v1/rooms', { name, members, history })
  }

  async add (room: string, member: RoomMember): Promise<RoomInfo> {
    return this.api.post(this.path(room, '/members'), member)
  }

  async remove (room: string, member: RoomMember): Promise<RoomInfo> {
    return this.api.request('DELETE', this.path(room, `/members/${encodeURIComponent(member.host)}/${encodeURIComponent(member.agent)}`))
  }

  async send (room: string, text: string): Promise<RoomMessageOut> {
    return this.api.post(this.path(room, '/messages'), { text, agent: this.opts.agent })
  }

  /** Messages after `since` (a cursor from an earlier read or message); waits up to `waitMs` for one. */
  async read (room: string, opts: { since?: number, limit?: number, waitMs?: number } = {}): Promise<{ messages: RoomMessageOut[], cursor: number }> {
    const q = new URLSearchParams({ since: String(opts.since ?? 0) })
    if (opts.limit !== undefined) q.set('limit', String(opts.limit))
    if (opts.waitMs !== undefined) q.set('wait', String(opts.waitMs))
    return this.api.get(this.path(room, `/messages?${q.toString()}`))
  }

  /** Messages after `since`, then new ones as they arrive, over server-sent events. */
  async * stream (room: string, opts: { since?: number, signal?: AbortSignal } = {}): AsyncGenerator<RoomMessageOut> {
    const res = await fetch(`${this.opts.url}${this.path(room, `/stream?since=${opts.since ?? 0}`)}`, {
      headers: { authorization: `Bearer ${this.opts.token}`, accept: 'text/event-stream' },
      signal: opts.signal
    })
    if (!res.ok || res.body === null) {
      const payload = await res.json().catch(() => null) as { error?: { code: string, message: string } } | null
      throw new ApiError(payload?.error?.code ?? 'API_ERROR', payload?.error?.message ?? `HTTP ${res.status}`, res.status)
    }
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const event = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = event.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n')
          if (data !== '') yield JSON.parse(data) as RoomMessageOut
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err
    }
  }
}
