// A hostile member against rooms, over real libp2p between real hosts (issue 13, findings 1-3):
// it cannot take a room over with a backdated room-create, revoking or demoting the admin who
// removed a member does not bring the member back, and a removed member cannot post by
// backdating its frames into the old epoch.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { openEpochKey, sealEpochKey } from '../../crypto/seal.js'
import { createSigner } from '../../crypto/sign.js'
import { encryptRoomMessage, signingBytes } from '../../crypto/room-cipher.js'
import { encodeFrame, keyId, roomTopic, ROOM_CREATE, ROOM_MEMBER, type RoomCreateBody, type SealedKey } from '../../protocols/rooms/index.js'
import { meshed, startMesh, until, type TestHost } from './helpers.js'

async function closeAll (hosts: TestHost[]): Promise<void> {
  for (const h of hosts) await h.close()
}

async function texts (h: TestHost, room: string): Promise<string[]> {
  return (await h.rooms.read(room)).messages.map(m => m.text)
}

async function bodyOf<T> (h: TestHost, kind: string, room: string): Promise<{ body: T, ts: number, feed: string }> {
  for await (const { entry } of h.store.log({ kind })) {
    if ((entry.body as { room: string }).room === room) return { body: entry.body as T, ts: entry.ts, feed: entry.feed }
  }
  throw new Error(`no ${kind} of room ${room}`)
}

async function holds (h: TestHost, feed: string, kind: string): Promise<boolean> {
  for await (const { entry } of h.store.log({ kind })) if (entry.feed === feed) return true
  return false
}

test('a member cannot take a room over with a backdated room-create of its id', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(3)
  const [a, b, m] = hosts as [TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }] })
    await until(() => b.rooms.room(room.id)?.member === true && m.rooms.room(room.id) !== undefined, 'the room everywhere')
    await meshed([a, b, m], roomTopic(room.id))
    await a.rooms.send(room.id, 'alice', 'before')
    await until(async () => (await texts(b, room.id)).includes('before'), 'b to read the first message')

    // m copies the room-create, puts in its own epoch-0 key sealed to everyone (itself too) and
    // writes it a day in the past, so it sorts first by claimed time
    const genuine = await bodyOf<RoomCreateBody>(a, ROOM_CREATE, room.id)
    const key = new Uint8Array(randomBytes(32))
    const keys: SealedKey[] = await Promise.all([a, b, m].map(async h => ({
      host: h.id, epoch: 0, sealed: await sealEpochKey({ recipientPublicKey: h.identity.xwingPublicKey, recipientPeerId: h.id, roomId: room.id, epoch: 0, key })
    })))
    m.clock.offsetMs = -24 * 3600_000
    await m.store.append(ROOM_CREATE, { ...genuine.body, kid: keyId(room.id, 0, key), keys, members: [...genuine.body.members, { host: m.id, agent: 'mallory' }] })
    m.clock.offsetMs = 0
    await until(async () => await holds(a, m.id, ROOM_CREATE) && await holds(b, m.id, ROOM_CREATE), 'the forged room-create to replicate')

    for (const h of [a, b, m]) {
      const r = h.rooms.room(room.id)!
      assert.equal(r.creator, a.id, `the room's creator at ${h === m ? 'm' : h === a ? 'a' : 'b'}`)
      assert.deepEqual(r.members.map(x => x.agent).sort(), ['alice', 'bob'])
    }
    assert.equal(m.rooms.room(room.id)?.member, false)
    // members keep encrypting under the creator's key: m cannot read what follows, and the
    // history before the attempt still opens
    await a.rooms.send(room.id, 'alice', 'after')
    await until(async () => (await texts(b, room.id)).includes('after'), 'b to read the message after the attempt')
    assert.deepEqual(await texts(b, room.id), ['before', 'after'])
    assert.deepEqual(await texts(a, room.id), ['before', 'after'])
    await until(() => (m.rooms.stats(room.id).rejected.ROOM_NO_KEY ?? 0) >= 2, 'm to refuse both frames')
    assert.deepEqual(await texts(m, room.id), [])
    await assert.rejects(m.rooms.send(room.id, 'mallory', 'mine now'), { code: 'ROOM_NOT_MEMBER' })
  } finally {
    await closeAll(hosts)
  }
})

