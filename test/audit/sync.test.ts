import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as lp from 'it-length-prefixed'
import type { Uint8ArrayList } from 'uint8arraylist'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { encodeCanonical, entryHash } from '../../protocols/audit/codec.js'
import type { PenaltyEvent } from '../../protocols/audit/penalties.js'
import { HEADS_TOPIC, SYNC_PROTOCOL, decodeAnnouncement, decodeFrame, decodeRequest, encodeFrame, type SyncFrame } from '../../protocols/audit/wire.js'
import { startNode, connect, until, craft, craftChain } from './helpers.js'

test('entries appended on A replicate to a connected B, verified, and later appends follow by gossip', { timeout: 120_000 }, async () => {
  const a = await startNode()
  const b = await startNode()
  try {
    for (let i = 0; i < 300; i++) await a.store.append('status', { i })
    await connect(b.libp2p, a.libp2p)
    await until(() => b.store.head(a.store.feed as string)?.seq === 299, 'B to catch up on connect')
    for (let i = 0; i < 50; i++) await a.store.append('health', { ok: true, i })
    await until(() => b.store.head(a.store.feed as string)?.seq === 349, 'B to follow gossiped heads')
    assert.deepEqual(b.store.head(a.store.feed as string)?.hash, a.store.head(a.store.feed as string)?.hash)
    const v = await b.store.verifyAll()
    assert.equal(v.ok, true)
    assert.equal(v.entries, 350)
  } finally {
    await a.stop()
    await b.stop()
  }
})

test('caught-up fires once, only when every entry the first peer held is stored', { timeout: 120_000 }, async () => {
  const a = await startNode()
  const b = await startNode()
  const c = await startNode({ syncOpts: { maxRangeEntries: 50 } })
  try {
    for (let i = 0; i < 400; i++) await a.store.append('status', { i })
    for (let i = 0; i < 120; i++) await b.store.append('status', { i })
    await connect(a.libp2p, b.libp2p)
    await until(() => b.store.head(a.store.feed as string)?.seq === 399, 'B to hold A\'s feed')
    assert.equal(c.sync.caughtUp(), undefined, 'no peer yet')
    const fired: Array<{ peer: string, heldA: number, heldB: number }> = []
    c.sync.on('caught-up', (peer) => {
      fired.push({ peer, heldA: c.store.head(a.store.feed as string)?.seq ?? -1, heldB: c.store.head(b.store.feed as string)?.seq ?? -1 })
    })
    // C pulls in batches of 50, so a half-pulled log is observable if the signal came early.
    await connect(c.libp2p, b.libp2p)
    await until(() => fired.length > 0, 'C to catch up with B')
    assert.deepEqual(fired, [{ peer: b.libp2p.peerId.toString(), heldA: 399, heldB: 119 }])
    assert.equal(c.sync.caughtUp(), b.libp2p.peerId.toString())
    await c.sync.syncWith(b.libp2p.peerId)
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(fired.length, 1, 'fires once')
  } finally {
    await a.stop()
    await b.stop()
    await c.stop()
  }
})

test('relay catch-up: C learns A\'s feed from B although A and C never connect', { timeout: 120_000 }, async () => {
  const a = await startNode()
  const b = await startNode()
  const c = await startNode()
  try {
    for (let i = 0; i < 200; i++) await a.store.append('status', { i })
    await connect(a.libp2p, b.libp2p)
    const feedA = a.store.feed as string
    await until(() => b.store.head(feedA)?.seq === 199, 'B to hold A\'s feed')
    await a.stop()
    await connect(c.libp2p, b.libp2p)
    await until(() => c.store.head(feedA)?.seq === 199, 'C to get A\'s feed via B')
    assert.equal(c.libp2p.getConnections().some(conn => conn.remotePeer.toString() === feedA), false)
    assert.equal((await c.store.verifyAll()).ok, true)
  } finally {
    await b.stop()
    await c.stop()
  }
})

