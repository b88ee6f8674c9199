// Observability checked on real parts: metrics that promtool (Prometheus' own parser and linter)
// accepts, fed by a real fleet's invites, room message and rollout; the libp2p metrics bridge
// counting real hybrid handshakes; and every secret a demo run created absent from its logs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { hybridNoise } from '../../crypto/noise/index.js'
import { decodeInvite } from '../../crypto/invite.js'
import { NodeMetrics } from '../../node/metrics.js'
import { serveMetrics } from '../../node/observe.js'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import { promtoolCheck } from './observe-apt.js'

const WAIT_MS = 120_000

/** The value of one series in an exposition text, by name and label subset; 0 when absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3])
  }
  return total
}

async function scrape (host: FleetHost): Promise<string> {
  const { url } = JSON.parse(await readFile(join(host.dataDir, 'api.json'), 'utf8')) as { url: string }
  const token = (await readFile(join(host.dataDir, 'api-token'), 'utf8')).trim()
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
  return res.text()
}

async function meshNode (metrics: NodeMetrics): Promise<Libp2p> {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [hybridNoise()],
    streamMuxers: [yamux()],
    metrics: () => metrics.libp2p
  })
}

test('the libp2p metrics bridge counts real hybrid handshakes and protocol bytes, and promtool accepts the result', async () => {
  const ma = new NodeMetrics()
  const mb = new NodeMetrics()
  const a = await meshNode(ma)
  const b = await meshNode(mb)
  const server = await serveMetrics({ host: '127.0.0.1', port: 0 }, async () => ma.registry.metrics(), ma.registry.contentType)
  try {
    await b.handle('/fleetmesh/test-echo/1.0.0', async (stream) => {
      for await (const chunk of stream) stream.send(chunk.subarray())
      await stream.close()
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], '/fleetmesh/test-echo/1.0.0')
    stream.send(new Uint8Array(1000))
    await stream.close()
    let echoed = 0
    for await (const chunk of stream) echoed += chunk.byteLength
    assert.equal(echoed, 1000)

    // The address names another peer id: the encrypter authenticates b and refuses it.
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const wrong = multiaddr(`${b.getMultiaddrs()[0].decapsulateCode(421).toString()}/p2p/${stranger.toString()}`)
    await assert.rejects(a.dial(wrong))

    const port = (server.address() as { port: number }).port
    const res = await fetch(`http://127.0.0.1:${port}/metrics`)
    assert.equal(res.status, 200)
    const text = await res.text()
    assert.equal((await fetch(`http://127.0.0.1:${port}/v1/status`)).status, 404)
    assert.equal(sample(text, 'fleetmesh_noise_hfs_handshake_successes_total'), 1)
    assert.ok(sample(text, 'fleetmesh_noise_hfs_handshake_errors_total') >= 1, 'the refused handshake is counted')
    assert.ok(sample(text, 'libp2p_connection_manager_dials_outbound_errors_total') >= 1, 'the upgrader counts the failed dial by reason')
    assert.equal(sample(text, 'fleetmesh_stream_bytes_total', { protocol: '/fleetmesh/test-echo/1.0.0', direction: 'in' }), 1000)
    assert.ok(sample(text, 'fleetmesh_stream_bytes_total', { protocol: '/fleetmesh/test-echo/1.0.0', direction: 'out' }) >= 1000)
    assert.ok(sample(text, 'fleetmesh_connection_bytes_total', { direction: 'out' }) > 1000)
    assert.deepEqual(await promtoolCheck(text), [])
    const bText = await mb.registry.metrics()
    assert.equal(sample(bText, 'fleetmesh_noise_hfs_handshake_successes_total'), 1)
    assert.deepEqual(await promtoolCheck(bText), [])
    await assert.rejects(promtoolCheck('fleetmesh_broken{ 1\n'), /cannot parse/)
  } finally {
    server.close()
    await a.stop()
    await b.stop()
  }
})

test('a demo fleet: /metrics parses with promtool and counts what happened; no secret reaches any log', { timeout: 10 * 60_000 }, async (t) => {
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin', tags: ['web'] }, { name: 'b', tags: ['web'] }, { name: 'c', tags: ['web'] }], soakMs: 300 })
  const secrets = new Map<string, string>()
  const logs = new Map<string, () => string>()
  try {
    // Paired by hand (not fleet.pairAll) so the test holds every invite code it made.
    const a = await fleet.start('a')
    const aProc = a.process!
    logs.set('a', () => `${aProc.stdout}${aProc.stderr}`)
    for (const name of ['b', 'c']) {
      const inv = await a.json<{ code: string }>(['invite', '--tag', 'web'])
      secrets.set(`invite code for ${name}`, inv.code)
      secrets.set(`invite secret for ${name}`, Buffer.from(decodeInvite(inv.code).secret).toString('hex'))
      const h = await fleet.start(name)
      const proc = h.process!
      logs.set(name, () => `${proc.stdout}${proc.stderr}`)
      assert.equal((await h.json<{ admitted: boolean }>(['join', inv.code])).admitted, true)
    }
    await fleet.waitFor('every host to see three members', async () => {
      for (const h of fleet.hosts) if ((await h.json<unknown[]>(['members'])).length < 3) return false
      return true
    }, WAIT_MS)

    const room = await a.json<{ id: string }>(['room', 'create', 'ops', '--member', `${a.peerId}:bot`, '--member', `${fleet.host('b').peerId}:bot`])
    const agentToken = await fleet.host('b').json<{ token: string }>(['room', 'token', 'bot'])
    secrets.set('agent token', agentToken.token)
    await a.json(['room', 'send', room.id, 'hello from a', '--agent', 'bot'])
    await fleet.waitFor('b to receive the room message', async () => {
      const r = await fleet.host('b').cli(['room', 'tail', room.id, '--json'])
      return r.stdout.includes('hello from a')
    }, WAIT_MS)

    const v1 = await buildGeneration(`observe-v1-${Date.now()}`, 'good')
    const rel = await a.json<{ id: string }>(['release', 'publish', '--tag', 'web', '--path', v1, '--waves', '1,100%', '--gate', 'healthy=100%,soak=1s'])
    await fleet.waitFor('the release to be done', async () => (await a.json<{ state: string }>(['release', 'status', rel.id])).state === 'done', WAIT_MS)
    await fleet.waitFor('c to count its apply', async () => sample(await scrape(fleet.host('c')), 'fleetmesh_applies_total', { outcome: 'ok' }) === 1, WAIT_MS)

    await t.test('every host\'s /metrics passes promtool and counts the run', async () => {
      for (const h of fleet.hosts) {
        const text = await scrape(h)
        assert.deepEqual(await promtoolCheck(text), [], h.name)
        assert.equal(sample(text, 'fleetmesh_members'), 3)
        assert.equal(sample(text, 'fleetmesh_peers_connected'), 2)
        assert.equal(sample(text, 'fleetmesh_applies_total', { outcome: 'ok' }), 1)
        assert.equal(sample(text, 'fleetmesh_apply_duration_seconds_count', { outcome: 'ok' }), 1)
        assert.equal(sample(text, 'fleetmesh_health_checks_total', { check: 'service', result: 'ok' }), 1)
        assert.equal(sample(text, 'fleetmesh_generation_info', { kind: 'current', path: v1 }), 1)
        assert.ok(sample(text, 'fleetmesh_log_entries_total', { event: 'appended' }) >= 2, `${h.name} signed its apply-start and apply-ok`)
        assert.ok(sample(text, 'fleetmesh_log_entries_total', { event: 'received' }) >= 4)
        assert.ok(sample(text, 'fleetmesh_gossip_messages_total', { topic: 'fleetmesh/audit/heads/1', direction: 'out' }) >= 1)
        assert.ok(sample(text, 'fleetmesh_gossip_messages_total', { topic: 'fleetmesh/audit/heads/1', direction: 'in' }) >= 1)
        assert.equal(sample(text, 'fleetmesh_equivocating_feeds'), 0)
        for (const feed of fleet.hosts.map((x) => x.peerId)) assert.equal(sample(text, 'fleetmesh_feed_lag_entries', { feed }), 0)
      }
      const aText = await scrape(a)
      const bText = await scrape(fleet.host('b'))
      assert.equal(sample(aText, 'fleetmesh_room_messages_total', { direction: 'out', result: 'ok' }), 1)
      assert.equal(sample(bText, 'fleetmesh_room_messages_total', { direction: 'in', result: 'ok' }), 1)
    })

    for (const h of fleet.hosts) {
      secrets.set(`${h.name} api token`, (await readFile(join(h.dataDir, 'api-token'), 'utf8')).trim())
      const identity = JSON.parse(await readFile(join(h.dataDir, 'identity.json'), 'utf8')) as { ed25519: string, xwing: string }
      secrets.set(`${h.name} ed25519 seed`, identity.ed25519)
      secrets.set(`${h.name} x-wing seed`, identity.xwing)
    }
    for (const h of fleet.hosts) await fleet.stop(h.name)

    await t.test('the logs are JSON lines with stable keys and hold none of the run\'s secrets', () => {
      for (const [name, text] of logs) {
        const lines = text().split('\n').filter((l) => l.startsWith('{'))
        assert.ok(lines.length > 5, `${name} logged its run`)
        assert.ok(text().includes(fleet.host(name).peerId), `${name}'s log names its peer id: the grep below reads real logs`)
        for (const l of lines) {
          const rec = JSON.parse(l) as Record<string, unknown>
          assert.equal(typeof rec.level, 'number')
          assert.equal(typeof rec.msg, 'string')
        }
        assert.ok(lines.some((l) => { const r = JSON.parse(l) as { release?: string }; return r.release === rel.id }), `${name} logged its deploy decisions with the release key`)
        for (const [what, secret] of secrets) {
          // The same bytes in every encoding a log line might carry them in.
          const raw = /^[0-9a-f]+$/.test(secret) ? Buffer.from(secret, 'hex') : /^[A-Za-z0-9+/]+=*$/.test(secret) ? Buffer.from(secret, 'base64') : null
          for (const form of new Set([secret, ...(raw === null ? [] : [raw.toString('hex'), raw.toString('base64'), raw.toString('base64url')])])) {
            assert.ok(form.length >= 16 && !text().includes(form), `${name}'s log contains the ${what}`)
          }
        }
      }
      assert.ok(secrets.size >= 12)
    })
  } finally {
    await fleet.close()
  }
})
