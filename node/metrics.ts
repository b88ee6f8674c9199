// What a host counts, in one Prometheus registry per node (not prom-client's global one, so
// several nodes in one process — tests, simulations — keep separate figures).
import { Counter, Gauge, Histogram, Registry, Summary, collectDefaultMetrics } from 'prom-client'
import type {
  CalculateMetric, Metrics, MetricGroup, MultiaddrConnection, Stream, StopTimer
} from '@libp2p/interface'

export class NodeMetrics {
  readonly registry = new Registry()

  readonly peersConnected = new Gauge({ name: 'fleetmesh_peers_connected', help: 'Peers with an open connection', registers: [this.registry] })
  readonly members = new Gauge({ name: 'fleetmesh_members', help: 'Admitted, unrevoked members in this host\'s view', registers: [this.registry] })
  readonly gossipMessages = new Counter({ name: 'fleetmesh_gossip_messages_total', help: 'Gossip messages by topic and direction', labelNames: ['topic', 'direction'], registers: [this.registry] })
  readonly logEntries = new Counter({ name: 'fleetmesh_log_entries_total', help: 'Audit log entries appended, received or rejected (by reason)', labelNames: ['event', 'reason'], registers: [this.registry] })
  readonly feedLag = new Gauge({ name: 'fleetmesh_feed_lag_entries', help: 'Entries this host lacks behind the newest head it has heard of, per feed', labelNames: ['feed'], registers: [this.registry] })
  readonly generation = new Gauge({ name: 'fleetmesh_generation_info', help: 'Current and desired system generation (value 1; the store path is the label)', labelNames: ['kind', 'path', 'release'], registers: [this.registry] })
  readonly applyDuration = new Histogram({ name: 'fleetmesh_apply_duration_seconds', help: 'Duration of applies by outcome', labelNames: ['outcome'], buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600], registers: [this.registry] })
  readonly rollbackDuration = new Histogram({ name: 'fleetmesh_rollback_duration_seconds', help: 'Duration of rollbacks', buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60], registers: [this.registry] })
  readonly applies = new Counter({ name: 'fleetmesh_applies_total', help: 'Applies by outcome', labelNames: ['outcome'], registers: [this.registry] })
  readonly healthChecks = new Counter({ name: 'fleetmesh_health_checks_total', help: 'Health check results by check', labelNames: ['check', 'result'], registers: [this.registry] })
  readonly roomMessages = new Counter({ name: 'fleetmesh_room_messages_total', help: 'Room messages by direction and outcome', labelNames: ['direction', 'result'], registers: [this.registry] })
  readonly equivocations = new Gauge({ name: 'fleetmesh_equivocating_feeds', help: 'Feeds caught signing two different entries at one seq', registers: [this.registry] })
  /** libp2p's own figures and the encrypter's handshake counters, once libp2p is given `libp2p` */
  readonly libp2p: Metrics = new Libp2pPrometheus(this.registry)

  constructor () {
    // The standard process_* and nodejs_* names, unprefixed, as every client library and the
    // usual dashboards have them (the job label tells fleetmesh apart).
    collectDefaultMetrics({ register: this.registry })
    // prom-client's nodejs_active_{handles,requests,resources}_total are gauges named like
    // counters; each is the sum over its labelled gauge (nodejs_active_handles{type} …), so
    // nothing is lost without them.
    for (const name of ['handles', 'requests', 'resources']) this.registry.removeSingleMetric(`nodejs_active_${name}_total`)
  }

  private readonly generationSeries = new Map<string, Record<string, string>>()

  /** Replaces the generation info series: only the latest current/desired pair is meaningful. */
  setGeneration (kind: 'current' | 'desired', path: string | null, release: string | null): void {
    const old = this.generationSeries.get(kind)
    if (old !== undefined) this.generation.remove(old)
    this.generationSeries.delete(kind)
    if (path === null) return
    const labels = { kind, path, release: release ?? '' }
    this.generation.set(labels, 1)
    this.generationSeries.set(kind, labels)
  }
}

type Labels = Record<string, string>
interface Options { label?: string, help?: string, buckets?: number[], percentiles?: number[], calculate?: CalculateMetric<number | Record<string, number>> }

// Prometheus names allow [a-zA-Z_:][a-zA-Z0-9_:]*; libp2p's are close but not guaranteed.
const metricName = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/^([0-9])/, '_$1')

/**
 * libp2p names a few gauges against Prometheus' conventions; they are renamed here, where
 * the names are made. `_total` belongs to counters, so a gauge loses it; a status code is no
 * `_info` (whose value is always 1); a time is in seconds, so milliseconds are scaled (a
 * variance, in ms², by the square).
 */
