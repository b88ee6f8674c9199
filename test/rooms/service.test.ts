import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Message } from '@libp2p/gossipsub'
import * as lp from 'it-length-prefixed'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p } from '../../node/libp2p.js'
import { openEpochKey } from '../../crypto/seal.js'
import { createSigner } from '../../crypto/sign.js'
import { signingBytes } from '../../crypto/room-cipher.js'
import { decodeFrame, encodeFrame, roomTopic, HISTORY_PROTOCOL, ROOM_CREATE, ROOM_MEMBER, type SealedKey, type SignedRoomMessage } from '../../protocols/rooms/index.js'
import { decodeHistoryResponse, MAX_HISTORY_REQUEST_BYTES } from '../../protocols/rooms/codec.js'
import { meshed, startMesh, until, type TestHost } from './helpers.js'

async function closeAll (hosts: TestHost[]): Promise<void> {
  for (const h of hosts) await h.close()
}

/** Raw gossip frames a host's pubsub delivers on a topic, whether or not it can read them. */
function tap (h: TestHost, topic: string): Uint8Array[] {
  const frames: Uint8Array[] = []
  h.libp2p.services.pubsub.subscribe(topic)
  h.libp2p.services.pubsub.addEventListener('message', (evt: CustomEvent<Message>) => {
    if (evt.detail.topic === topic) frames.push(evt.detail.data)
  })
  return frames
}

async function sealedKeysOf (h: TestHost, kind: string, room: string): Promise<SealedKey[]> {
  const out: SealedKey[] = []
  for await (const { entry } of h.store.log({ kind })) {
    const body = entry.body as { room: string, keys: SealedKey[] }
    if (body.room === room) out.push(...body.keys)
  }
  return out
}

async function texts (h: TestHost, room: string): Promise<string[]> {
  return (await h.rooms.read(room)).messages.map(m => m.text)
}

test('three hosts converse; a fourth mesh member receives the gossip but cannot decrypt it', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(4)
  const [a, b, c, d] = hosts as [TestHost, TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }, { host: c.id, agent: 'carol' }] })
    const topic = roomTopic(room.id)
    await until(() => [b, c, d].every(h => h.rooms.room(room.id) !== undefined), 'the room-create entry to replicate')
    assert.equal(d.rooms.room(room.id)?.member, false)
    // d relays the room's gossip on its own, as every host does
    await until(() => d.rooms.stats(room.id).subscribed, 'd to carry the room\'s topic')
    const seen = tap(d, topic)
    await meshed([a, b, c, d], topic)

    await a.rooms.send(room.id, 'alice', 'hello from alice')
    await until(async () => (await texts(b, room.id)).length === 1 && (await texts(c, room.id)).length === 1, 'alice\'s message at bob and carol')
    await b.rooms.send(room.id, 'bob', 'bob here')
    await c.rooms.send(room.id, 'carol', 'carol too')
    const want = ['hello from alice', 'bob here', 'carol too']
    for (const h of [a, b, c]) await until(async () => (await texts(h, room.id)).length === 3, 'all three messages everywhere')
    for (const h of [a, b, c]) assert.deepEqual((await texts(h, room.id)).sort(), [...want].sort())
    const fromBob = (await a.rooms.read(room.id)).messages.find(m => m.text === 'bob here')
    assert.equal(fromBob?.sender, b.id)
    assert.equal(fromBob?.agent, 'bob')

    // d relays and receives every frame, yet holds only ciphertext
    await until(() => seen.length >= 3, 'd to receive the gossip frames')
    for (const f of seen) {
      const frame = decodeFrame(f)
      assert.equal(frame.room, room.id)
      for (const t of want) assert.equal(Buffer.from(f).includes(Buffer.from(t)), false)
    }
    assert.deepEqual((await d.rooms.read(room.id)).messages, [])
    await until(() => d.rejected.filter(r => r.code === 'ROOM_NO_KEY').length >= 3, 'd to refuse the frames it cannot open')
    const stats = d.rooms.stats(room.id)
    assert.equal(stats.accepted, 0)
    assert.equal(stats.rejected.ROOM_NO_KEY, stats.gossip)
    assert.ok(stats.gossip >= 3)
    assert.deepEqual(stats.peers, [a.id, b.id, c.id].sort())
    assert.equal(b.rooms.stats(room.id).accepted, 2)
    // no sealed key of the room opens with d's X-Wing key, whatever recipient it claims
    for (const k of await sealedKeysOf(a, ROOM_CREATE, room.id)) {
      await assert.rejects(openEpochKey({ seed: d.identity.xwingSeed, peerId: k.host, roomId: room.id, epoch: k.epoch, sealed: k.sealed }), { code: 'SEAL_OPEN_FAILED' })
      await assert.rejects(openEpochKey({ seed: d.identity.xwingSeed, peerId: d.id, roomId: room.id, epoch: k.epoch, sealed: k.sealed }), { code: 'SEAL_OPEN_FAILED' })
    }
  } finally {
    await closeAll(hosts)
  }
})

