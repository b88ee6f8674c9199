import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { lpStream } from '@libp2p/utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { createNodeKindRegistry } from '../../node/store.js'
import { parseConfig } from '../../node/config-file.js'
import { encodeCanonical, entryHash } from '../../protocols/audit/codec.js'
import type { AuditError } from '../../protocols/audit/errors.js'
import { headsRoot } from '../../protocols/audit/heads-root.js'
import { CheckpointSync } from '../../protocols/audit/checkpoint-sync.js'
import { CHECKPOINT_PROTOCOL, MAX_REFS_PER_REQUEST, decodeCheckpointRequest, encodeCheckpointRequest } from '../../protocols/audit/checkpoint-wire.js'
import { decodeFrame } from '../../protocols/audit/wire.js'
import type { Head } from '../../protocols/audit/types.js'
import { craft, openStore, type TestStore } from './helpers.js'

test('checkpoint requests decode strictly: unknown, extra or missing fields, too many refs, oversize and truncated input are typed errors', () => {
  const feed = '12D3KooWMagaMR64dHpEB7VZtAGeoWVWsF7TqmdGvrfSppMjGUBG'
  const ref: Head = { feed, seq: 1, hash: new Uint8Array(32) }
  for (const r of [{ t: 'checkpoints' as const }, { t: 'forks' as const }, { t: 'cover' as const, feed, seq: 3 }, { t: 'refs' as const, feed, seq: 0 }, { t: 'retained' as const, refs: [ref] }]) {
    assert.deepEqual(decodeCheckpointRequest(encodeCheckpointRequest(r)), r)
  }
  const malformed = [
    { t: 'nope' }, { t: 'checkpoints', x: 1 }, { t: 'cover', feed }, { t: 'cover', feed: 'not a peer id', seq: 1 }, { t: 'refs', feed, seq: -1 },
    { t: 'retained', refs: [] }, { t: 'retained', refs: [[feed, 1, new Uint8Array(31)]] }, { t: 'retained', refs: [[feed, 1]] }
  ]
  for (const m of malformed) assert.throws(() => decodeCheckpointRequest(encodeCanonical(m)), { code: 'MESSAGE_MALFORMED' }, JSON.stringify(m))
  const many = encodeCheckpointRequest({ t: 'retained', refs: Array.from({ length: MAX_REFS_PER_REQUEST + 1 }, () => ref) })
  assert.throws(() => decodeCheckpointRequest(many), (err: Error & { code: string }) => err.code === 'MESSAGE_TOO_LARGE' || err.code === 'MESSAGE_MALFORMED')
  const ok = encodeCheckpointRequest({ t: 'cover', feed, seq: 3 })
  assert.throws(() => decodeCheckpointRequest(ok.subarray(0, ok.length - 2)), { code: 'MESSAGE_MALFORMED' })
})

test('audit settings in config.json: defaults, an archive, and refusals', () => {
  const base = { version: 1 }
  assert.deepEqual(parseConfig('c', JSON.stringify(base)).audit, { historyDays: 30, archive: false, checkpointIntervalMs: 86_400_000 })
  assert.deepEqual(parseConfig('c', JSON.stringify({ ...base, audit: { archive: true, historyDays: 7 } })).audit, { historyDays: 7, archive: true, checkpointIntervalMs: 86_400_000 })
  for (const audit of [{ historyDays: -1 }, { historyDays: 1.5 }, { archive: 'yes' }, { checkpointIntervalMs: -1 }, { keep: 3 }, []]) {
    assert.throws(() => parseConfig('c', JSON.stringify({ ...base, audit })), { code: 'CONFIG_INVALID' }, JSON.stringify(audit))
  }
})

interface Side { s: TestStore, libp2p: MeshLibp2p, cps: CheckpointSync }

