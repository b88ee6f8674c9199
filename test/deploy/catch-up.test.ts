// Catch-up before deciding, not only once per daemon start (finding 12): a running host that
// lost every peer holds a log as stale as one back from downtime. Real hosts (libp2p over TCP
// loopback, the daemon's sync, membership and deploy agent, an executor that applies in zero
// time): a host is cut off from the mesh while it holds a release due to start in a few seconds;
// the release is aborted behind its back. It must not act on its stale copy when the release's
// time comes, and once the network is back it catches up with a member, sees the abort, and
// never applies the release.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSimMesh, type SimHost } from '../../simulations/harness/sim-host.js'
import { nextReleaseNumber, type ReleaseBody } from '../../protocols/rollout/index.js'
import { until } from '../audit/helpers.js'

const WAIT_MS = 60_000
const PATH = '/nix/store/0c8ksd4wsnprmkgv2ddzd8b5jkxdlsfq-catch-up'


async function ownKinds (h: SimHost, release: string): Promise<string[]> {
  const kinds: string[] = []
  for await (const s of h.store.log()) {
    if (s.entry.feed === h.peerId && (s.entry.body as { release?: string }).release === release) kinds.push(s.entry.kind)
  }
  return kinds
}

test('a host that lost every peer waits to catch up again before it decides', { timeout: 5 * 60_000 }, async () => {
  let isolated: string | undefined
  const mesh = await createSimMesh(3, {
    // the wait after a cut is longer than the test: only catching up may end it
    host: () => ({ catchUpGraceMs: 10 * 60_000 }),
    blocked: (self) => isolated === undefined ? new Set() : self === isolated ? new Set(mesh.hosts.map((h) => h.peerId).filter((p) => p !== self)) : new Set([isolated])
  })
  try {
    const { founder } = mesh
    const x = mesh.hosts[2]
    const notBefore = Date.now() + 8_000
    const body: ReleaseBody = {
      id: 'r-catch-up',
      number: nextReleaseNumber(founder.rollout, founder.view),
      targets: [{ tag: 'web', path: PATH, sources: ['peers'] }],
      waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }],
      maxFailures: 0,
      notBefore,
      basis: founder.membership.basis()
    }
    await founder.store.append('release', body)
    await until(() => mesh.hosts.every((h) => h.known.has(body.id)), 'every host to hold the release', WAIT_MS)

    isolated = x.peerId
    for (const h of mesh.hosts) await h.cut()
    await until(() => x.libp2p.getConnections().length === 0, `${x.peerId} to have no peer left`, WAIT_MS)
    await founder.agent.control(body.id, 'abort')
    await until(async () => (await ownKinds(founder, body.id)).includes('release-control') && mesh.hosts[1].rollout.controls.has(body.id), 'the abort to reach the connected host', WAIT_MS)

    // The release's time comes while the host is cut off, and a little more.
    await new Promise((resolve) => setTimeout(resolve, notBefore - Date.now() + 3_000))
    assert.deepEqual(await ownKinds(x, body.id), [], 'the cut-off host did not act on its stale log')

    isolated = undefined
    await x.dial(founder.address())
    await until(() => x.rollout.controls.has(body.id), 'the cut-off host to catch up with the abort', WAIT_MS)
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    assert.deepEqual(await ownKinds(x, body.id), [], 'after catching up it never applied the aborted release')
    assert.equal(x.applied.has(body.id), false)
    for (const h of mesh.hosts.slice(0, 2)) assert.deepEqual(await ownKinds(h, body.id), h === founder ? ['release-control'] : [], 'the connected hosts saw the abort in time')
  } finally {
    await mesh.close()
  }
})