const GAUGE_RENAMES: Partial<Record<string, { name: string, scale: (key: string) => number }>> = {
  libp2p_tcp_listener_status_info: { name: 'libp2p_tcp_listener_status', scale: () => 1 },
  libp2p_connection_monitor_ping_time_milliseconds: { name: 'libp2p_connection_monitor_ping_time_seconds', scale: (key) => /variance/i.test(key) ? 1e-6 : 1e-3 }
}

/** A counter's name ends in `_total`. */
const counterName = (name: string): string => name.endsWith('_total') ? name : `${name}_total`

function gaugeName (name: string): { name: string, scale: (key: string) => number } {
  const n = metricName(name)
  return GAUGE_RENAMES[n] ?? { name: n.replace(/_total$/, ''), scale: () => 1 }
}

function timerOf (observe: (seconds: number) => void): StopTimer {
  const start = process.hrtime.bigint()
  return () => { observe(Number(process.hrtime.bigint() - start) / 1e9) }
}

/**
 * libp2p's `Metrics` component over the node's registry: the encrypter's handshake counters,
 * the upgrader's dial errors by reason and the bytes of every protocol stream (the audit sync's
 * among them) land beside the node's own figures. A group is one metric with a label (libp2p's
 * `label` option, else `key`).
 */
export class Libp2pPrometheus implements Metrics {
  private readonly made = new Map<string, unknown>()
  private readonly streamBytes: Counter
  private readonly connectionBytes: Counter

  constructor (private readonly registry: Registry) {
    this.streamBytes = new Counter({ name: 'fleetmesh_stream_bytes_total', help: 'Bytes on libp2p protocol streams by protocol and direction (the audit sync is /fleetmesh/audit-sync/…)', labelNames: ['protocol', 'direction'], registers: [registry] })
    this.connectionBytes = new Counter({ name: 'fleetmesh_connection_bytes_total', help: 'Bytes on raw (encrypted) connections by direction', labelNames: ['direction'], registers: [registry] })
  }

  trackMultiaddrConnection (maConn: MultiaddrConnection): void {
    this.countBytes(maConn, (direction, n) => { this.connectionBytes.inc({ direction }, n) })
  }

  trackProtocolStream (stream: Stream): void {
    this.countBytes(stream, (direction, n) => { this.streamBytes.inc({ protocol: stream.protocol ?? 'unknown', direction }, n) })
  }

  // Inbound bytes arrive as 'message' events; outbound ones only pass through send(), so it is
  // wrapped here, as libp2p's own metrics implementations do.
  private countBytes (s: Pick<Stream, 'addEventListener' | 'send'>, count: (direction: 'in' | 'out', n: number) => void): void {
    s.addEventListener('message', (evt) => { count('in', evt.data.byteLength) })
    const send = s.send.bind(s)
    s.send = (data) => { count('out', data.byteLength); return send(data) }
  }

  private once<T> (name: string, make: (name: string) => T): T {
    const key = metricName(name)
    if (!this.made.has(key)) this.made.set(key, make(key))
    return this.made.get(key) as T
  }

  private labelled (name: string, opts: Options): { help: string, labelNames: string[], label: string } {
    return { help: opts.help ?? name, labelNames: [opts.label ?? 'key'], label: opts.label ?? 'key' }
  }

  registerMetric: Metrics['registerMetric'] = ((name: string, opts: Options = {}) => this.once(name, () => {
    const { name: n, scale } = gaugeName(name)
    const k = scale('')
    const calc = opts.calculate as CalculateMetric<number> | undefined
    const g: Gauge = new Gauge({ name: n, help: opts.help ?? name, registers: [this.registry], ...(calc !== undefined ? { async collect () { g.set(k * await calc()) } } : {}) })
    if (calc !== undefined) return undefined
    return {
      update: (v: number) => { g.set(k * v) },
      increment: (v = 1) => { g.inc(k * v) },
      decrement: (v = 1) => { g.dec(k * v) },
      reset: () => { g.reset() },
      timer: () => timerOf((s) => { g.set(s) })
    }
  })) as Metrics['registerMetric']

  registerMetricGroup: Metrics['registerMetricGroup'] = ((name: string, opts: Options = {}) => this.once(name, () => {
    const { name: n, scale } = gaugeName(name)
    const { help, labelNames, label } = this.labelled(name, opts)
    const calc = opts.calculate as CalculateMetric<Record<string, number>> | undefined
    const g: Gauge = new Gauge({
      name: n,
      help,
      labelNames,
      registers: [this.registry],
      ...(calc !== undefined ? { async collect () { g.reset(); for (const [k, v] of Object.entries(await calc())) g.set({ [label]: k }, scale(k) * v) } } : {})
    })
    if (calc !== undefined) return undefined
    const each = (values: Record<string, number | true | undefined>, fn: (l: Labels, v: number) => void): void => {
      for (const [k, v] of Object.entries(values)) if (v !== undefined) fn({ [label]: k }, v === true ? 1 : scale(k) * v)
    }
    const group: MetricGroup = {
      update: (values) => { each(values, (l, v) => { g.set(l, v) }) },
      increment: (values) => { each(values, (l, v) => { g.inc(l, v) }) },
      decrement: (values) => { each(values, (l, v) => { g.dec(l, v) }) },
      reset: () => { g.reset() },
      timer: (key) => timerOf((s) => { g.set({ [label]: key }, s) })
    }
    return group
  })) as Metrics['registerMetricGroup']