test('removal starts a new epoch: the removed host cannot read the next message', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(3)
  const [a, b, c] = hosts as [TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'pair', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }, { host: c.id, agent: 'carol' }] })
    const topic = roomTopic(room.id)
    await until(() => [b, c].every(h => h.rooms.room(room.id)?.member === true), 'the room at b and c')
    await meshed([a, b, c], topic)
    await a.rooms.send(room.id, 'alice', 'before')
    await until(async () => (await texts(c, room.id)).includes('before'), 'c to read the first message')

    const after = await a.rooms.removeMember(room.id, { host: c.id, agent: 'carol' })
    assert.equal(after.epoch, 1)
    await until(() => b.rooms.room(room.id)?.epoch === 1 && c.rooms.room(room.id)?.epoch === 1, 'the removal to replicate')
    assert.equal(c.rooms.room(room.id)?.member, false)
    await assert.rejects(c.rooms.send(room.id, 'carol', 'still here?'), { code: 'ROOM_NOT_MEMBER' })
    // c keeps listening as an eavesdropper would
    const seen = tap(c, topic)
    await meshed([a, b, c], topic)
    await a.rooms.send(room.id, 'alice', 'after')
    await until(async () => (await texts(b, room.id)).includes('after'), 'b to read the message after the removal')
    await until(() => seen.length >= 1, 'c to receive the new frame')
    assert.equal(decodeFrame(seen[0]!).epoch, 1)
    await until(() => c.rejected.some(r => r.code === 'ROOM_NO_KEY'), 'c to refuse the epoch-1 frame')
    assert.deepEqual(await texts(c, room.id), ['before'])
    // the new epoch key was sealed to a and b only
    const epoch1 = (await sealedKeysOf(a, ROOM_MEMBER, room.id)).filter(k => k.epoch === 1)
    assert.deepEqual(epoch1.map(k => k.host).sort(), [a.id, b.id].sort())
    for (const k of epoch1) {
      await assert.rejects(openEpochKey({ seed: c.identity.xwingSeed, peerId: c.id, roomId: room.id, epoch: 1, sealed: k.sealed }), { code: 'SEAL_OPEN_FAILED' })
    }
  } finally {
    await closeAll(hosts)
  }
})