test('demoting, then revoking, the admin who removed a member does not bring the member back', { timeout: 180_000 }, async () => {
  const hosts = await startMesh(3)
  const [a, x, r] = hosts as [TestHost, TestHost, TestHost]
  try {
    await a.store.append('grant', { peer: x.id, role: 'admin' })
    await until(() => hosts.every(h => h.membership.isAdmin?.(x.id) === true), 'x to be an admin everywhere')
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: x.id, agent: 'xavier' }, { host: r.id, agent: 'rob' }] })
    await until(() => hosts.every(h => h.rooms.room(room.id)?.member === true), 'the room everywhere')
    await meshed(hosts, roomTopic(room.id))

    // x, an admin, removes r: epoch 1, sealed to a and x only
    await x.rooms.removeMember(room.id, { host: r.id, agent: 'rob' })
    await until(() => hosts.every(h => h.rooms.room(room.id)?.epoch === 1), 'the removal everywhere')
    const removal = await bodyOf<{ epoch: number }>(a, ROOM_MEMBER, room.id)
    assert.equal(removal.feed, x.id)

    const out = async (what: string): Promise<void> => {
      for (const h of hosts) {
        const info = h.rooms.room(room.id)!
        assert.ok(info.epoch >= 1, `${what}: the epoch never rolls back`)
        assert.equal(info.members.some(m => m.host === r.id), false, `${what}: r stays removed`)
      }
      assert.equal(r.rooms.room(room.id)?.member, false)
    }
    // a demotes x (a grant written after the removal)
    await a.store.append('grant', { peer: x.id, role: 'host' })
    await until(() => hosts.every(h => h.membership.isAdmin?.(x.id) === false), 'the demotion everywhere')
    await out('after the demotion')

    // a revokes x, having seen its feed up to the removal and beyond
    let after = -1
    for await (const { entry } of a.store.log()) if (entry.feed === x.id) after = Math.max(after, entry.seq)
    await a.store.append('revoke', { peer: x.id, after, reason: 'compromised' })
    await until(() => [a, r].every(h => h.membership.isMember(x.id) === false), 'the revoke at a and r')
    await out('after the revoke')
    // x held the epoch-1 key and is no member any more: a rekeys, still without r
    await until(() => a.rooms.room(room.id)!.epoch >= 2 && r.rooms.room(room.id)!.epoch >= 2, 'a to rekey away from x')
    await out('after the rekey')
    await meshed([a, r], roomTopic(room.id))
    const before = r.rooms.stats(room.id).rejected.ROOM_NO_KEY ?? 0
    await a.rooms.send(room.id, 'alice', 'not for rob')
    await until(() => (r.rooms.stats(room.id).rejected.ROOM_NO_KEY ?? 0) > before, 'r to refuse the new frame')
    assert.equal((await texts(r, room.id)).includes('not for rob'), false)
  } finally {
    await closeAll(hosts)
  }
})

test('a removed member cannot post by backdating its frame into the old epoch, not even after a restart', { timeout: 180_000 }, async () => {
  const GRACE_MS = 1000
  const hosts = await startMesh(3, { epochGraceMs: GRACE_MS })
  const [a, b, r] = hosts as [TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }, { host: r.id, agent: 'rob' }] })
    const topic = roomTopic(room.id)
    await until(() => hosts.every(h => h.rooms.room(room.id)?.member === true), 'the room everywhere')
    await meshed(hosts, topic)
    await r.rooms.send(room.id, 'rob', 'while a member')
    await until(async () => (await texts(b, room.id)).includes('while a member'), 'b to read r\'s message')

    await a.rooms.removeMember(room.id, { host: r.id, agent: 'rob' })
    await until(() => hosts.every(h => h.rooms.room(room.id)?.epoch === 1), 'the removal everywhere')
    const removal = await bodyOf<unknown>(a, ROOM_MEMBER, room.id)

    // r still holds the epoch-0 key; it writes a frame dated at the removal, inside the old
    // epoch's grace by its claimed time, and publishes it on the room's topic
    const create = await bodyOf<RoomCreateBody>(r, ROOM_CREATE, room.id)
    const key = await openEpochKey({ seed: r.identity.xwingSeed, peerId: r.id, roomId: room.id, epoch: 0, sealed: create.body.keys.find(k => k.host === r.id)!.sealed })
    const signer = createSigner(r.identity.privateKey)
    let seq = 1000
    const forge = (text: string): Uint8Array => {
      const msg = encryptRoomMessage(key, { room: room.id, epoch: 0, sender: r.id, agent: 'rob', seq: seq++, ts: removal.ts }, new TextEncoder().encode(text))
      return encodeFrame({ ...msg, sig: signer.sign(signingBytes(msg)) })
    }
    /** r publishes a forged frame; what b did with it: the code it refused it with, or 'kept' */
    const post = async (text: string): Promise<string> => {
      const frameSeq = seq
      await r.libp2p.services.pubsub.publish(topic, forge(text))
      let verdict: string | undefined
      await until(async () => {
        verdict = b.rejected.find(x => x.sender === r.id && x.seq === frameSeq)?.code ?? ((await texts(b, room.id)).includes(text) ? 'kept' : undefined)
        return verdict !== undefined
      }, `b to judge "${text}"`)
      return verdict!
    }

    await new Promise(resolve => setTimeout(resolve, 2 * GRACE_MS))
    assert.equal(await post('backdated'), 'ROOM_STALE_EPOCH')

    // b restarts: the fold sees the epoch end again, but the grace ran from when b first saw it
    await b.goOffline()
    await b.goOnline()
    for (const h of [a, r]) await b.libp2p.dial(h.libp2p.getMultiaddrs()[0]!)
    await until(() => b.rooms.room(room.id)?.epoch === 1, 'the room at b after the restart')
    await meshed(hosts, topic)
    assert.equal(await post('after the restart'), 'ROOM_STALE_EPOCH')
    assert.deepEqual(await texts(b, room.id), ['while a member'])
    assert.deepEqual(await texts(a, room.id), ['while a member'])
  } finally {
    await closeAll(hosts)
  }
})