  registerCounter: Metrics['registerCounter'] = ((name: string, opts: Options = {}) => this.once(name, (m) => {
    const n = counterName(m)
    const calc = opts.calculate as CalculateMetric<number> | undefined
    const c: Counter = new Counter({ name: n, help: opts.help ?? name, registers: [this.registry], ...(calc !== undefined ? { async collect () { c.reset(); c.inc(await calc()) } } : {}) })
    if (calc !== undefined) return undefined
    return { increment: (v = 1) => { c.inc(v) }, reset: () => { c.reset() } }
  })) as Metrics['registerCounter']

  registerCounterGroup: Metrics['registerCounterGroup'] = ((name: string, opts: Options = {}) => this.once(name, (m) => {
    const n = counterName(m)
    const { help, labelNames, label } = this.labelled(name, opts)
    const calc = opts.calculate as CalculateMetric<Record<string, number>> | undefined
    const c: Counter = new Counter({
      name: n,
      help,
      labelNames,
      registers: [this.registry],
      ...(calc !== undefined ? { async collect () { c.reset(); for (const [k, v] of Object.entries(await calc())) c.inc({ [label]: k }, v) } } : {})
    })
    if (calc !== undefined) return undefined
    return {
      increment: (values: Record<string, number | true | undefined>) => {
        for (const [k, v] of Object.entries(values)) if (v !== undefined) c.inc({ [label]: k }, v === true ? 1 : v)
      },
      reset: () => { c.reset() }
    }
  })) as Metrics['registerCounterGroup']

  registerHistogram: Metrics['registerHistogram'] = ((name: string, opts: Options = {}) => this.once(name, (n) => {
    const calc = opts.calculate as CalculateMetric<number> | undefined
    const h: Histogram = new Histogram({ name: n, help: opts.help ?? name, registers: [this.registry], ...(opts.buckets !== undefined ? { buckets: opts.buckets } : {}), ...(calc !== undefined ? { async collect () { h.observe(await calc()) } } : {}) })
    if (calc !== undefined) return undefined
    return { observe: (v: number) => { h.observe(v) }, reset: () => { h.reset() }, timer: () => timerOf((s) => { h.observe(s) }) }
  })) as Metrics['registerHistogram']

  registerHistogramGroup: Metrics['registerHistogramGroup'] = ((name: string, opts: Options = {}) => this.once(name, (n) => {
    const { help, labelNames, label } = this.labelled(name, opts)
    const h = new Histogram({ name: n, help, labelNames, registers: [this.registry], ...(opts.buckets !== undefined ? { buckets: opts.buckets } : {}) })
    return {
      observe: (values: Record<string, number | undefined>) => { for (const [k, v] of Object.entries(values)) if (v !== undefined) h.observe({ [label]: k }, v) },
      reset: () => { h.reset() },
      timer: (key: string) => timerOf((s) => { h.observe({ [label]: key }, s) })
    }
  })) as Metrics['registerHistogramGroup']

  registerSummary: Metrics['registerSummary'] = ((name: string, opts: Options = {}) => this.once(name, (n) => {
    const s = new Summary({ name: n, help: opts.help ?? name, registers: [this.registry], ...(opts.percentiles !== undefined ? { percentiles: opts.percentiles } : {}) })
    return { observe: (v: number) => { s.observe(v) }, reset: () => { s.reset() }, timer: () => timerOf((x) => { s.observe(x) }) }
  })) as Metrics['registerSummary']

  registerSummaryGroup: Metrics['registerSummaryGroup'] = ((name: string, opts: Options = {}) => this.once(name, (n) => {
    const { help, labelNames, label } = this.labelled(name, opts)
    const s = new Summary({ name: n, help, labelNames, registers: [this.registry], ...(opts.percentiles !== undefined ? { percentiles: opts.percentiles } : {}) })
    return {
      observe: (values: Record<string, number | undefined>) => { for (const [k, v] of Object.entries(values)) if (v !== undefined) s.observe({ [label]: k }, v) },
      reset: () => { s.reset() },
      timer: (key: string) => timerOf((x) => { s.observe({ [label]: key }, x) })
    }
  })) as Metrics['registerSummaryGroup']

  // Tracing is not collected: functions run as they are.
  traceFunction<F> (_name: string, fn: F): F { return fn }
  createTrace (): undefined { return undefined }
}
