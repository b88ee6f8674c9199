// A seal reaches the real deploy agent (finality, protocols/rollout/seal.ts): real hosts (libp2p
// over TCP loopback, the daemon's sync, membership and deploy agent, an executor that applies in
// zero time). A release waits for its notBefore; meanwhile a newer one is published and a
// checkpoint by the founder seals the first. When its time comes no host applies it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSimMesh } from '../../simulations/harness/sim-host.js'
import { nextReleaseNumber, releaseStatus, type ReleaseBody } from '../../protocols/rollout/index.js'
import { checkpointBody } from '../../protocols/checkpoint/index.js'
import { until } from '../audit/helpers.js'

const WAIT_MS = 60_000
const PATH = '/nix/store/0c8ksd4wsnprmkgv2ddzd8b5jkxdlsfq-sealed'

test('a host never applies a release a counted checkpoint sealed before its time came', { timeout: 5 * 60_000 }, async () => {
  const mesh = await createSimMesh(2)
  try {
    const { founder } = mesh
    const x = mesh.hosts[1]
    const notBefore = Date.now() + 8_000
    const number = nextReleaseNumber(founder.rollout, founder.view)
    const body: ReleaseBody = { id: 'r-sealed', number, targets: [{ tag: 'web', path: PATH, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }], maxFailures: 0, notBefore, basis: founder.membership.basis() }
    await founder.store.append('release', body)
    // a newer release for nobody here, and a checkpoint sealing everything below it
    await founder.store.append('release', { ...body, id: 'r-newer', number: number + 1, targets: [{ tag: 'db', path: PATH, sources: ['peers'] }] })
    const cp = await founder.store.append('checkpoint', checkpointBody({ number: 1, cover: new Uint8Array(32), count: 0, retain: new Uint8Array(32), retained: 0, sealed: number + 1 }))
    await until(() => (x.store.head(founder.peerId)?.seq ?? -1) >= cp.entry.seq, 'the host to hold the checkpoint', WAIT_MS)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, notBefore - Date.now()) + 4_000))
    for (const h of mesh.hosts) assert.equal(h.applied.has(body.id), false, `${h.peerId} applied a sealed release`)
    // the agent's own fold holds the seal
    assert.equal(releaseStatus(x.rollout, x.view, body.id)?.reason, 'sealed by a checkpoint: final')
  } finally {
    await mesh.close()
  }
})
