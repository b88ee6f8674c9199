// What an operator watches: Prometheus metrics fed from the node's own events (at /metrics on
// the control API, and on a separate unauthenticated listener when FLEETMESH_METRICS_LISTEN is
// set), event logs with stable keys, and the live fleet view: the page in node/web/ and the
// SSE stream of fleet snapshots it renders.
import type { Server, ServerResponse } from 'node:http'
import { createServer } from './http.js'
import { readFileSync, readdirSync } from 'node:fs'
import type { Logger } from 'pino'
import type { ApiServer } from './api.js'
import type { ListenAddress } from './config.js'
import { NodeError } from './errors.js'
import type { MeshLibp2p } from './libp2p.js'
import type { Membership } from './membership.js'
import type { NodeMetrics } from './metrics.js'
import { entryRow, type EntryRow } from './routes.js'
import { hostLabels } from './host-names.js'
import { deployView, FleetFolds, FOLDED_KINDS, type DeployView, type FleetSnapshot } from './fleet-snapshot.js'
import { checkName, type HealthCheck } from '../nixos/index.js'
import { HEADS_TOPIC, type AuditStore, type AuditSync } from '../protocols/audit/index.js'
import { decodeAnnouncement } from '../protocols/audit/wire.js'
import type { RoomService } from '../protocols/rooms/index.js'

/** How often a connected fleet view gets a snapshot when nothing changed. */
export const SNAPSHOT_INTERVAL_MS = 1_000
/** Changes arriving together (a sync batch) are sent as one snapshot. */
const CHANGE_DEBOUNCE_MS = 100
const RECENT_ENTRIES = 40
const MAX_VIEWERS = 32

const WEB_DIR = new URL('./web/', import.meta.url)
const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' }
// The page has no third-party content; forbidding everything else keeps an injected string inert.
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

interface Asset { type: string, body: string }

/** What observability watches and serves: the node's parts, never the node. */
export interface ObservabilityComponents {
  self: string
  metrics: NodeMetrics
  log: Logger
  api: Pick<ApiServer, 'route'>
  libp2p: Pick<MeshLibp2p, 'getPeers' | 'addEventListener' | 'services'>
  store: AuditStore
  sync: Pick<AuditSync, 'on'>
  membership: Pick<Membership, 'view' | 'mesh' | 'on'>
  rooms: Pick<RoomService, 'on'>
  /** the configured checks: a host signs apply-ok only once every one of them stayed clean */
  healthChecks: HealthCheck[]
  /** absent where deploys are disabled */
  deploy?: DeployView
  /** where to serve /metrics without the API token as well (FLEETMESH_METRICS_LISTEN) */
  metricsListen?: ListenAddress
}

/** node/web/ read once: a handful of small files, served from memory. */
function loadAssets (): Map<string, Asset> {
  const out = new Map<string, Asset>()
  for (const name of readdirSync(WEB_DIR)) {
    const ext = name.slice(name.lastIndexOf('.'))
    const type = CONTENT_TYPES[ext]
    if (type !== undefined) out.set(name, { type, body: readFileSync(new URL(name, WEB_DIR), 'utf8') })
  }
  return out
}