test('a relay forwards a heads announcement only once it holds the entries, so the next host can pull them from it', { timeout: 120_000 }, async () => {
  // No periodic announcements or anti-entropy rounds: A's one announcement is the only way on.
  const syncOpts = { announceIntervalMs: 3_600_000 }
  const a = await startNode({ syncOpts })
  const b = await startNode({ syncOpts })
  const c = await startNode({ syncOpts })
  try {
    await connect(a.libp2p, b.libp2p)
    await connect(c.libp2p, b.libp2p)
    await until(() => b.libp2p.services.pubsub.getSubscribers(HEADS_TOPIC).length === 2 && a.libp2p.services.pubsub.getSubscribers(HEADS_TOPIC).length === 1, 'subscriptions to propagate')
    const feedA = a.store.feed as string
    // What each host holds of A's feed when its gossipsub accepts A's announcement, i.e. when it
    // would forward it: B reaches C, C reaches nobody further.
    const seen: Array<{ host: string, b: number, c: number }> = []
    for (const [host, n] of [['B', b], ['C', c]] as const) {
      n.libp2p.services.pubsub.addEventListener('message', (evt) => {
        const m = evt.detail
        if (m.topic === HEADS_TOPIC && m.type === 'signed' && m.from.toString() === feedA) {
          seen.push({ host, b: b.store.head(feedA)?.seq ?? -1, c: c.store.head(feedA)?.seq ?? -1 })
        }
      })
    }
    await a.store.append('status', { n: 1 })
    await until(() => c.store.head(feedA)?.seq === 0, 'C to hold A\'s entry')
    await until(() => seen.length === 2, 'B and C to accept A\'s announcement')
    assert.deepEqual(seen, [{ host: 'B', b: 0, c: -1 }, { host: 'C', b: 0, c: 0 }])
    assert.equal(c.libp2p.getConnections().some(conn => conn.remotePeer.toString() === feedA), false)
  } finally {
    await a.stop()
    await b.stop()
    await c.stop()
  }
})

test('the periodic announcement names this host\'s own head only; the feeds it relays reach others by head vector exchange', { timeout: 120_000 }, async () => {
  const a = await startNode({ syncOpts: { announceIntervalMs: 300 } })
  const b = await startNode()
  const m = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  try {
    await a.store.append('status', { n: 1 })
    await b.store.append('status', { n: 2 })
    await connect(a.libp2p, b.libp2p)
    const feedA = a.store.feed as string
    const feedB = b.store.feed as string
    await until(() => a.store.head(feedB)?.seq === 0, 'A to hold B\'s feed')
    const announced: string[][] = []
    m.services.pubsub.subscribe(HEADS_TOPIC)
    m.services.pubsub.addEventListener('message', (evt) => {
      const msg = evt.detail
      if (msg.topic === HEADS_TOPIC && msg.type === 'signed' && msg.from.toString() === feedA) announced.push(decodeAnnouncement(msg.data).map(h => `${h.feed}:${h.seq}`))
    })
    await connect(m, a.libp2p)
    await until(() => announced.length >= 2, 'two periodic announcements of A')
    assert.ok(announced.every(heads => heads.length === 1 && heads[0] === `${feedA}:0`), JSON.stringify(announced))
    // B's feed, which A holds but no longer announces, still reaches a newcomer through A.
    const c = await startNode()
    try {
      await connect(c.libp2p, a.libp2p)
      await until(() => c.store.head(feedB)?.seq === 0, 'C to get B\'s feed from A')
    } finally {
      await c.stop()
    }
  } finally {
    await a.stop()
    await b.stop()
    await m.stop()
  }
})

test('equivocation across the network: two honest hosts holding different forks of one feed both flag it', { timeout: 120_000 }, async () => {
  const author = await generateKeyPair('Ed25519')
  const feed = peerIdFromPrivateKey(author).toString()
  const chain = craftChain(author, 5)
  const fork = [...chain.slice(0, 3)]
  fork.push(craft(author, { seq: 3, prev: entryHash(chain[2].bytes), body: { fork: 1 } }))
  fork.push(craft(author, { seq: 4, prev: entryHash(fork[3].bytes), body: { fork: 2 } }))
  const b = await startNode()
  const c = await startNode()
  try {
    await b.store.ingest(chain.map(e => e.bytes))
    await c.store.ingest(fork.map(e => e.bytes))
    await connect(b.libp2p, c.libp2p)
    await until(() => b.store.forkedFeeds().has(feed) && c.store.forkedFeeds().has(feed), 'both hosts to flag the feed')
    assert.equal((await b.store.equivocations()).length, 1)
    assert.equal((await c.store.equivocations()).length, 1)
    // neither counts the other as misbehaving: the author forked, not the relay
    assert.equal(b.sync.penalties().size + c.sync.penalties().size, 0)
  } finally {
    await b.stop()
    await c.stop()
  }
})

type Behaviour = 'forged' | 'out-of-order' | 'oversize' | 'wrong-feed-gap'