async function side (allow: (peer: string) => boolean, budget?: { burst: number, perSecond: number }): Promise<Side> {
  const s = await openStore({ kinds: createNodeKindRegistry() })
  const libp2p = await createMeshLibp2p({ privateKey: s.key, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const cps = new CheckpointSync({ libp2p, store: s.store, allowPeer: allow, ...(budget !== undefined ? { budget: { maxBytes: 65_536, ...budget } } : {}) })
  await cps.start()
  return { s, libp2p, cps }
}

async function close (x: Side): Promise<void> {
  await x.cps.stop()
  await x.libp2p.stop()
  await x.s.close()
  rmSync(x.s.dir, { recursive: true, force: true })
}

test('over real libp2p: checkpoints, their parts, retained entries in batches and forks are served to members only, within a budget', async () => {
  const server = await side(() => true, { burst: 9, perSecond: 0.001 })
  const stranger = await side(() => true)
  const client = await side(() => true)
  try {
    const xKey = await generateKeyPair('Ed25519')
    const x = peerIdFromPrivateKey(xKey).toString()
    // 600 retained entries: two batches of refs
    const xs: Array<{ bytes: Uint8Array, hash: Uint8Array }> = []
    let prev: Uint8Array = new Uint8Array(32)
    for (let seq = 0; seq < 600; seq++) {
      const e = craft(xKey, { seq, prev, kind: 'keep' })
      prev = entryHash(e.bytes)
      xs.push({ bytes: e.bytes, hash: prev })
    }
    assert.equal((await server.s.store.ingest(xs.map(e => e.bytes))).stored.length, 600)
    const fork = craft(xKey, { seq: 599, prev: xs[598].hash, body: { other: true } })
    assert.equal((await server.s.store.ingest([fork.bytes])).error?.code, 'EQUIVOCATION')
    const cover = server.s.store.heads()
    const refs = xs.map((e, seq) => ({ feed: x, seq, hash: e.hash })).slice(0, 599)
    const cp = await server.s.store.append('checkpoint', { number: 1, cover: headsRoot(cover), count: cover.length, retain: headsRoot(refs), retained: refs.length })
    await server.s.store.adoptCheckpoint(cp.bytes, { cover, refs })

    const serverId = server.libp2p.peerId
    await client.libp2p.dial(server.libp2p.getMultiaddrs()[0])
    const offers = await client.cps.offers(serverId)
    assert.deepEqual(offers.map(o => o.hash), [cp.hash])
    const parts = await client.cps.parts(serverId, cp.entry, { cover: cover.length, refs: refs.length })
    assert.deepEqual(parts.cover, server.s.store.checkpoint()?.cover)
    assert.equal(parts.refs.length, 599)
    // a peer serving more than the checkpoint signs for is cut off there
    await assert.rejects(client.cps.parts(serverId, cp.entry, { cover: cover.length, refs: refs.length - 1 }), (err: AuditError) => err.code === 'MESSAGE_TOO_LARGE')
    const got = await client.cps.retained(serverId, parts.refs)
    assert.deepEqual(got.map(g => g.hash), refs.map(r => r.hash))
    const forks = await client.cps.forks(serverId)
    assert.equal(forks.length, 1)
    assert.equal(await client.s.store.addFork(...forks[0]), true)
    assert.equal(client.s.store.forkedAt(x), 599)
    // a ref the server does not hold: a typed refusal, not a hang
    await assert.rejects(client.cps.retained(serverId, [{ feed: x, seq: 1, hash: new Uint8Array(32) }]), (err: Error & { code: string }) => err.code === 'SYNC_FAILED' && err.message.includes('NOT_FOUND'))
    // nine requests were the budget: the tenth is refused as such
    await assert.rejects(client.cps.offers(serverId), (err: Error & { code: string }) => err.code === 'SYNC_FAILED' && err.message.includes('OVER_BUDGET'))

    // a stranger is told no
    const members = await side((peer) => peer !== stranger.libp2p.peerId.toString())
    try {
      await stranger.libp2p.dial(members.libp2p.getMultiaddrs()[0])
      await assert.rejects(stranger.cps.offers(members.libp2p.peerId), (err: Error & { code: string }) => err.code === 'SYNC_FAILED' && err.message.includes('AUTHOR_REJECTED'))
      // a malformed request is answered with a typed error frame
      const stream = await stranger.libp2p.dialProtocol(members.libp2p.peerId, CHECKPOINT_PROTOCOL)
      const framed = lpStream(stream)
      await framed.write(encodeCanonical({ t: 'cover' }))
      const frame = decodeFrame((await framed.read()).subarray(), 1 << 20)
      await stream.close().catch(() => {})
      assert.equal(frame.t, 'error')
      assert.equal((frame as { code: string }).code, 'MESSAGE_MALFORMED')
    } finally {
      await close(members)
    }
  } finally {
    await close(client)
    await close(stranger)
    await close(server)
  }
})
