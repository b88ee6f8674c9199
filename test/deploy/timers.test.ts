// The agent's side of local timeouts (DESIGN §8): a decision names a timer, the agent runs it on
// its own monotonic clock, and once it ran out the decision asks for an `overdue` entry, which
// the agent appends before it decides again, so the fleet moves on from a signed fact, not from
// anyone's clock. Real hosts (libp2p over TCP loopback, the daemon's sync, membership and deploy
// agent, an executor that applies in zero time): the canary wave's only host is offline, the
// wave waits for it, and after the wait one host declares it silent and the next wave applies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSimMesh, type SimHost } from '../../simulations/harness/sim-host.js'
import { nextReleaseNumber, type ReleaseBody } from '../../protocols/rollout/index.js'
import { until } from '../audit/helpers.js'

const WAIT_MS = 120_000
const PATH = '/nix/store/1c8ksd4wsnprmkgv2ddzd8b5jkxdlsfq-timers'


async function entriesOf (h: SimHost, kind: string, release: string): Promise<Array<{ feed: string, body: Record<string, unknown> }>> {
  const out: Array<{ feed: string, body: Record<string, unknown> }> = []
  for await (const s of h.store.log({ kind })) {
    if ((s.entry.body as { release?: string }).release === release) out.push({ feed: s.entry.feed, body: s.entry.body as Record<string, unknown> })
  }
  return out
}

test('a wave waiting for a silent host opens on an overdue entry a host wrote when its own timer ran out', { timeout: 5 * 60_000 }, async () => {
  const mesh = await createSimMesh(4)
  try {
    const { founder } = mesh
    const silent = mesh.hosts[3]
    const online = mesh.hosts.slice(0, 3)
    await silent.stop()
    const body: ReleaseBody = {
      id: 'r-timers',
      number: nextReleaseNumber(founder.rollout, founder.view),
      targets: [{ tag: 'web', path: PATH, sources: ['peers'] }],
      waves: [{ hosts: [silent.peerId], gate: { healthy: 100, soakMs: 0 }, waitOfflineMs: 0 }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }],
      maxFailures: 0,
      basis: founder.membership.basis()
    }
    await founder.store.append('release', body)

    await until(async () => {
      for (const h of online) if (!h.applied.has(body.id)) return false
      return true
    }, 'every online host to apply wave 1', WAIT_MS)
    for (const h of online) {
      const overdue = await entriesOf(h, 'overdue', body.id)
      assert.ok(overdue.length >= 1, `${h.peerId} holds the overdue entry`)
      for (const o of overdue) {
        assert.deepEqual(o.body.hosts, [silent.peerId])
        assert.equal(o.body.why, 'silent')
        assert.equal(o.body.wave, 0)
      }
      // Each wave-1 host started only after an overdue entry was in its log.
      const starts = await entriesOf(h, 'apply-start', body.id)
      assert.ok(starts.every((s) => s.body.wave === 1), 'nobody applied wave 0')
    }
    const writers = new Set((await entriesOf(founder, 'overdue', body.id)).map((o) => o.feed))
    assert.ok(writers.size >= 1 && [...writers].every((w) => online.some((h) => h.peerId === w)), 'written by an online plan host')
  } finally {
    await mesh.close()
  }
})
