// Metric names as Prometheus' own linter wants them: real daemon processes paired over a real
// invite, their /metrics scraped through the control API, and `promtool check metrics` must
// print nothing at all — for fleetmesh's figures, prom-client's process figures and libp2p's
// figures alike (libp2p's names are made in our adapter, node/metrics.ts, so they are ours too).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { NodeMetrics } from '../../node/metrics.js'
import { promtoolCheck } from './observe-apt.js'

async function scrape (host: FleetHost): Promise<string> {
  const { url } = JSON.parse(await readFile(join(host.dataDir, 'api.json'), 'utf8')) as { url: string }
  const token = (await readFile(join(host.dataDir, 'api-token'), 'utf8')).trim()
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(res.status, 200)
  return res.text()
}

test('promtool finds nothing to say about a real node\'s /metrics', { timeout: 10 * 60_000 }, async () => {
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b' }] })
  try {
    await fleet.pairAll()
    for (const h of fleet.hosts) {
      const text = await scrape(h)
      // the check reads a real scrape: each family below is present
      for (const family of ['fleetmesh_members', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'fleetmesh_noise_hfs_handshake_successes_total', 'fleetmesh_applies_total']) {
        assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), `${h.name}: ${family} in /metrics`)
      }
      assert.match(text, /^# TYPE libp2p_\w+ /m, `${h.name}: libp2p's own figures in /metrics`)
      assert.deepEqual(await promtoolCheck(text), [], `${h.name}: promtool check metrics has something to say`)
    }
    // and the check is not blind: a counter without _total is reported
    const bad = await promtoolCheck('# HELP fleetmesh_x_count x\n# TYPE fleetmesh_x_count counter\nfleetmesh_x_count 1\n')
    assert.match(bad.join('\n'), /fleetmesh_x_count.*_total/)
  } finally {
    await fleet.close()
  }
})

test('libp2p figures named against the conventions are renamed where the names are made', async () => {
  const m = new NodeMetrics()
  // as libp2p's connection monitor, TCP listener and registrar register them
  m.libp2p.registerMetricGroup('libp2p_connection_monitor_ping_time_milliseconds').update({ success: 250, successVariance: 4 })
  m.libp2p.registerMetricGroup('libp2p_tcp_listener_status_info', { label: 'address', help: 'status' }).update({ '/ip4/127.0.0.1/tcp/1': 2 })
  m.libp2p.registerMetricGroup('libp2p_tcp_listener_events_total', { label: 'address', help: 'events' }).increment({ '/ip4/127.0.0.1/tcp/1 connection': true })
  m.libp2p.registerCounter('libp2p_example_dials', { help: 'dials' }).increment(3)
  const text = await m.registry.metrics()
  assert.match(text, /^libp2p_connection_monitor_ping_time_seconds\{key="success"\} 0\.25$/m)
  assert.match(text, /^libp2p_connection_monitor_ping_time_seconds\{key="successVariance"\} 0\.000004$/m)
  assert.match(text, /^libp2p_tcp_listener_status\{address="\/ip4\/127\.0\.0\.1\/tcp\/1"\} 2$/m)
  assert.match(text, /^libp2p_tcp_listener_events\{address="\/ip4\/127\.0\.0\.1\/tcp\/1 connection"\} 1$/m)
  assert.match(text, /^libp2p_example_dials_total 3$/m)
  const names = text.split('\n').filter((l) => !l.startsWith('# HELP ')).join('\n')
  assert.doesNotMatch(names, /_milliseconds|_status_info|events_total|^nodejs_active_\w+_total/m)
  assert.deepEqual(await promtoolCheck(text), [])
})
