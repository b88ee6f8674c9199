// Joining from a checkpoint, with real hosts: MeshNodes in this process (real libp2p over TCP
// loopback, real LevelDB, real pairing), each with the checkpoint component node/checkpoints.ts
// attached as the daemon attaches it. The founder writes a checkpoint and every host but the
// archive prunes what it lets go; a host that joins afterwards can only start from it, and must
// end with the member view and the rollout decisions of the archive host that holds everything.
// Then a checkpoint over a forked feed, and one by a revoked admin, are refused. One fleet for
// the file, so the steps run in order.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { pino } from 'pino'
import { peerIdFromString } from '@libp2p/peer-id'
import { MeshNode } from '../../node/mesh.js'
import { initHost } from '../../node/init.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import type { Checkpoints } from '../../node/checkpoints.js'
import { RolloutMembership } from '../../node/deploy/membership.js'
import { exportJsonl, verifyJsonl } from '../../protocols/audit/index.js'
import { buildCheckpoint, CHECKPOINT_KIND } from '../../protocols/checkpoint/index.js'
import { applyEntry, decide, emptyState } from '../../protocols/rollout/index.js'
import { craft, until } from './helpers.js'
import { PATH_A, PATH_B, releaseBody } from '../rollout/helpers.js'

const WAIT_MS = 60_000

interface Host {
  name: string
  dir: string
  node: MeshNode
  cps: Checkpoints
  lines: Array<{ msg: string, reason?: string, number?: number }>
  id: string
  /** stops the node, keeping its data dir */
  pause: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * A host with its own data dir, the daemon's checkpoint component included. A history window of
 * 0 days lets pruning drop at once what the newest checkpoint does not retain.
 */
async function startHost (name: string, opts: { mesh?: string, archive?: boolean, dir?: string } = {}): Promise<Host> {
  let dir = opts.dir
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), `fleetmesh-cp-${name}-`))
    await initHost(dir, { mesh: opts.mesh })
    const config = await readConfig(dir)
    await writeConfig(dir, { ...config, audit: { historyDays: 0, archive: opts.archive === true, checkpointIntervalMs: 0 } })
  }
  const lines: Host['lines'] = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l))
      done()
    }
  })
  const log = pino({ level: 'info' }, sink)
  // no Nix here: these hosts mesh and log but apply nothing
  const path = process.env.PATH
  process.env.PATH = ''
  const node = await MeshNode.start({ dataDir: dir, logger: log }).finally(() => { process.env.PATH = path })
  const cps = node.checkpoints
  const pause = async (): Promise<void> => {
    await node.stop()
  }
  return {
    name,
    dir,
    node,
    cps,
    lines,
    id: node.peerId,
    pause,
    stop: async () => {
      await pause()
      rmSync(dir as string, { recursive: true, force: true })
    }
  }
}

async function invite (admin: Host, joiner: Host, role: 'admin' | 'host' = 'host'): Promise<void> {
  const inv = await admin.node.pairing.createInvite({ ttlSeconds: 600, uses: 1, role, tags: [] })
  await joiner.node.join(inv.code)
  // the join waits a while for its admit entry; a loaded machine may need longer
  await until(() => joiner.node.membership.view()?.members.has(joiner.id) === true, `${joiner.name} admitted`, WAIT_MS)
}

/** members and revocations as the view has them, whatever the order they were folded in */
function memberView (h: Host): string {
  const v = h.node.membership.view()
  assert.ok(v !== undefined)
  const members = [...v.members].map(([peer, m]) => [peer, m.role, [...m.tags].sort()]).sort()
  const revoked = [...v.revoked.keys()].sort()
  return JSON.stringify({ founder: v.founder, members, revoked })
}

/** each host's next rollout action, as `h` decides it from its own log */
async function decisions (h: Host, hosts: string[], now: number): Promise<string> {
  const state = emptyState()
  for await (const s of h.node.store.log()) applyEntry(state, s.entry)
  const membership = new RolloutMembership(h.node.membership)
  return JSON.stringify(hosts.map(x => {
    const { trace, ...d } = decide(state, membership, x, now)
    return [x, d]
  }))
}

/** Dials every pair not connected yet: a restarted host or a joiner need not wait for the redialer. */
async function connectAll (hosts: Host[]): Promise<void> {
  for (const x of hosts) {
    for (const y of hosts) {
      if (x === y || x.node.libp2p.getConnections(peerIdFromString(y.id)).length > 0) continue
      await x.node.libp2p.dial(y.node.libp2p.getMultiaddrs()[0]).catch(() => {})
    }
  }
}

function sameHeads (a: Host, b: Host, feeds: string[]): boolean {
  return feeds.every(f => {
    const x = a.node.store.head(f)
    const y = b.node.store.head(f)
    return x !== undefined && y !== undefined && x.seq === y.seq && Buffer.compare(x.hash, y.hash) === 0
  })
}

