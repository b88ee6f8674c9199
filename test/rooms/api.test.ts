import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { ApiServer } from '../../node/api.js'
import { ControlClient } from '../../node/client.js'
import { RoomClient } from '../../node/room-client.js'
import { attachRooms } from '../../node/rooms.js'
import { resolveHost } from '../../node/host-names.js'
import { parseDuration, parseMember, DEFAULT_AGENT } from '../../node/cli-rooms.js'
import { roomTopic } from '../../protocols/rooms/index.js'
import { meshed, startMesh, until, type TestHost } from './helpers.js'

const TOKEN = 'a'.repeat(64)

test('the rooms API: 401 without the token; create, send, read, stream and agent tokens with it', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(2, {}, [0])
  const [a, b] = hosts as [TestHost, TestHost]
  const api = new ApiServer(TOKEN, pino({ level: 'silent' }))
  const { service, agents } = await attachRooms({ libp2p: a.libp2p, store: a.store, identity: a.identity, membership: a.membership, resolveHost: (text) => resolveHost(hosts.map(h => ({ peer: h.id })), text), db: a.db, api, log: pino({ level: 'silent' }) })
  const url = await api.listen('127.0.0.1', 0)
  try {
    for (const [method, path] of [['GET', '/v1/rooms'], ['POST', '/v1/rooms'], ['POST', '/v1/agents'], ['GET', '/v1/rooms/00000000000000000000000000000000/stream']] as const) {
      const none = await fetch(url + path, { method, body: method === 'POST' ? '{}' : undefined })
      assert.equal(none.status, 401, `${method} ${path} without a token`)
      const wrong = await fetch(url + path, { method, headers: { authorization: `Bearer ${'b'.repeat(64)}` }, body: method === 'POST' ? '{}' : undefined })
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`)
    }

    const alice = new RoomClient({ url, token: TOKEN, agent: 'alice' })
    const room = await alice.create('ops', [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }])
    assert.equal(room.member, true)
    assert.equal(room.manager, true)
    assert.deepEqual((await alice.list()).map(r => r.id), [room.id])
    await until(() => b.rooms.room(room.id)?.member === true, 'the room at b')
    await meshed([a, b], roomTopic(room.id))

    const ac = new AbortController()
    const streamed: string[] = []
    const streaming = (async () => {
      for await (const m of alice.stream(room.id, { signal: ac.signal })) {
        streamed.push(m.text)
        if (streamed.length === 2) ac.abort()
      }
    })()
    const sent = await alice.send(room.id, 'hi bob')
    assert.equal(sent.agent, 'alice')
    await until(async () => (await b.rooms.read(room.id)).messages.length === 1, 'b to read alice')
    await b.rooms.send(room.id, 'bob', 'hi alice')
    await streaming
    assert.deepEqual(streamed, ['hi bob', 'hi alice'])
    const read = await alice.read(room.id)
    assert.deepEqual(read.messages.map(m => `${m.agent}: ${m.text}`), ['alice: hi bob', 'bob: hi alice'])
    assert.deepEqual((await alice.read(room.id, { since: read.cursor })).messages, [])
    // a long poll returns as soon as a message lands
    const polling = alice.read(room.id, { since: read.cursor, waitMs: 30_000 })
    await b.rooms.send(room.id, 'bob', 'third')
    assert.deepEqual((await polling).messages.map(m => m.text), ['third'])

    const operator = new ControlClient(url, TOKEN)
    await assert.rejects(operator.post(`/v1/rooms/${room.id}/messages`, { text: 'who am I?' }), { status: 400, code: 'ROOM_BAD_REQUEST' })
    await assert.rejects(operator.post(`/v1/rooms/${room.id}/messages`, { text: 'x', agent: 'mallory' }), { status: 403, code: 'ROOM_NOT_MEMBER' })
    await assert.rejects(operator.get('/v1/rooms/00000000000000000000000000000000/messages'), { status: 404, code: 'ROOM_UNKNOWN' })
    const issued = await operator.post<{ agent: string, token: string, expiresAt: number | null }>('/v1/agents', { agent: 'carol' })
    assert.match(issued.token, /^[0-9a-f]{64}$/)
    assert.deepEqual(await agents.resolve(issued.token), { kind: 'agent', agent: 'carol' })
    assert.equal(issued.expiresAt, null)
    assert.equal(await agents.resolve('f'.repeat(64)), undefined)

    const removed = await alice.remove(room.id, { host: b.id, agent: 'bob' })
    assert.equal(removed.epoch, 1)
    assert.deepEqual(removed.members, [{ host: a.id, agent: 'alice' }])
  } finally {
    await api.close()
    await service.stop()
    for (const h of hosts) await h.close()
  }

})

test('revoking an agent\'s tokens refuses its next call and ends its open stream and long poll at once; a token with a ttl expires', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(2, {}, [0])
  const [a, b] = hosts as [TestHost, TestHost]
  const api = new ApiServer(TOKEN, pino({ level: 'silent' }))
  const { service } = await attachRooms({ libp2p: a.libp2p, store: a.store, identity: a.identity, membership: a.membership, resolveHost: (text) => resolveHost(hosts.map(h => ({ peer: h.id })), text), db: a.db, api, log: pino({ level: 'silent' }) })
  const url = await api.listen('127.0.0.1', 0)
  try {
    const operator = new ControlClient(url, TOKEN)
    const room = await new RoomClient({ url, token: TOKEN, agent: 'alice' }).create('ops', [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }])
    const issued = await operator.post<{ token: string }>('/v1/agents', { agent: 'alice' })
    const spare = await operator.post<{ token: string }>('/v1/agents', { agent: 'alice' })
    const other = await operator.post<{ token: string }>('/v1/agents', { agent: 'bob' })
    const alice = new RoomClient({ url, token: issued.token })
    await alice.send(room.id, 'hello')
    const streamed: string[] = []
    let streamEnded = false
    const streaming = (async () => {
      for await (const m of alice.stream(room.id)) streamed.push(m.text)
      streamEnded = true
    })()
    await until(() => streamed.length === 1, 'the stream to deliver the backlog')
    const polling = alice.read(room.id, { since: 1, waitMs: 60_000 }).then(() => 'answered', (err: { status?: number }) => err.status)

    assert.deepEqual(await operator.request('DELETE', '/v1/agents/alice'), { agent: 'alice', revoked: 2 })
    await streaming
    assert.equal(streamEnded, true)
    assert.equal(await polling, 401)
    for (const t of [issued.token, spare.token]) await assert.rejects(new RoomClient({ url, token: t }).list(), { status: 401 })
    // other agents' tokens and the operator are untouched
    assert.equal((await new RoomClient({ url, token: other.token }).list()).length, 0)
    assert.equal((await operator.get<unknown[]>('/v1/rooms')).length, 1)

    // a token with a time to live works, then stops, and its stream ends with it
    const short = await operator.post<{ token: string, expiresAt: number }>('/v1/agents', { agent: 'alice', ttlSeconds: 2 })
    assert.ok(short.expiresAt > Date.now())
    const brief = new RoomClient({ url, token: short.token })
    assert.equal((await brief.list()).length, 1)
    const seen: string[] = []
    for await (const m of brief.stream(room.id)) seen.push(m.text)
    assert.deepEqual(seen, ['hello'])
    await assert.rejects(brief.list(), { status: 401 })
    await assert.rejects(operator.post('/v1/agents', { agent: 'alice', ttlSeconds: 0 }), { status: 400 })
    await assert.rejects(operator.post('/v1/agents', { agent: 'alice', ttlSeconds: 400 * 86_400 }), { status: 400 })
  } finally {
    await api.close()
    await service.stop()
    for (const h of hosts) await h.close()
  }
})

test('CLI member specs: HOST[:AGENT], with the default agent', () => {
  assert.deepEqual(parseMember('12D3KooWabc:bot'), { host: '12D3KooWabc', agent: 'bot' })
  assert.deepEqual(parseMember('12D3KooWabc'), { host: '12D3KooWabc', agent: DEFAULT_AGENT })
  assert.throws(() => parseMember(':bot'), { code: 'API_BAD_REQUEST' })
  assert.throws(() => parseMember('host:'), { code: 'API_BAD_REQUEST' })
  assert.deepEqual(['90', '90s', '15m', '12h', '30d'].map(parseDuration), [90, 90, 900, 43_200, 2_592_000])
  for (const bad of ['', '0', '-5', '1w', '1.5h', 'h']) assert.throws(() => parseDuration(bad), { code: 'API_BAD_REQUEST' }, bad)
})