test('a host offline during a conversation catches up the history when it returns', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(3)
  const [a, b, c] = hosts as [TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }, { host: c.id, agent: 'carol' }] })
    await until(() => [b, c].every(h => h.rooms.room(room.id)?.member === true), 'the room at b and c')
    await meshed([a, b, c], roomTopic(room.id))
    await a.rooms.send(room.id, 'alice', 'm0')
    await until(async () => (await texts(c, room.id)).length === 1, 'c to read m0')

    await c.goOffline()
    for (let i = 1; i <= 5; i++) await (i % 2 === 0 ? b.rooms.send(room.id, 'bob', `m${i}`) : a.rooms.send(room.id, 'alice', `m${i}`))
    await until(async () => (await texts(b, room.id)).length === 6, 'b to hold the conversation')
    assert.deepEqual(await texts(c, room.id), ['m0'])

    await c.goOnline()
    await c.libp2p.dial(a.libp2p.getMultiaddrs()[0]!)
    await until(async () => (await texts(c, room.id)).length === 6, 'c to catch up from history')
    assert.deepEqual((await texts(c, room.id)).sort(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'])
    // and it takes part again, live
    await c.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    await meshed([a, b, c], roomTopic(room.id))
    await c.rooms.send(room.id, 'carol', 'back')
    await until(async () => (await texts(a, room.id)).includes('back'), 'a to read c\'s new message')
  } finally {
    await closeAll(hosts)
  }
})

test('tampered ciphertext, forged sender and replayed message are each rejected with a typed reason', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(3)
  const [a, b, m] = hosts as [TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'pair', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }] })
    const topic = roomTopic(room.id)
    await until(() => b.rooms.room(room.id)?.member === true && m.rooms.room(room.id) !== undefined, 'the room at b and m')
    const seen = tap(m, topic)
    await meshed([a, b, m], topic)
    await b.rooms.send(room.id, 'bob', 'genuine')
    await until(() => seen.length === 1, 'm to capture the frame')
    await until(async () => (await texts(a, room.id)).length === 1, 'a to read the genuine message')
    const genuine = decodeFrame(seen[0]!)
    const publish = async (f: SignedRoomMessage | Uint8Array): Promise<void> => {
      await m.libp2p.services.pubsub.publish(topic, f instanceof Uint8Array ? f : encodeFrame(f))
    }
    const resign = (f: SignedRoomMessage, key: TestHost): SignedRoomMessage => ({ ...f, sig: createSigner(key.identity.privateKey).sign(signingBytes(f)) })
    const flipped = (f: SignedRoomMessage): SignedRoomMessage => {
      const ct = new Uint8Array(f.ciphertext)
      ct[ct.length - 20]! ^= 1
      return { ...f, ciphertext: ct }
    }
    const rejectedAt = async (code: string): Promise<void> => {
      await until(() => a.rejected.some(r => r.code === code), `a to reject with ${code}`)
    }

    // a relay flips a ciphertext bit: the sender's signature no longer holds
    await publish({ ...flipped(genuine), seq: 100 })
    await rejectedAt('ROOM_BAD_SIGNATURE')
    // the sending host itself (its key) signs a tampered ciphertext: the AEAD refuses it
    await publish(resign({ ...flipped(genuine), seq: 101 }, b))
    await rejectedAt('ROOM_MSG_AUTH_FAILED')
    // m claims to be b, signing with its own key
    a.rejected.length = 0
    await publish(resign({ ...genuine, seq: 102 }, m))
    await rejectedAt('ROOM_BAD_SIGNATURE')
    // m speaks as itself: a valid signature, but not a member
    await publish(resign({ ...genuine, sender: m.id, seq: 103 }, m))
    await rejectedAt('ROOM_NOT_MEMBER')
    // the genuine frame again, re-published by m
    await publish(seen[0]!)
    await rejectedAt('ROOM_REPLAY')
    // a genuine frame carried on another room's topic
    const other = await a.rooms.create({ name: 'other', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }] })
    await until(() => m.rooms.room(other.id) !== undefined && m.rooms.stats(other.id).subscribed, 'm to carry the other room')
    await meshed([a, b, m], roomTopic(other.id))
    await m.libp2p.services.pubsub.publish(roomTopic(other.id), seen[0]!)
    await rejectedAt('ROOM_FRAME_MALFORMED')
    assert.equal(a.rooms.stats(other.id).rejected.ROOM_FRAME_MALFORMED, 1)
    assert.deepEqual(await texts(a, other.id), [])
    assert.deepEqual(await texts(a, room.id), ['genuine'])
    assert.deepEqual(await texts(b, room.id), ['genuine'])
    // replays are refused directly too, with the same code
    await assert.rejects(a.rooms.receive(seen[0]!), { code: 'ROOM_REPLAY' })
  } finally {
    await closeAll(hosts)
  }
})