/** Every host of `hosts` holds the same heads of the feeds of `feeds`; on a timeout, says who holds what. */
async function converged (hosts: Host[], what: string, feeds: Host[] = hosts): Promise<void> {
  await until(() => hosts.every(h => sameHeads(h, hosts[0], feeds.map(x => x.id))), what, WAIT_MS).catch((err) => {
    for (const h of hosts) console.log(h.name, JSON.stringify(feeds.map(x => [x.name, h.node.store.head(x.id)?.seq, h.node.store.base(x.id)?.seq])), h.node.libp2p.getConnections().length)
    throw err
  })
}

async function verifiesAsExport (h: Host): Promise<boolean> {
  const out = new PassThrough()
  const done = exportJsonl(h.node.store, out).then(() => out.end())
  const r = await verifyJsonl(out)
  await done
  return r.ok
}

describe('joining from a checkpoint', { timeout: 10 * 60_000 }, () => {
  const hosts: Host[] = []
  let a: Host, b: Host, c: Host, archive: Host, j: Host

  before(async () => {
    a = await startHost('a', { mesh: 'cp' })
    hosts.push(a)
    b = await startHost('b')
    hosts.push(b)
    await invite(a, b, 'admin')
    c = await startHost('c')
    hosts.push(c)
    await invite(a, c)
    archive = await startHost('archive', { archive: true })
    hosts.push(archive)
    await invite(b, archive)
    await connectAll(hosts)
  })

  after(async () => {
    for (const h of new Set(hosts.reverse())) await h.stop().catch(() => {})
  })

  test('a host that joins after the fleet pruned starts from the checkpoint and decides as the archive host does', async () => {
    // before the checkpoint: a release and a host's outcomes, a grant, and entries nothing keeps
    await a.node.membership.grant(c.id, { tags: ['web'] })
    await a.node.store.append('release', releaseBody({ id: 'r1', number: 1, targets: [{ path: PATH_A, sources: ['peers'] }], waves: [{ hosts: [c.id], gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0 }))
    await until(() => c.node.store.head(a.id)?.seq === a.node.store.head(a.id)?.seq, 'c holds the release', WAIT_MS)
    await c.node.store.append('apply-start', { release: 'r1', path: PATH_A, wave: 0 })
    await c.node.store.append('apply-ok', { release: 'r1', path: PATH_A, healthyAt: Date.now() })
    for (let i = 0; i < 3; i++) await b.node.store.append('note', { i })
    const all = [a, b, c, archive]
    await converged(all, 'the fleet converged')

    const cp = await a.cps.write()
    assert.equal(cp.entry.kind, CHECKPOINT_KIND)
    await until(() => all.every(h => h.node.store.checkpoint()?.number === 1), 'every host adopted checkpoint 1', WAIT_MS)
    // the pruning hosts no longer hold b's notes (nothing keeps them); the archive does
    await until(async () => (await a.node.store.get(b.id, 0)) === undefined && (await c.node.store.get(b.id, 0)) === undefined, 'a and c pruned', WAIT_MS)
    assert.ok(await archive.node.store.get(b.id, 0) !== undefined)
    assert.equal(await archive.cps.prune(), 0)

    // after the cover: a second release, outcomes, more notes
    await a.node.store.append('release', releaseBody({ id: 'r2', number: 2, targets: [{ path: PATH_B, sources: ['peers'] }], waves: [{ hosts: [c.id, archive.id], gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0 }))
    await until(() => c.node.store.head(a.id)?.seq === a.node.store.head(a.id)?.seq, 'c holds r2', WAIT_MS)
    await c.node.store.append('apply-start', { release: 'r2', path: PATH_B, wave: 0 })
    await b.node.store.append('note', { i: 3 })

    // the archive is away while j joins: no one could hand j the log from seq 0
    await converged(all, 'the fleet converged again')
    await archive.pause()
    j = await startHost('j')
    hosts.push(j)
    await invite(a, j)
    const live = [a, b, c, j]
    // as its redialer would: a joiner's own entries reach hosts that repair with it or with
    // those that did (repairs are one-sided), not only its inviter
    await connectAll(live)
    // j's own first entry (a witness) is left out: its spread is sync's business, not the join's
    await converged(live, 'j caught up with the live hosts', [a, b, c, archive])
    archive = await startHost('archive', { dir: archive.dir })
    hosts.push(archive)
    const everyone = [...live, archive]
    await connectAll(everyone)
    await converged(everyone, 'j and the archive hold the same heads', [a, b, c, archive])
    assert.equal(j.node.store.checkpoint()?.number, 1)
    // it started from the cover: b's notes below it were never fetched
    assert.ok(j.node.store.base(b.id) !== undefined)
    assert.equal(await j.node.store.get(b.id, 0), undefined)
    assert.ok(j.lines.some(l => l.msg === 'checkpoint adopted'))

    assert.equal(memberView(j), memberView(archive))
    const now = Date.now()
    const ids = everyone.map(h => h.id)
    assert.equal(await decisions(j, ids, now), await decisions(archive, ids, now))
    assert.match(await decisions(j, ids, now), /"apply"/) // something to decide: the archive host's r2
    for (const h of [j, a, archive]) {
      const v = await h.node.store.verifyAll()
      assert.equal(v.ok, true, `${h.name}: ${JSON.stringify(v.ok ? v : v.error.message)}`)
      assert.equal(await verifiesAsExport(h), true, `${h.name}'s export verifies`)
    }
  })

  test('a checkpoint over a forked feed is refused by the members that know the fork and by a joiner that learns it', async () => {
    // c's feed forks above the first checkpoint's cover: a second entry at c's head, signed by
    // c's key, reaches a only
    const top = c.node.store.head(c.id)!
    assert.ok(top.seq > (a.node.store.base(c.id)?.seq ?? -1))
    await until(() => a.node.store.head(c.id)?.seq === top.seq, 'a holds c\'s head', WAIT_MS)
    const first = (await c.node.store.get(c.id, top.seq))!
    const other = craft(c.node.identity.privateKey, { seq: top.seq, prev: first.entry.prev, kind: 'note', body: { fork: true } })
    const r = await a.node.store.ingest([other.bytes])
    assert.equal(r.error?.code, 'EQUIVOCATION')
    assert.equal(a.node.store.forkedAt(c.id), top.seq)
    // b, an admin that never saw the other entry, covers c's feed in checkpoint 2
    const cp2 = await b.cps.write()
    assert.equal(b.node.store.checkpoint()?.number, 2)
    await until(() => a.lines.some(l => l.msg.startsWith('checkpoint refused') && l.number === 2 && l.reason === 'FORKED_FEED'), 'a refused checkpoint 2', WAIT_MS)
    assert.equal(a.node.store.checkpoint()?.number, 1)
    // j learns the fork from a when b offers checkpoint 2
    await connectAll([a, b, c, j, archive])
    const res = await j.cps.follow(peerIdFromString(b.id))
    assert.equal(res.adopted, undefined)
    assert.deepEqual(res.refused.map(x => [x.number, x.reason]), [[2, 'FORKED_FEED']])
    assert.equal(j.node.store.forkedAt(c.id), top.seq)
    assert.equal(j.node.store.checkpoint()?.number, 1)
    assert.ok(cp2.entry.seq > 0)
  })

  test('a checkpoint by a revoked admin is refused, even when a member serves it', async () => {
    await a.node.membership.revoke(b.id, 'compromised')
    const revokeHead = a.node.store.head(a.id)!
    await until(() => archive.node.store.head(a.id)?.seq === revokeHead.seq, 'the archive holds the revoke', WAIT_MS)
    // b learns of its revocation (it holds a's feed up to the revoke) and signs checkpoint 3 anyway
    const have = b.node.store.head(a.id)?.seq ?? -1
    await b.node.store.ingest((await a.node.store.range(a.id, have + 1, revokeHead.seq)).map(s => s.bytes))
    assert.equal(b.node.store.head(a.id)?.seq, revokeHead.seq)
    const entries = []
    for await (const s of b.node.store.log()) entries.push(s)
    const cover = b.node.store.heads().filter(h => b.node.store.forkedAt(h.feed) === undefined)
    const built = buildCheckpoint(3, cover, entries.filter(s => s.entry.seq <= (cover.find(h => h.feed === s.entry.feed)?.seq ?? -1)))
    const cp3 = await b.node.store.append(CHECKPOINT_KIND, built.body)
    await b.node.store.adoptCheckpoint(cp3.bytes, built)
    // the archive host, a member, was made to hold and serve it (it never checked it)
    const retained = []
    for (const ref of built.refs) if ((await archive.node.store.get(ref.feed, ref.seq)) === undefined) retained.push((await b.node.store.get(ref.feed, ref.seq))!.bytes)
    const held = archive.node.store.head(b.id)?.seq ?? -1
    await archive.node.store.ingest((await b.node.store.range(b.id, held + 1, cp3.entry.seq)).map(s => s.bytes))
    await archive.node.store.adoptCheckpoint(cp3.bytes, built, retained)
    assert.equal(archive.node.store.checkpoint()?.number, 3)
    const res = await j.cps.follow(peerIdFromString(archive.id))
    assert.equal(res.adopted, undefined)
    assert.deepEqual(res.refused.map(x => [x.number, x.reason]), [[3, 'NOT_ADMIN']])
    assert.ok(j.lines.some(l => l.msg === 'checkpoint refused: NOT_ADMIN' && l.number === 3))
    assert.equal(j.node.store.checkpoint()?.number, 1)
  })
})