/** Wires the counters to the node's events and serves /metrics, the fleet view and its stream; returns the closer. */
export function attachObservability (c: ObservabilityComponents): () => void {
  const { self, metrics: m, log, api, libp2p, store, sync, membership, rooms } = c
  /** newest seq any peer announced per feed: the reference the lag is measured against */
  const newestKnown = new Map<string, number>()
  const folds = new FleetFolds()
  // Entries arriving during the scan are folded twice: the folds keep the newest, so that is harmless.
  const scanned = (async () => {
    for (const kind of FOLDED_KINDS) for await (const s of store.log({ kind })) folds.add(s)
  })()

  const refresh = (): void => {
    m.peersConnected.set(libp2p.getPeers().length)
    m.members.set(membership.view()?.members.size ?? 0)
    m.equivocations.set(store.forkedFeeds().size)
    for (const [feed, seq] of newestKnown) m.feedLag.set({ feed }, Math.max(0, seq - (store.head(feed)?.seq ?? -1)))
  }

  const viewers = new Set<ServerResponse>()
  let changeTimer: NodeJS.Timeout | undefined
  const changed = (): void => {
    if (viewers.size === 0 || changeTimer !== undefined) return
    changeTimer = setTimeout(() => { changeTimer = undefined; void broadcast() }, CHANGE_DEBOUNCE_MS)
  }

  store.on('entry', (s) => {
    const e = s.entry
    const own = e.feed === self
    m.logEntries.inc({ event: own ? 'appended' : 'received', reason: '' })
    folds.add(s)
    if (!own) log.debug({ feed: e.feed, seq: e.seq, kind: e.kind }, 'audit: entry received')
    else if (e.kind === 'apply-ok') {
      // apply-ok is signed only once every configured check stayed clean through the soak
      for (const check of c.healthChecks) m.healthChecks.inc({ check: checkName(check), result: 'ok' })
    } else if (e.kind === 'health') {
      // The deploy agent records a failed check only as this entry: its one log line is here.
      const b = e.body as { release?: string, check?: string, ok?: boolean }
      if (b.ok === false) log.warn({ feed: e.feed, seq: e.seq, release: b.release, check: b.check }, 'health check failed')
    }
    changed()
  })
  store.on('equivocation', (p) => {
    m.logEntries.inc({ event: 'rejected', reason: 'EQUIVOCATION' })
    log.error({ feed: p.feed, seq: p.seq }, 'audit: feed signed two different entries at one seq')
    changed()
  })
  sync.on('penalty', (p) => { m.logEntries.inc({ event: 'rejected', reason: p.error.code }) })
  sync.on('ban', (peer) => { log.warn({ peer }, 'audit sync: peer banned for repeated protocol offences') })
  membership.on('changed', changed)
  libp2p.addEventListener('connection:open', changed)
  libp2p.addEventListener('connection:close', changed)

  rooms.on('message', (msg) => {
    const own = msg.sender === self
    m.roomMessages.inc({ direction: own ? 'out' : 'in', result: 'ok' })
  })
  rooms.on('rejected', (r) => {
    m.roomMessages.inc({ direction: 'in', result: r.code })
    log.warn({ room: r.room, peer: r.sender, seq: r.seq, code: r.code }, `rooms: ${r.message}`)
  })

  libp2p.services.pubsub.addEventListener('gossipsub:message', (evt) => {
    const msg = evt.detail.msg
    m.gossipMessages.inc({ topic: msg.topic, direction: 'in' })
    if (msg.topic !== HEADS_TOPIC) return
    try {
      for (const h of decodeAnnouncement(msg.data)) newestKnown.set(h.feed, Math.max(h.seq, newestKnown.get(h.feed) ?? -1))
    } catch { /* the sync's topic validator has already penalised the sender */ }
  })
  // Gossipsub emits no event for a host's own publishes: the sync and the rooms report theirs.
  const published = (p: { topic: string }): void => { m.gossipMessages.inc({ topic: p.topic, direction: 'out' }) }
  sync.on('published', published)
  rooms.on('published', published)

  const metricsText = async (): Promise<string> => {
    refresh()
    return m.registry.metrics()
  }
  api.route('GET', '/metrics', async (_req, res) => {
    const body = await metricsText()
    res.writeHead(200, { 'content-type': m.registry.contentType })
    res.end(body)
  })

  const snapshot = async (): Promise<FleetSnapshot> => {
    await scanned
    const online = new Set(libp2p.getPeers().map(String))
    const isOnline = (peer: string): boolean => peer === self || online.has(peer)
    const view = membership.view()
    const mesh = membership.mesh()
    const audit: EntryRow[] = []
    for await (const s of store.log({ reverse: true, limit: RECENT_ENTRIES })) audit.push(entryRow(s))
    const members = view?.members ?? new Map()
    const labels = hostLabels([...members].map(([peer, mm]) => ({ peer, ...(mm.name !== undefined ? { name: mm.name } : {}) })))
    return {
      at: Date.now(),
      self: self,
      mesh: mesh === undefined ? null : { id: mesh.meshId, name: mesh.name },
      members: [...members].map(([peerId, mm]) => {
        const generation = folds.generation(peerId)
        return {
          peerId, ...(mm.name !== undefined ? { name: mm.name } : {}), label: labels.get(peerId) ?? peerId,
          role: mm.role, tags: mm.tags, online: isOnline(peerId), self: peerId === self, ...(generation !== undefined ? { generation } : {})
        }
      }),
      ...deployView(c.deploy, isOnline),
      audit,
      equivocations: (await store.equivocations()).map((p) => ({ feed: p.feed, seq: p.seq, detectedAt: p.detectedAt })),
      drift: folds.driftAlerts(),
      agents: folds.agents((peer) => members.has(peer))
    }
  }

  let tick: NodeJS.Timeout | undefined
  const broadcast = async (): Promise<void> => {
    if (viewers.size === 0) return
    const frame = `event: snapshot\ndata: ${JSON.stringify(await snapshot())}\n\n`
    for (const res of viewers) res.write(frame)
  }

  api.route('GET', '/v1/events', async (req, res) => {
    if (viewers.size >= MAX_VIEWERS) throw new NodeError('API_BAD_REQUEST', `at most ${MAX_VIEWERS} fleet views at once`)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(`retry: ${SNAPSHOT_INTERVAL_MS}\n\nevent: snapshot\ndata: ${JSON.stringify(await snapshot())}\n\n`)
    viewers.add(res)
    tick ??= setInterval(() => { void broadcast().catch((err: Error) => { log.warn({ err: err.message }, 'fleet view: snapshot failed') }) }, SNAPSHOT_INTERVAL_MS)
    await new Promise<void>((resolve) => req.raw.once('close', resolve))
    viewers.delete(res)
    if (viewers.size === 0) { clearInterval(tick); tick = undefined }
  })

  const assets = loadAssets()
  const serve = (res: ServerResponse, asset: Asset | undefined, name: string): void => {
    if (asset === undefined) throw new NodeError('API_NOT_FOUND', `no file ${name}`)
    res.writeHead(200, { 'content-type': asset.type, ...PAGE_HEADERS })
    res.end(asset.body)
  }
  // A page cannot put the token in a header: the API trades /ui?token=… for a session cookie
  // (api.ts), which then carries the page, its assets and its event stream.
  api.route('GET', '/ui', async (_req, res) => {
    serve(res, assets.get('index.html'), 'index.html')
  })
  api.route('GET', '/ui/:file', async (req, res) => {
    serve(res, req.params.file === 'index.html' ? undefined : assets.get(req.params.file), req.params.file)
  })

  let metricsServer: Server | undefined
  if (c.metricsListen !== undefined) {
    const { host, port } = c.metricsListen
    const listen = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    serveMetrics(c.metricsListen, metricsText, m.registry.contentType).then((s) => {
      metricsServer = s
      log.info({ listen }, 'metrics: serving /metrics without a token')
    }, (err: Error) => { log.error({ listen, err: err.message }, 'metrics: cannot listen') })
  }
  return () => {
    clearInterval(tick)
    clearTimeout(changeTimer)
    metricsServer?.closeAllConnections()
    metricsServer?.close()
  }
}

/**
 * The separate scrape endpoint: /metrics only, without the API token, for a Prometheus on
 * another address than the loopback control API.
 */
export async function serveMetrics (listen: ListenAddress, text: () => Promise<string>, contentType: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    text().then((body) => {
      res.writeHead(200, { 'content-type': contentType })
      res.end(body)
    }, () => { res.writeHead(500).end() })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(listen.port, listen.host, () => { server.off('error', reject); resolve() })
  })
  return server
}
