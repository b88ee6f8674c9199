// What a host counts, in one Prometheus registry per node (not prom-client's global one, so
// several nodes in one process — tests, simulations — keep separate figures).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export class NodeMetrics {
  readonly registry = new Registry()

  readonly peersConnected = new Gauge({ name: 'fleetmesh_peers_connected', help: 'Peers with an open connection', registers: [this.registry] })
  readonly members = new Gauge({ name: 'fleetmesh_members', help: 'Admitted, unrevoked members in this host\'s view', registers: [this.registry] })
  readonly handshakes = new Counter({ name: 'fleetmesh_handshakes_total', help: 'Hybrid Noise handshakes by result and failure reason', labelNames: ['result', 'reason'], registers: [this.registry] })
  readonly gossipMessages = new Counter({ name: 'fleetmesh_gossip_messages_total', help: 'Gossip messages by topic and direction', labelNames: ['topic', 'direction'], registers: [this.registry] })
  readonly logEntries = new Counter({ name: 'fleetmesh_log_entries_total', help: 'Audit log entries appended, received or rejected (by reason)', labelNames: ['event', 'reason'], registers: [this.registry] })
  readonly feedLag = new Gauge({ name: 'fleetmesh_feed_lag_entries', help: 'Entries this host lacks behind the newest head it has heard of, per feed', labelNames: ['feed'], registers: [this.registry] })
  readonly syncBytes = new Counter({ name: 'fleetmesh_sync_bytes_total', help: 'Bytes of audit sync traffic', labelNames: ['direction'], registers: [this.registry] })
  readonly generation = new Gauge({ name: 'fleetmesh_generation_info', help: 'Current and desired system generation (value 1; the store path is the label)', labelNames: ['kind', 'path', 'release'], registers: [this.registry] })
  readonly applyDuration = new Histogram({ name: 'fleetmesh_apply_duration_seconds', help: 'Duration of applies by outcome', labelNames: ['outcome'], buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600], registers: [this.registry] })
  readonly rollbackDuration = new Histogram({ name: 'fleetmesh_rollback_duration_seconds', help: 'Duration of rollbacks', buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60], registers: [this.registry] })
  readonly applies = new Counter({ name: 'fleetmesh_applies_total', help: 'Applies by outcome', labelNames: ['outcome'], registers: [this.registry] })
  readonly healthChecks = new Counter({ name: 'fleetmesh_health_checks_total', help: 'Health check results by check', labelNames: ['check', 'result'], registers: [this.registry] })
  readonly roomMessages = new Counter({ name: 'fleetmesh_room_messages_total', help: 'Room messages by direction and outcome', labelNames: ['direction', 'result'], registers: [this.registry] })
  readonly equivocations = new Gauge({ name: 'fleetmesh_equivocating_feeds', help: 'Feeds caught signing two different entries at one seq', registers: [this.registry] })

  constructor () {
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetmesh_process_' })
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
