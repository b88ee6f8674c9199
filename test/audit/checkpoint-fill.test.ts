// Adopting a checkpoint must not cost a host history a member can still serve, nor hide an entry
// below a base: real hosts (MeshNodes over TCP loopback, real LevelDB), and a host that lags,
// assembled from its own data dir as the daemon assembles it but with its sync pulling only when
// the checkpoint component asks (no connect-time or periodic repair), so the lag is certain when
// it follows. A host one entry behind keeps the whole feed (archive or not); a checkpoint by a
// revoked admin whose refs leave out its own revoke is refused by a host that had not seen the
// revoke but can fetch it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { peerIdFromString } from '@libp2p/peer-id'
import { MeshNode } from '../../node/mesh.js'
import { initHost } from '../../node/init.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { dataPaths } from '../../node/config.js'
import { loadIdentity } from '../../crypto/identity.js'
import { Checkpoints } from '../../node/checkpoints.js'
import { createMeshLibp2p } from '../../node/libp2p.js'
import { Membership } from '../../node/membership.js'
import { MetaStore } from '../../node/meta.js'
import { openAuditStore, openDb } from '../../node/store.js'
import { AuditSync, type AuditStore } from '../../protocols/audit/index.js'
import { headsRoot } from '../../protocols/audit/heads-root.js'
import { buildCheckpoint, CHECKPOINT_KIND } from '../../protocols/checkpoint/index.js'
import { until } from './helpers.js'

const WAIT_MS = 60_000
const quiet = pino({ level: 'silent' })

async function startNode (dir: string): Promise<MeshNode> {
  const path = process.env.PATH
  process.env.PATH = ''
  return await MeshNode.start({ dataDir: dir, logger: quiet }).finally(() => { process.env.PATH = path })
}

async function newHost (name: string, opts: { mesh?: string, archive?: boolean } = {}): Promise<{ dir: string, node: MeshNode }> {
  const dir = mkdtempSync(join(tmpdir(), `fleetmesh-cpfill-${name}-`))
  await initHost(dir, { mesh: opts.mesh })
  const config = await readConfig(dir)
  // a long window: what the writer covers stays servable
  await writeConfig(dir, { ...config, audit: { historyDays: 30, archive: opts.archive === true, checkpointIntervalMs: 0 } })
  return { dir, node: await startNode(dir) }
}

interface Lagging { store: AuditStore, cps: Checkpoints, close: () => Promise<void> }

/** A paused host's data dir opened again with a sync that pulls only what its checkpoint component asks for. */
async function lagging (dir: string, archive: boolean, dialTo: MeshNode[]): Promise<Lagging> {
  const paths = dataPaths(dir)
  const identity = await loadIdentity(paths.identity)
  const db = await openDb(paths.db)
  let members: Membership | undefined
  const store = await openAuditStore(db, identity, () => members)
  const membership = members = await Membership.open(store, new MetaStore(db), identity.peerId.toString(), quiet)
  const libp2p = await createMeshLibp2p({ privateKey: identity.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], gater: membership.gater() })
  const sync = new AuditSync({ libp2p, store, allowPeer: (p) => membership.isMember(p) })
  const cps = new Checkpoints({
    self: identity.peerId.toString(),
    store,
    libp2p,
    membership,
    config: { historyDays: 30, archive, checkpointIntervalMs: 0 },
    log: quiet,
    fill: async (peer, feed, from, to) => {
      const r = await sync.pull(peer, feed, from, to)
      if (r.error !== undefined) throw r.error
    }
  })
  await cps.protocol.start()
  for (const n of dialTo) await libp2p.dial(n.libp2p.getMultiaddrs()[0])
  return {
    store,
    cps,
    close: async () => {
      await cps.protocol.stop()
      await libp2p.stop()
      await store.close()
      await db.close()
    }
  }
}

async function chainOf (store: AuditStore, feed: string): Promise<number[]> {
  return (await store.range(feed, 0, store.head(feed)?.seq ?? -1)).map(s => s.entry.seq)
}

