// Freshness through the real deploy agent (issue 14 feature 7): real hosts (libp2p over TCP
// loopback, level stores, the daemon's sync, membership and deploy agent; an executor that
// applies in zero time). The founder's store clock runs eight days behind, so its releases are
// signed "eight days ago" as far as the other hosts' clocks go: every host first decides on them
// now. A release fresh for 7 days is refused by every host — each writes its own stale verdict,
// once, which a restart does not repeat — and `release status` lists them stale; one fresh for
// 30 days is applied everywhere.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSimMesh, type SimHost } from '../../simulations/harness/sim-host.js'
import { releaseStatus, type ReleaseBody } from '../../protocols/rollout/index.js'
import { until } from '../audit/helpers.js'

const WAIT_MS = 60_000
const DAY = 86_400_000
const PATH = '/nix/store/0c8ksd4wsnprmkgv2ddzd8b5jkxdlsfq-fresh'

async function ownEntries (h: SimHost, kind: string, release: string): Promise<number> {
  let n = 0
  for await (const s of h.store.log()) {
    if (s.entry.feed === h.peerId && s.entry.kind === kind && (s.entry.body as { release?: string }).release === release) n++
  }
  return n
}

test('a release signed longer ago than its freshness window is refused by every host that first learns of it now', { timeout: 5 * 60_000 }, async () => {
  const mesh = await createSimMesh(3, { host: (i) => i === 0 ? { now: () => Date.now() - 8 * DAY } : {} })
  try {
    const { founder } = mesh
    const [, b, c] = mesh.hosts
    const publish = async (freshForMs: number): Promise<ReleaseBody> => await founder.agent.publish({ targets: [{ tag: 'web', path: PATH, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0, freshForMs })

    const stale = await publish(7 * DAY)
    const all = mesh.hosts.map((h) => h.peerId).sort()
    // b and c hold every verdict (the founder's store refuses their entries: its clock is behind)
    for (const h of [b, c]) {
      await until(() => releaseStatus(h.rollout, h.view, stale.id)?.staleHosts.length === 3, `${h.peerId} to see every host refuse the stale release`, WAIT_MS)
      const s = releaseStatus(h.rollout, h.view, stale.id)
      assert.deepEqual(s?.staleHosts, all)
      assert.equal(s?.waves[0].pending, 0, 'a stale host is not pending')
      assert.equal(s?.failed, 0, 'nor failed')
    }
    for (const h of mesh.hosts) {
      assert.equal(h.applied.has(stale.id), false, `${h.peerId} applied a stale release`)
      assert.equal(await ownEntries(h, 'apply-start', stale.id), 0)
    }

    // the verdict is the host's own entry: a restart judges nothing again
    await b.stop()
    await b.start()
    await b.dial(c.address())
    await b.dial(founder.address())
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    assert.equal(await ownEntries(b, 'release-seen', stale.id), 1)
    assert.equal(await ownEntries(b, 'apply-start', stale.id), 0)

    const fresh = await publish(30 * DAY)
    await until(() => mesh.hosts.every((h) => h.applied.has(fresh.id)), 'every host to apply the release still within its window', WAIT_MS)
    for (const h of mesh.hosts) assert.equal(await ownEntries(h, 'release-seen', fresh.id), 1)
  } finally {
    await mesh.close()
  }
})