test('a removed member\'s backdated frame taken by a host whose log lagged does not spread through history', { timeout: 180_000 }, async () => {
  const GRACE_MS = 1000
  const hosts = await startMesh(4, { epochGraceMs: GRACE_MS })
  const [a, b, r, l] = hosts as [TestHost, TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }, { host: r.id, agent: 'rob' }, { host: l.id, agent: 'lou' }] })
    const topic = roomTopic(room.id)
    await until(() => hosts.every(h => h.rooms.room(room.id)?.member === true), 'the room everywhere')
    await a.rooms.send(room.id, 'alice', 'before')
    await until(async () => (await texts(l, room.id)).includes('before'), 'l to read the first message')

    // l is away while a removes r; r (modified code) stops serving the log, and l comes back
    // connected to r only: its log lags behind the removal
    await l.goOffline()
    await a.rooms.removeMember(room.id, { host: r.id, agent: 'rob' })
    await until(() => [a, b, r].every(h => h.rooms.room(room.id)?.epoch === 1), 'the removal at a, b and r')
    const removal = await bodyOf<unknown>(a, ROOM_MEMBER, room.id)
    await r.sync.stop()
    // past the grace at a and b: what they now take of epoch 0 they take from history only
    await new Promise(resolve => setTimeout(resolve, 2 * GRACE_MS))
    await l.goOnline()
    await l.libp2p.dial(r.libp2p.getMultiaddrs()[0]!)
    await meshed([l, r], topic)
    assert.equal(l.rooms.room(room.id)?.epoch, 0)

    const create = await bodyOf<RoomCreateBody>(r, ROOM_CREATE, room.id)
    const key = await openEpochKey({ seed: r.identity.xwingSeed, peerId: r.id, roomId: room.id, epoch: 0, sealed: create.body.keys.find(k => k.host === r.id)!.sealed })
    const msg = encryptRoomMessage(key, { room: room.id, epoch: 0, sender: r.id, agent: 'rob', seq: 1000, ts: removal.ts }, new TextEncoder().encode('laundered'))
    await r.libp2p.services.pubsub.publish(topic, encodeFrame({ ...msg, sig: createSigner(r.identity.privateKey).sign(signingBytes(msg)) }))
    // l cannot know yet: it takes the frame
    await until(async () => (await texts(l, room.id)).includes('laundered'), 'l to take r\'s frame')

    // l catches up the log from a; a, long past epoch 0's grace, fetches l's history
    await l.libp2p.dial(a.libp2p.getMultiaddrs()[0]!)
    await until(() => l.rooms.room(room.id)?.epoch === 1, 'l to see the removal')
    assert.equal(await a.rooms.fetchHistory(room.id, l.libp2p.peerId), 0)
    assert.ok((a.rooms.stats(room.id).rejected.ROOM_STALE_EPOCH ?? 0) >= 1)
    assert.deepEqual(await texts(a, room.id), ['before'])
  } finally {
    await closeAll(hosts)
  }
})
