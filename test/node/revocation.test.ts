// The revocation notice cannot be forged: only a revoke of this very host, signed by an author
// that was an admin when it wrote it, and shown by a member, is believed. Real nodes in process
// (libp2p over loopback TCP, LevelDB), one fleet of three.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { pino } from 'pino'
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { initHost } from '../../node/init.js'
import { MeshNode } from '../../node/mesh.js'
import { REVOCATION_PROTOCOL } from '../../node/revocation.js'
import { tempDir } from '../../simulations/harness/processes.js'

const quiet = pino({ level: 'silent' })
let admin: MeshNode
let a: MeshNode
let c: MeshNode

async function waitFor (ok: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 60_000
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function node (name: string, mesh?: string): Promise<MeshNode> {
  const dir = join(await tempDir(), name)
  await initHost(dir, mesh !== undefined ? { mesh } : {})
  return MeshNode.start({ dataDir: dir, logger: quiet })
}

before(async () => {
  admin = await node('admin', 'notices')
  a = await node('a')
  c = await node('c')
  for (const n of [a, c]) {
    const invite = await admin.pairing.createInvite({ ttlSeconds: 600, uses: 1, role: 'host', tags: [] })
    assert.equal((await n.join(invite.code)).admitted, true)
  }
  await waitFor(() => c.libp2p.getPeers().some((p) => p.toString() === a.peerId) || a.membership.isMember(c.peerId), 'a to know c as a member')
  await c.libp2p.dial(a.libp2p.getMultiaddrs()[0]!)
})

after(async () => {
  for (const n of [c, a, admin]) await n?.stop()
})

/** c shows a a revoke entry it signed itself, over the notice protocol. */
async function showFromC (body: unknown): Promise<void> {
  const forged = await c.store.append('revoke', body)
  const conn = c.libp2p.getConnections(peerIdFromString(a.peerId)).find((x) => x.status === 'open')!
  const stream = await conn.newStream(REVOCATION_PROTOCOL)
  await lpStream(stream).write(forged.bytes)
  await stream.close().catch(() => {})
  await new Promise((resolve) => setTimeout(resolve, 1_000))
}

test('a revoke of this host signed by a member that is no admin is not believed', async () => {
  await showFromC({ peer: a.peerId, after: -1, reason: 'forged' })
  assert.equal(a.membership.revocation(), null)
  assert.equal(a.membership.isRevoked(a.peerId), false)
})

test('an admin\'s real revoke is believed and names its author', async () => {
  await admin.membership.revoke(a.peerId, 'retired')
  await waitFor(() => a.membership.revocation() !== null, 'a to learn it was revoked')
  const r = a.membership.revocation()!
  assert.equal(r.by, admin.peerId)
  assert.equal(r.reason, 'retired')
})