test('bounded history: the oldest frames are pruned, and pruned or held ones stay replays across a restart', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(2, { history: { maxMessages: 3 } })
  const [a, b] = hosts as [TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'short', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }] })
    await until(() => b.rooms.room(room.id)?.member === true, 'the room at b')
    await meshed([a, b], roomTopic(room.id))
    const frames = tap(b, roomTopic(room.id))
    for (let i = 0; i < 5; i++) await a.rooms.send(room.id, 'alice', `m${i}`)
    await until(() => b.rooms.stats(room.id).accepted === 5 && frames.length === 5, 'b to take all five')
    assert.deepEqual(await texts(b, room.id), ['m2', 'm3', 'm4'])
    const bySeq = new Map(frames.map(f => [decodeFrame(f).seq, f]))
    await assert.rejects(b.rooms.receive(bySeq.get(0)!), { code: 'ROOM_REPLAY' })
    await b.goOffline()
    await b.goOnline()
    await until(() => b.rooms.room(room.id) !== undefined, 'the room after the restart')
    for (const seq of [0, 1, 4]) await assert.rejects(b.rooms.receive(bySeq.get(seq)!), { code: 'ROOM_REPLAY' }, `seq ${seq}`)
    assert.deepEqual(await texts(b, room.id), ['m2', 'm3', 'm4'])
  } finally {
    await closeAll(hosts)
  }
})

test('gossip on a room topic from a peer that is not a member never reaches the room', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(2)
  const [a, b] = hosts as [TestHost, TestHost]
  const stranger = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  try {
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }] })
    const topic = roomTopic(room.id)
    await until(() => b.rooms.room(room.id) !== undefined, 'the room at b')
    await meshed([a, b], topic)
    stranger.services.pubsub.subscribe(topic)
    await stranger.dial(b.libp2p.getMultiaddrs()[0]!)
    await until(() => stranger.services.pubsub.getSubscribers(topic).map(String).includes(b.id), 'the stranger to see b on the topic')
    const before = b.rooms.stats(room.id).gossip
    // control: junk from a member does reach the room (which then refuses the frame itself)
    await a.libp2p.services.pubsub.publish(topic, new TextEncoder().encode('junk from a member'))
    await until(() => b.rooms.stats(room.id).gossip === before + 1, 'the member\'s frame at b')
    await stranger.services.pubsub.publish(topic, new TextEncoder().encode('junk from a stranger'))
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.equal(b.rooms.stats(room.id).gossip, before + 1, 'the stranger\'s frame was dropped by the topic validator')
    assert.equal(a.rooms.stats(room.id).gossip, 0, 'and not relayed to a')
  } finally {
    await stranger.stop()
    await closeAll(hosts)
  }
})

test('a bad history request is answered with a typed error frame, not a reset', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(2)
  const [a, b] = hosts as [TestHost, TestHost]
  try {
    // the codes of the frames a answers with; a reset would throw out of the read loop instead
    const ask = async (bytes: Uint8Array): Promise<string[]> => {
      const stream = await b.libp2p.dialProtocol(a.libp2p.peerId, HISTORY_PROTOCOL)
      stream.send(lp.encode.single(bytes))
      const got: string[] = []
      for await (const chunk of lp.decode(stream)) {
        const res = decodeHistoryResponse(chunk.subarray())
        got.push(res.t === 'error' ? res.code : res.t)
      }
      return got
    }
    assert.deepEqual(await ask(Uint8Array.of(0xff)), ['ROOM_FRAME_MALFORMED'])
    assert.deepEqual(await ask(new Uint8Array(MAX_HISTORY_REQUEST_BYTES + 1)), ['ROOM_FRAME_TOO_LARGE'])
  } finally {
    await closeAll(hosts)
  }
})
