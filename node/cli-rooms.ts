// `fleetmesh room …`: the operator's view of rooms, through the local API with the operator
// token. `tail --follow` long-polls the messages route, so it needs nothing beyond JSON calls.
import type { Command } from 'commander'
import type { RoomInfo, RoomMember, RoomMessageOut, RoomStats } from '../protocols/rooms/index.js'
import type { ControlClient } from './client.js'
import { durationSeconds } from './duration.js'
import { NodeError } from './errors.js'
import { collect, parseChoice, parseCount } from './cli-parse.js'
import { rowLabels } from './host-names.js'
import type { MemberRow } from './routes.js'

/** The agent a member names when HOST has no `:AGENT`, and `send` uses without --agent. */
export const DEFAULT_AGENT = 'default'
const FOLLOW_WAIT_MS = 30_000
const PAGE = 1000

const out = (line: string): void => { process.stdout.write(line + '\n') }

export function parseMember (spec: string): RoomMember {
  const at = spec.indexOf(':')
  const host = at === -1 ? spec : spec.slice(0, at)
  const agent = at === -1 ? DEFAULT_AGENT : spec.slice(at + 1)
  if (host === '' || agent === '') throw new NodeError('API_BAD_REQUEST', `"${spec}" is not HOST[:AGENT]`)
  return { host, agent }
}

/** `90`, `90s`, `15m`, `12h`, `30d` → seconds. */
export function parseDuration (spec: string): number {
  const seconds = durationSeconds(spec, 's')
  if (seconds === undefined) throw new NodeError('API_BAD_REQUEST', `--ttl: "${spec}" is not a duration; write N[s|m|h|d] (e.g. 12h)`)
  return seconds
}

type Labels = Map<string, string>

/** Hosts' names as the members route gives them, to print hosts the way `fleetmesh members` does. */
async function labelsOf (api: ControlClient): Promise<Labels> {
  const rows = await api.get<MemberRow[]>('/v1/members')
  return rowLabels(rows)
}

const label = (labels: Labels, peer: string): string => labels.get(peer) ?? peer.slice(-8)

function describe (r: RoomInfo, labels: Labels): string {
  const flags = [r.member ? 'member' : '', r.manager ? 'manager' : '', r.stale ? 'rekey-due' : ''].filter(f => f !== '').join(',')
  const members = r.members.map((m) => `${m.agent}@${label(labels, m.host)}`).join(' ')
  return `${r.id}  ${r.name}  epoch ${r.epoch}  ${r.members.length} member(s): ${members}${flags !== '' ? `  [${flags}]` : ''}`
}

function line (m: RoomMessageOut, labels: Labels): string {
  return `${new Date(m.ts).toISOString()} ${m.agent}@${label(labels, m.sender)}: ${m.text}`
}

function messagesPath (room: string, since: number, wait: number): string {
  return `/v1/rooms/${encodeURIComponent(room)}/messages?since=${since}&limit=${PAGE}&wait=${wait}`
}

