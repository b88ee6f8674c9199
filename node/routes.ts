// The control API's core routes: identity, peers, members, invites, joining, revocation and
// the audit trail. Each maps one CLI command onto the node's own objects.
import { PassThrough } from 'node:stream'
import type { ApiServer } from './api.js'
import { durationSeconds } from './duration.js'
import { NodeError } from './errors.js'
import { toJson } from './json.js'
import type { MeshLibp2p } from './libp2p.js'
import type { Membership } from './membership.js'
import type { JoinResult, Pairing } from './pairing.js'
import { VERSION } from './version.js'
import type { DeployStatus } from './deploy/index.js'
import type { AuditStore, StoredEntry } from '../protocols/audit/index.js'
import type { Checkpoints } from './checkpoints.js'
import { UNREACHABLE_HINT, type MeshUnreachable } from './redial.js'
import { exportJsonl } from '../protocols/audit/index.js'
import type { InviteRole } from '../crypto/invite.js'

/** What the core routes read and act on: the node's parts, never the node. */
export interface CoreRouteComponents {
  api: Pick<ApiServer, 'route'>
  peerId: string
  dataDir: string
  startedAt: number
  /** this host's listen addresses, with /p2p/ID */
  addresses: () => string[]
  libp2p: Pick<MeshLibp2p, 'getPeers' | 'getConnections'>
  membership: Pick<Membership, 'mesh' | 'view' | 'isMember' | 'lastSeen' | 'grant' | 'revoke' | 'revocation' | 'hosts' | 'resolveHost' | 'hostName'>
  store: AuditStore
  pairing: Pick<Pairing, 'createInvite' | 'listInvites' | 'revokeInvite'>
  checkpoints: Pick<Checkpoints, 'write'>
  /** `name`: the host name to be admitted under (else the one init stored) */
  join: (code: string, name?: string) => Promise<JoinResult>
  /** null where deploys are disabled */
  deployStatus: () => Promise<DeployStatus | null>
  /** set while this host knows other members and reaches none (node/redial.ts) */
  meshUnreachable: () => MeshUnreachable | null
}

export interface NodeStatus {
  version: string
  peerId: string
  /** this host's name: as its admission gave it, else as init or join stored it */
  name: string | null
  addresses: string[]
  dataDir: string
  startedAt: number
  connectedPeers: number
  mesh: { id: string, name: string, founder: string } | null
  role: string | null
  members: number
  feeds: number
  entries: number
  equivocatingFeeds: string[]
  deploy: DeployStatus | null
  /** this host was revoked: by whom, when (ms), why; `log` when its own log holds the revoke, `notice` when a member showed it */
  revoked: { by: string, at: number, reason: string | null, source: 'log' | 'notice' } | null
  /** this host knows other members but is connected to none: what to do is `hint` */
  meshUnreachable: (MeshUnreachable & { hint: string }) | null
}

export interface PeerInfo {
  peerId: string
  /** the host's name as its admission gave it (null: none, or not a member) */
  name: string | null
  addresses: string[]
  direction: string
  encryption: string | null
  rttMs: number | null
  member: boolean
}

export interface MemberRow {
  peerId: string
  /** the host's name as its admission gave it; null for hosts admitted before names */
  name: string | null
  role: string
  tags: string[]
  admittedBy: string
  admittedAt: number
  online: boolean
  lastSeen: number | null
  revoked: boolean
}

export interface EntryRow { feed: string, seq: number, ts: number, kind: string, hash: string, body: unknown }

export function entryRow (s: StoredEntry): EntryRow {
  const e = s.entry
  return { feed: e.feed, seq: e.seq, ts: e.ts, kind: e.kind, hash: Buffer.from(s.hash).toString('hex'), body: toJson(e.body) }
}

async function status (node: CoreRouteComponents): Promise<NodeStatus> {
  const mesh = node.membership.mesh()
  const view = node.membership.view()
  const heads = node.store.heads()
  const revocation = node.membership.revocation()
  const unreachable = node.meshUnreachable()
  return {
    version: VERSION,
    peerId: node.peerId,
    name: view?.members.get(node.peerId)?.name ?? await node.membership.hostName() ?? null,
    addresses: node.addresses(),
    dataDir: node.dataDir,
    startedAt: node.startedAt,
    connectedPeers: node.libp2p.getPeers().length,
    mesh: mesh === undefined ? null : { id: mesh.meshId, name: mesh.name, founder: mesh.founder },
    role: view?.members.get(node.peerId)?.role ?? null,
    members: view?.members.size ?? 0,
    feeds: heads.length,
    entries: heads.reduce((n, h) => n + h.seq + 1, 0),
    equivocatingFeeds: [...node.store.forkedFeeds().keys()],
    deploy: await node.deployStatus(),
    revoked: revocation === null ? null : { by: revocation.by, at: revocation.at, reason: revocation.reason ?? null, source: revocation.source },
    meshUnreachable: unreachable === null ? null : { ...unreachable, hint: UNREACHABLE_HINT }
  }
}

function peers (node: CoreRouteComponents): PeerInfo[] {
  const byPeer = new Map<string, PeerInfo>()
  const names = new Map(node.membership.hosts().map((h) => [h.peer, h.name ?? null]))
  for (const c of node.libp2p.getConnections()) {
    const id = c.remotePeer.toString()
    const info = byPeer.get(id) ?? { peerId: id, name: names.get(id) ?? null, addresses: [], direction: c.direction, encryption: c.encryption ?? null, rttMs: c.rtt ?? null, member: node.membership.isMember(id) }
    info.addresses.push(c.remoteAddr.toString())
    byPeer.set(id, info)
  }
  return [...byPeer.values()].sort((a, b) => a.peerId.localeCompare(b.peerId))
}