describe('adopting a checkpoint keeps what members can serve', { timeout: 10 * 60_000 }, () => {
  const dirs: string[] = []
  const nodes: MeshNode[] = []
  const opened: Lagging[] = []
  let a: MeshNode, b: MeshNode
  let cDir: string, arcDir: string

  before(async () => {
    const x = await newHost('a', { mesh: 'fill' })
    a = x.node
    dirs.push(x.dir)
    nodes.push(a)
    for (const [name, role, archive] of [['b', 'admin', false], ['c', 'host', false], ['arc', 'host', true]] as const) {
      const h = await newHost(name, { archive })
      dirs.push(h.dir)
      nodes.push(h.node)
      const inv = await a.pairing.createInvite({ ttlSeconds: 600, uses: 1, role, tags: [] })
      await h.node.join(inv.code)
      await until(() => h.node.membership.view()?.members.has(h.node.peerId) === true, `${name} admitted`, WAIT_MS)
      if (name === 'b') b = h.node
      if (name === 'c') cDir = h.dir
      if (name === 'arc') arcDir = h.dir
    }
    for (const x of nodes) for (const y of nodes) if (x !== y && x.libp2p.getConnections(peerIdFromString(y.peerId)).length === 0) await x.libp2p.dial(y.libp2p.getMultiaddrs()[0]).catch(() => {})
    // b's feed has history every host holds
    for (let i = 0; i < 3; i++) await b.store.append('note', { i })
    const feeds = nodes.map(n => n.peerId)
    await until(() => nodes.every(n => feeds.every(f => n.store.head(f)?.seq === nodes[0].store.head(f)?.seq)), 'the fleet converged', WAIT_MS)
    // c and the archive go away; b writes one more entry, a a checkpoint over it
    await nodes[2].stop()
    await nodes[3].stop()
    nodes.length = 2
  })

  after(async () => {
    for (const l of opened) await l.close().catch(() => {})
    for (const n of nodes) await n.stop().catch(() => {})
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  test('a host one entry behind on a feed adopts the checkpoint and still holds the whole feed, archive or not', async () => {
    await b.store.append('note', { late: true })
    await until(() => a.store.head(b.peerId)?.seq === b.store.head(b.peerId)?.seq, 'a holds b\'s note', WAIT_MS)
    const cp = await a.checkpoints.write()
    for (const [dir, archive] of [[cDir, false], [arcDir, true]] as const) {
      const h = await lagging(dir, archive, [a, b])
      opened.push(h)
      const want = b.store.head(b.peerId)!.seq
      assert.equal(h.store.head(b.peerId)?.seq, want - 1, 'one entry behind on b\'s feed')
      const res = await h.cps.follow(peerIdFromString(a.peerId))
      assert.deepEqual(res.refused, [])
      assert.equal(res.adopted?.hash.toString(), cp.hash.toString())
      assert.equal(h.store.checkpoint()?.number, 1)
      assert.equal(h.store.base(b.peerId), undefined, 'no base: nothing dropped')
      assert.deepEqual(await chainOf(h.store, b.peerId), Array.from({ length: want + 1 }, (_, i) => i))
      const v = await h.store.verifyAll()
      assert.equal(v.ok, true, JSON.stringify(v.ok ? v : v.error.message))
    }
  })

  test('a revoked admin\'s checkpoint whose refs leave out its revoke is refused by a host that had not seen the revoke', async () => {
    const c = opened[0]
    await a.membership.revoke(b.peerId, 'compromised')
    const revoke = a.store.head(a.peerId)!
    // a hangs up on b at once: b is handed the revoke
    const have = b.store.head(a.peerId)?.seq ?? -1
    await b.store.ingest((await a.store.range(a.peerId, have + 1, revoke.seq)).map(s => s.bytes))
    assert.equal(b.store.head(a.peerId)?.seq, revoke.seq)
    assert.ok((c.store.head(a.peerId)?.seq ?? -1) < revoke.seq, 'c has not seen the revoke')
    // b signs checkpoint 2 over everything it holds, but leaves its revoke out of the refs
    const entries = []
    for await (const s of b.store.log()) entries.push(s)
    const cover = b.store.heads()
    const built = buildCheckpoint(2, cover, entries.filter(s => s.entry.seq <= (cover.find(h => h.feed === s.entry.feed)?.seq ?? -1)))
    const refs = built.refs.filter(r => !(r.feed === a.peerId && r.seq === revoke.seq))
    assert.equal(refs.length, built.refs.length - 1)
    const cp2 = await b.store.append(CHECKPOINT_KIND, { ...built.body, retain: headsRoot(refs), retained: refs.length })
    await b.store.adoptCheckpoint(cp2.bytes, { cover: built.cover, refs })
    const res = await c.cps.follow(peerIdFromString(b.peerId))
    assert.equal(res.adopted, undefined)
    assert.deepEqual(res.refused.map(x => [x.number, x.reason]), [[2, 'NOT_ADMIN']])
    assert.equal(c.store.checkpoint()?.number, 1)
    assert.equal(c.store.head(a.peerId)?.seq, revoke.seq, 'c fetched the revoke')
    assert.equal(c.store.base(a.peerId), undefined)
  })

  test('a member serving a checkpoint\'s parts that do not match its signed roots is banned and hung up on', async () => {
    const c = opened[0]
    const cover = a.store.heads()
    const cp = await a.store.append(CHECKPOINT_KIND, { number: 3, cover: headsRoot(cover), count: cover.length, retain: headsRoot([]), retained: 0 })
    // a keeps (and so serves) a cover other than the one it signed: one head short
    await a.store.adoptCheckpoint(cp.bytes, { cover: cover.slice(1), refs: [] })
    const res = await c.cps.follow(peerIdFromString(a.peerId))
    assert.deepEqual(res.refused.map(x => [x.number, x.reason]), [[3, 'COVER_MISMATCH']])
    assert.equal(c.cps.isBanned(a.peerId), true)
    await until(() => a.libp2p.getConnections(peerIdFromString(c.store.feed as string)).length === 0, 'c hung up on a', WAIT_MS)
    assert.deepEqual(await c.cps.follow(peerIdFromString(a.peerId)), { refused: [] })
  })
})