/** A peer that speaks the sync protocol by hand and lies in the way `behaviour` says. */
async function startLiar (chain: Array<{ bytes: Uint8Array }>, feed: string): Promise<{ libp2p: MeshLibp2p, behaviour: { now: Behaviour } }> {
  const libp2p = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const behaviour: { now: Behaviour } = { now: 'forged' }
  await libp2p.handle(SYNC_PROTOCOL, async (stream) => {
    const first = await lp.decode(stream)[Symbol.asyncIterator]().next()
    const req = decodeRequest((first.value as Uint8ArrayList).subarray())
    const send = (f: Parameters<typeof encodeFrame>[0]): boolean => stream.send(lp.encode.single(encodeFrame(f)))
    if (req.t === 'heads') {
      send({ t: 'heads', heads: [{ feed, seq: chain.length - 1, hash: entryHash(chain[chain.length - 1].bytes) }] })
    } else if (behaviour.now === 'forged') {
      const forged = chain.map(c => new Uint8Array(c.bytes))
      forged[0][forged[0].length - 3] ^= 1
      send({ t: 'entries', entries: forged })
    } else if (behaviour.now === 'out-of-order') {
      send({ t: 'entries', entries: [chain[1].bytes, chain[0].bytes, ...chain.slice(2).map(c => c.bytes)] })
    } else if (behaviour.now === 'wrong-feed-gap') {
      send({ t: 'entries', entries: chain.slice(3).map(c => c.bytes) })
    } else {
      // a length prefix announcing 8 MiB: over any frame this protocol allows
      stream.send(Uint8Array.from([0x80, 0x80, 0x80, 0x04, 1, 2, 3]))
    }
    send({ t: 'end' })
    await stream.close()
  })
  return { libp2p, behaviour }
}

test('a peer feeding forged, out-of-order or oversize data gets typed errors, is penalised, and nothing it sent is stored', { timeout: 120_000 }, async () => {
  const author = await generateKeyPair('Ed25519')
  const feed = peerIdFromPrivateKey(author).toString()
  const chain = craftChain(author, 10)
  const liar = await startLiar(chain, feed)
  const h = await startNode({ syncOpts: { banThreshold: 4 } })
  const penalties: PenaltyEvent[] = []
  h.sync.on('penalty', (p) => penalties.push(p))
  try {
    // on connect, h asks for heads, sees feed at 9, pulls, and gets forged entries
    await connect(h.libp2p, liar.libp2p)
    await until(() => penalties.length === 1, 'a penalty for the forged entries')
    assert.equal(penalties[0].error.code, 'BAD_SIGNATURE')
    assert.equal(penalties[0].peer, liar.libp2p.peerId.toString())
    const expect = async (b: Behaviour, code: string): Promise<void> => {
      liar.behaviour.now = b
      const r = await h.sync.pull(liar.libp2p.peerId, feed, 0, 9)
      assert.equal(r.error?.code, code, b)
      assert.equal(r.stored, 0)
    }
    await expect('out-of-order', 'SEQ_GAP')
    await expect('wrong-feed-gap', 'SEQ_GAP')
    await expect('oversize', 'MESSAGE_TOO_LARGE')
    assert.equal(h.store.head(feed), undefined)
    assert.deepEqual(await h.store.range(feed, 0, 9), [])
    assert.equal(h.sync.penalties().get(liar.libp2p.peerId.toString()), 4)
    // past the threshold the peer is cut off and refused
    assert.equal(h.sync.isBanned(liar.libp2p.peerId.toString()), true)
    await until(() => h.libp2p.getConnections(liar.libp2p.peerId).length === 0, 'the liar to be disconnected')
  } finally {
    await h.stop()
    await liar.libp2p.stop()
  }
})

test('the server answers malformed and oversize requests with a typed error frame and penalises the sender', { timeout: 120_000 }, async () => {
  const h = await startNode({ syncOpts: { banThreshold: 10 } })
  const client = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const penalties: PenaltyEvent[] = []
  h.sync.on('penalty', (p) => penalties.push(p))
  try {
    await h.store.append('status', { hello: 1 })
    const ask = async (payload: Uint8Array): Promise<SyncFrame> => {
      const stream = await client.dialProtocol(h.libp2p.getMultiaddrs()[0], SYNC_PROTOCOL)
      stream.send(lp.encode.single(payload))
      const reply = await lp.decode(stream)[Symbol.asyncIterator]().next()
      await stream.close().catch(() => {})
      return decodeFrame((reply.value as Uint8ArrayList).subarray(), 1 << 20)
    }
    assert.deepEqual(await ask(encodeCanonical({ t: 'range', feed: 'abc', from: 5, to: 1 })), { t: 'error', code: 'MESSAGE_MALFORMED', message: 'range is {feed, from ≤ to}' })
    const garbage = await ask(Uint8Array.from([0xff, 0x00, 0x13]))
    assert.equal(garbage.t === 'error' && garbage.code, 'MESSAGE_MALFORMED')
    const big = await ask(encodeCanonical({ t: 'heads', pad: 'x'.repeat(600) }))
    assert.equal(big.t === 'error' && big.code, 'MESSAGE_TOO_LARGE')
    assert.deepEqual(penalties.map(p => p.error.code), ['MESSAGE_MALFORMED', 'MESSAGE_MALFORMED', 'MESSAGE_TOO_LARGE'])
    assert.ok(penalties.every(p => p.peer === client.peerId.toString()))
  } finally {
    await h.stop()
    await client.stop()
  }
})