function members (node: CoreRouteComponents): MemberRow[] {
  const view = node.membership.view()
  if (view === undefined) return []
  const online = new Set(node.libp2p.getPeers().map(String))
  const rows: MemberRow[] = [...view.members].map(([peerId, m]) => ({
    peerId,
    name: m.name ?? null,
    role: m.role,
    tags: m.tags,
    admittedBy: m.admittedBy,
    admittedAt: m.admittedAt,
    online: peerId === node.peerId || online.has(peerId),
    lastSeen: peerId === node.peerId ? Date.now() : (node.membership.lastSeen.get(peerId) ?? null),
    revoked: false
  }))
  for (const [peerId, r] of view.revoked) {
    rows.push({ peerId, name: r.name ?? null, role: 'revoked', tags: [], admittedBy: r.by, admittedAt: r.at, online: online.has(peerId), lastSeen: node.membership.lastSeen.get(peerId) ?? null, revoked: true })
  }
  return rows.sort((a, b) => a.admittedAt - b.admittedAt || a.peerId.localeCompare(b.peerId))
}

function parseDuration (text: unknown, field: string): number {
  if (typeof text === 'number' && Number.isSafeInteger(text) && text > 0) return text
  return (typeof text === 'string' ? durationSeconds(text) : undefined) ?? badRequest(`${field} must be a duration like 90s, 30m, 1h or 7d`)
}

function badRequest (message: string): never {
  throw new NodeError('API_BAD_REQUEST', message)
}

export function registerCoreRoutes (node: CoreRouteComponents): void {
  const api = node.api
  api.route('GET', '/v1/status', async () => status(node))
  api.route('GET', '/v1/peers', async () => peers(node))
  api.route('GET', '/v1/members', async () => members(node))

  api.route('POST', '/v1/invites', async (req) => {
    const b = (req.body ?? {}) as Record<string, unknown>
    const role = (b.role ?? 'host') as InviteRole
    if (role !== 'host' && role !== 'admin') throw new NodeError('API_BAD_REQUEST', 'role must be host or admin')
    const uses = b.uses ?? 1
    if (!Number.isSafeInteger(uses) || (uses as number) < 1) throw new NodeError('API_BAD_REQUEST', 'uses must be a positive integer')
    const tags = b.tags ?? []
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new NodeError('API_BAD_REQUEST', 'tags must be a list of strings')
    return node.pairing.createInvite({ ttlSeconds: parseDuration(b.ttl ?? '1h', 'ttl'), uses: uses as number, role, tags })
  })

  api.route('GET', '/v1/invites', async () => node.pairing.listInvites())
  api.route('POST', '/v1/invites/:id/revoke', async (req) => node.pairing.revokeInvite(req.params.id))

  api.route('POST', '/v1/join', async (req) => {
    const { code, name } = (req.body ?? {}) as { code?: unknown, name?: unknown }
    if (typeof code !== 'string') throw new NodeError('API_BAD_REQUEST', 'code is required')
    if (name !== undefined && typeof name !== 'string') throw new NodeError('API_BAD_REQUEST', 'name must be a host name')
    return node.join(code, name)
  })

  api.route('POST', '/v1/grant', async (req) => {
    const b = (req.body ?? {}) as { peer?: unknown, role?: unknown, tags?: unknown }
    if (typeof b.peer !== 'string') throw new NodeError('API_BAD_REQUEST', 'peer is required')
    if (b.role !== undefined && b.role !== 'admin' && b.role !== 'host') throw new NodeError('API_BAD_REQUEST', 'role must be admin or host')
    if (b.tags !== undefined && (!Array.isArray(b.tags) || !b.tags.every((t) => typeof t === 'string'))) throw new NodeError('API_BAD_REQUEST', 'tags must be a list of strings')
    return node.membership.grant(node.membership.resolveHost(b.peer), { role: b.role as 'admin' | 'host' | undefined, tags: b.tags as string[] | undefined })
  })

  api.route('POST', '/v1/revoke', async (req) => {
    const b = (req.body ?? {}) as { peer?: unknown, reason?: unknown }
    if (typeof b.peer !== 'string') throw new NodeError('API_BAD_REQUEST', 'peer is required')
    return node.membership.revoke(node.membership.resolveHost(b.peer), typeof b.reason === 'string' ? b.reason : undefined)
  })

  api.route('GET', '/v1/audit/log', async (req) => {
    const q = req.query
    const since = q.get('since')
    const limit = q.get('limit')
    const feedParam = q.get('feed')
    const feed = feedParam === null ? undefined : node.membership.resolveHost(feedParam)
    const rows: EntryRow[] = []
    for await (const s of node.store.log({ kind: q.get('kind') ?? undefined, since: since === null ? undefined : Number(since), limit: limit === null ? undefined : Number(limit), reverse: q.get('reverse') === '1' })) {
      if (feed !== undefined && s.entry.feed !== feed) continue
      rows.push(entryRow(s))
    }
    return rows
  })

  api.route('POST', '/v1/audit/verify', async () => {
    const r = await node.store.verifyAll()
    return r.ok ? r : { ok: false, entries: r.entries, feed: r.feed, seq: r.seq, code: r.error.code, reason: r.error.message }
  })

  api.route('POST', '/v1/audit/checkpoint', async () => {
    const cp = await node.checkpoints.write()
    const body = cp.entry.body as { number: number, count: number, retained: number }
    return { number: body.number, feed: cp.entry.feed, seq: cp.entry.seq, covered: body.count, retained: body.retained }
  })

  api.route('GET', '/v1/audit/export', async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    const pass = new PassThrough()
    pass.pipe(res)
    await exportJsonl(node.store, pass)
    pass.end()
  })
}