export function registerRoomCommands (program: Command, client: () => Promise<ControlClient>): void {
  const room = program.command('room').description('end-to-end encrypted rooms for agents; ROOM is a room\'s id or its name, HOST a host\'s name or peer id')

  room.command('create <name>')
    .description('create a room; this host must be a mesh member, members are HOST[:AGENT]')
    .requiredOption('--member <host[:agent]>', 'a member (repeatable)', collect)
    .option('--history <mode>', '"joined" (default: members read from when they join) or "shared"')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { member: string[], history?: string, json?: boolean }) => {
      const history = o.history === undefined ? undefined : parseChoice('--history', o.history, ['joined', 'shared'], 'a history mode')
      const members = o.member.map(parseMember)
      const api = await client()
      const r = await api.post<RoomInfo>('/v1/rooms', { name, members, history })
      out(o.json === true ? JSON.stringify(r) : `created ${describe(r, await labelsOf(api))}`)
    })

  room.command('add <room> <member>')
    .description('add HOST[:AGENT] to a room (creator or mesh admin)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, spec: string, o: { json?: boolean }) => {
      const api = await client()
      const r = await api.post<RoomInfo>(`/v1/rooms/${encodeURIComponent(id)}/members`, parseMember(spec))
      out(o.json === true ? JSON.stringify(r) : `added; ${describe(r, await labelsOf(api))}`)
    })

  room.command('remove <room> <member>')
    .description('remove HOST[:AGENT] from a room; a host left without agents gets no later key')
    .option('--json', 'machine-readable output')
    .action(async (id: string, spec: string, o: { json?: boolean }) => {
      const m = parseMember(spec)
      const api = await client()
      const r = await api.request<RoomInfo>('DELETE', `/v1/rooms/${encodeURIComponent(id)}/members/${encodeURIComponent(m.host)}/${encodeURIComponent(m.agent)}`)
      out(o.json === true ? JSON.stringify(r) : `removed; ${describe(r, await labelsOf(api))}`)
    })

  room.command('send <room> <text>')
    .description('send a message as an agent of this host')
    .option('--agent <name>', 'the agent to speak as', DEFAULT_AGENT)
    .option('--json', 'machine-readable output')
    .action(async (id: string, text: string, o: { agent: string, json?: boolean }) => {
      const m = await (await client()).post<RoomMessageOut>(`/v1/rooms/${encodeURIComponent(id)}/messages`, { text, agent: o.agent })
      out(o.json === true ? JSON.stringify(m) : `sent #${m.seq} (cursor ${m.cursor})`)
    })

  room.command('tail <room>')
    .description('print the room\'s kept messages; with --follow, keep printing new ones')
    .option('--follow', 'wait for new messages')
    .option('--since <cursor>', 'only messages after this cursor', '0')
    .option('--json', 'one JSON object per line')
    .action(async (id: string, o: { follow?: boolean, since: string, json?: boolean }) => {
      let since = parseCount('--since', o.since, 0)
      const api = await client()
      let labels: Labels = new Map()
      for (;;) {
        const page = await api.get<{ messages: RoomMessageOut[], cursor: number }>(messagesPath(id, since, o.follow === true ? FOLLOW_WAIT_MS : 0))
        // a sender admitted since the last look: read the names again
        if (o.json !== true && page.messages.some((m) => !labels.has(m.sender))) labels = await labelsOf(api)
        for (const m of page.messages) out(o.json === true ? JSON.stringify(m) : line(m, labels))
        since = page.cursor
        // a full page means more is kept: keep reading before waiting or stopping
        if (page.messages.length < PAGE && o.follow !== true) break
      }
    })

  room.command('list')
    .description('rooms this host knows of')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const api = await client()
      const rooms = await api.get<RoomInfo[]>('/v1/rooms')
      if (o.json === true) return out(JSON.stringify(rooms))
      if (rooms.length === 0) return out('no rooms')
      const labels = await labelsOf(api)
      for (const r of rooms) out(describe(r, labels))
    })

  room.command('stats <room>')
    .description('what the room\'s frames did on this host since it started: received, kept, refused by reason')
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { json?: boolean }) => {
      const s = await (await client()).get<RoomStats>(`/v1/rooms/${encodeURIComponent(id)}/stats`)
      if (o.json === true) return out(JSON.stringify(s))
      out(`${s.subscribed ? 'carrying' : 'not carrying'} the room's gossip with ${s.peers.length} peer(s)`)
      out(`received: ${s.gossip} by gossip, ${s.history} from history; kept ${s.accepted}`)
      const refused = Object.entries(s.rejected)
      out(`refused:  ${refused.length === 0 ? 'none' : refused.map(([code, n]) => `${code} ${n}`).join(', ')}`)
    })

  room.command('token <agent>')
    .description('issue a token that lets a local agent process use rooms as AGENT (shown once); --revoke ends all of AGENT\'s tokens')
    .option('--ttl <duration>', 'the token expires after this long: N[s|m|h|d] (default: never, until revoked)')
    .option('--revoke', 'revoke every token of AGENT now: its requests, streams and long polls stop at once')
    .option('--json', 'machine-readable output')
    .action(async (agent: string, o: { ttl?: string, revoke?: boolean, json?: boolean }) => {
      if (o.revoke === true && o.ttl !== undefined) throw new NodeError('API_BAD_REQUEST', '--ttl and --revoke do not go together')
      const ttlSeconds = o.ttl === undefined ? undefined : parseDuration(o.ttl)
      const api = await client()
      if (o.revoke === true) {
        const r = await api.request<{ agent: string, revoked: number }>('DELETE', `/v1/agents/${encodeURIComponent(agent)}`)
        return out(o.json === true ? JSON.stringify(r) : `revoked ${r.revoked} token(s) of ${r.agent}`)
      }
      const t = await api.post<{ agent: string, token: string, expiresAt: number | null }>('/v1/agents', { agent, ttlSeconds })
      out(o.json === true ? JSON.stringify(t) : t.token)
    })
}