test('a malformed head announcement is rejected by the topic validator and penalised', { timeout: 120_000 }, async () => {
  const h = await startNode()
  const m = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const penalties: PenaltyEvent[] = []
  h.sync.on('penalty', (p) => penalties.push(p))
  try {
    m.services.pubsub.subscribe(HEADS_TOPIC)
    await connect(m, h.libp2p)
    await until(() => m.services.pubsub.getSubscribers(HEADS_TOPIC).some(p => p.equals(h.libp2p.peerId)), 'subscriptions to propagate')
    await m.services.pubsub.publish(HEADS_TOPIC, encodeCanonical({ heads: [['x', -1, new Uint8Array(3)]] }))
    await until(() => penalties.length > 0, 'the announcement to be penalised')
    assert.equal(penalties[0].error.code, 'MESSAGE_MALFORMED')
    assert.equal(penalties[0].peer, m.peerId.toString())
  } finally {
    await h.stop()
    await m.stop()
  }
})

test('offline catch-up: B stopped while A appends 10,000 entries, restarted on the same data dir, holds all of them verified', { timeout: 600_000 }, async () => {
  const a = await startNode()
  let b = await startNode()
  const dir = b.dir
  const key = b.key
  const feedA = a.store.feed as string
  try {
    await connect(b.libp2p, a.libp2p)
    await a.store.append('genesis', { mesh: 'offline-test' })
    await until(() => b.store.head(feedA)?.seq === 0, 'B to see the genesis entry')
    await b.stop(false)
    for (let i = 0; i < 10_000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, async (_, j) => a.store.append('status', { n: i + j })))
    }
    assert.equal(a.store.head(feedA)?.seq, 10_000)
    b = await startNode({ dir, key })
    assert.equal(b.store.head(feedA)?.seq, 0)
    await connect(b.libp2p, a.libp2p)
    await until(() => b.store.head(feedA)?.seq === 10_000, 'B to catch up on 10,000 entries', 500_000)
    const v = await b.store.verifyAll()
    assert.deepEqual(v, { ok: true, entries: 10_001, feeds: 1 })
  } finally {
    await a.stop()
    await b.stop()
  }
})

test('allowPeer: a host neither serves nor pulls from peers it does not allow', { timeout: 120_000 }, async () => {
  const a = await startNode({ syncOpts: { allowPeer: () => false } })
  const b = await startNode()
  try {
    await a.store.append('status', { from: 'a' })
    await b.store.append('status', { from: 'b' })
    await connect(b.libp2p, a.libp2p)
    const r = await b.sync.pull(a.libp2p.peerId, a.store.feed as string, 0, 0)
    assert.equal(r.stored, 0)
    assert.equal(r.error?.code, 'SYNC_FAILED')
    await a.sync.syncWith(b.libp2p.peerId)
    assert.equal(a.store.head(b.store.feed as string), undefined)
    assert.equal(b.store.head(a.store.feed as string), undefined)
    assert.equal(b.sync.penalties().size, 0)
  } finally {
    await a.stop()
    await b.stop()
  }
})

test('error frames: the server\'s bytes are pinned, and a peer\'s error frame ends a pull as SYNC_FAILED naming its code, unpenalised', { timeout: 120_000 }, async () => {
  const h = await startNode()
  const refuser = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const penalties: PenaltyEvent[] = []
  h.sync.on('penalty', (p) => penalties.push(p))
  await refuser.handle(SYNC_PROTOCOL, async (stream) => {
    await lp.decode(stream)[Symbol.asyncIterator]().next()
    stream.send(lp.encode.single(encodeFrame({ t: 'error', code: 'SEQ_GAP', message: 'not here' })))
    await stream.close()
  })
  try {
    // the length prefix, then the canonical map {t, code, message}
    const stream = await refuser.dialProtocol(h.libp2p.getMultiaddrs()[0], SYNC_PROTOCOL)
    stream.send(lp.encode.single(encodeCanonical({ t: 'range', feed: 'abc', from: 5, to: 1 })))
    const chunks: Uint8Array[] = []
    for await (const chunk of stream) chunks.push(chunk.subarray())
    assert.equal(Buffer.concat(chunks).toString('hex'), '46a36174656572726f7264636f6465714d4553534147455f4d414c464f524d4544676d657373616765781c72616e6765206973207b666565642c2066726f6d20e289a420746f7d')
    await until(() => penalties.length === 1, 'the malformed request to be penalised')
    penalties.length = 0
    await connect(h.libp2p, refuser)
    const r = await h.sync.pull(refuser.peerId, h.store.feed as string, 0, 0)
    assert.equal(r.stored, 0)
    assert.equal(r.error?.code, 'SYNC_FAILED')
    assert.equal(r.error?.message, 'peer refused: SEQ_GAP: not here')
    assert.deepEqual(penalties, [])
  } finally {
    await h.stop()
    await refuser.stop()
  }
})
