// Rooms across real daemons (issue 7): four `fleetmesh start` processes paired by invite codes,
// driven through the real CLI and the typed RoomClient with agent tokens. One fleet serves every
// test below, in order: each builds on the room the first one creates.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { ControlClient } from '../../node/client.js'
import { RoomClient } from '../../node/room-client.js'
import type { RoomInfo, RoomMessageOut, RoomStats } from '../../protocols/rooms/index.js'

const WAIT_MS = 90_000
let fleet: Fleet
let a: FleetHost, b: FleetHost, c: FleetHost, d: FleetHost
let room = ''
/** agent name → its token, issued by `fleetmesh room token` on the agent's host */
const tokens = new Map<string, string>()

async function operator (h: FleetHost): Promise<ControlClient> {
  return ControlClient.forDataDir(h.dataDir)
}

/** The agent's client: the host's current API URL (it changes on restart) and its own token. */
async function agent (h: FleetHost, name: string, actAs?: string): Promise<RoomClient> {
  return new RoomClient({ url: (await operator(h)).url, token: tokens.get(name)!, agent: actAs })
}

async function issueToken (h: FleetHost, name: string): Promise<void> {
  const t = await h.json<{ agent: string, token: string }>(['room', 'token', name])
  assert.equal(t.agent, name)
  tokens.set(name, t.token)
}

async function cliOk (h: FleetHost, args: string[]): Promise<string> {
  const r = await h.cli(args)
  assert.equal(r.code, 0, `${h.name}: fleetmesh ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

/** `fleetmesh room tail ROOM --json`: one JSON message per line. */
async function tail (h: FleetHost): Promise<RoomMessageOut[]> {
  return (await cliOk(h, ['room', 'tail', room, '--json'])).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as RoomMessageOut)
}

async function texts (h: FleetHost): Promise<string[]> {
  return (await (await operator(h)).get<{ messages: RoomMessageOut[] }>(`/v1/rooms/${room}/messages`)).messages.map(m => m.text)
}

async function roomAt (h: FleetHost): Promise<RoomInfo | undefined> {
  return (await (await operator(h)).get<RoomInfo[]>('/v1/rooms')).find(r => r.id === room)
}

async function stats (h: FleetHost): Promise<RoomStats> {
  return (await operator(h)).get<RoomStats>(`/v1/rooms/${room}/stats`)
}

async function waitFor (what: string, check: () => Promise<boolean>): Promise<void> {
  await fleet.waitFor(what, check, WAIT_MS)
}

/** Until each of `hosts` exchanges the room's gossip with at least one of the others. */
async function meshed (hosts: FleetHost[]): Promise<void> {
  await waitFor(`the room's gossip mesh over ${hosts.map(h => h.name).join(',')}`, async () => {
    for (const h of hosts) {
      if ((await roomAt(h)) === undefined) return false
      const peers = (await stats(h)).peers
      // Every host relays the room's frames, so one topic peer among the others suffices.
      if (!hosts.some(o => o !== h && peers.includes(o.peerId))) return false
    }
    return true
  })
}

before(async () => {
  fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b' }, { name: 'c' }, { name: 'd' }] })
  await fleet.pairAll()
  ;[a, b, c, d] = ['a', 'b', 'c', 'd'].map(n => fleet.host(n)) as [FleetHost, FleetHost, FleetHost, FleetHost]
})

after(async () => {
  await fleet?.close()
})

test('agents on three hosts converse; a fourth member carries the gossip but cannot decrypt it', { timeout: 300_000 }, async () => {
  const created = await a.json<RoomInfo>(['room', 'create', 'ops', '--member', `${a.peerId}:alice`, '--member', `${b.peerId}:bob`, '--member', `${c.peerId}:carol`])
  room = created.id
  assert.equal(created.epoch, 0)
  assert.equal(created.member, true)
  await meshed([a, b, c, d])
  for (const [h, name] of [[a, 'alice'], [b, 'bob'], [c, 'carol']] as const) await issueToken(h, name)

  await (await agent(a, 'alice')).send(room, 'hello from alice')
  // carol's agent long-polls its own host until alice's message lands there
  const carol = await agent(c, 'carol')
  const first = await carol.read(room, { waitMs: 30_000 })
  assert.deepEqual(first.messages.map(m => `${m.agent}@${m.sender}: ${m.text}`), [`alice@${a.peerId}: hello from alice`])
  const bobSent = JSON.parse(await cliOk(b, ['room', 'send', room, 'bob here', '--agent', 'bob', '--json'])) as RoomMessageOut
  assert.equal(bobSent.agent, 'bob')
  await carol.send(room, 'carol too')
  const want = ['bob here', 'carol too', 'hello from alice']
  for (const h of [a, b, c]) await waitFor(`${h.name} to hold all three messages`, async () => (await texts(h)).length === 3)
  for (const h of [a, b, c]) {
    const got = await tail(h)
    assert.deepEqual(got.map(m => m.text).sort(), want)
    assert.deepEqual(got.find(m => m.text === 'bob here')?.sender, b.peerId)
    assert.deepEqual(got.find(m => m.text === 'carol too')?.agent, 'carol')
  }

  // d is a mesh member outside the room: it receives every frame and opens none
  await waitFor('d to receive the three frames', async () => (await stats(d)).gossip >= 3)
  const ds = await d.json<RoomStats>(['room', 'stats', room])
  assert.match(await cliOk(d, ['room', 'stats', room]), /kept 0\nrefused: {2}ROOM_NO_KEY \d+/)
  assert.equal(ds.subscribed, true)
  assert.equal(ds.accepted, 0)
  assert.equal(ds.rejected.ROOM_NO_KEY, ds.gossip)
  assert.deepEqual(await tail(d), [])
  const atD = JSON.parse(await cliOk(d, ['room', 'list', '--json'])) as RoomInfo[]
  assert.equal(atD.find(r => r.id === room)?.member, false)
  // the members kept what they received, and refused nothing
  const bs = await stats(b)
  assert.equal(bs.accepted, 2)
  assert.deepEqual(bs.rejected, {})
})

test('calls without a token get 401; an agent token acts as its own agent only', { timeout: 120_000 }, async () => {
  const url = (await operator(b)).url
  const calls: Array<[string, string, unknown?]> = [
    ['GET', '/v1/rooms'], ['GET', `/v1/rooms/${room}/messages`], ['GET', `/v1/rooms/${room}/stream`],
    ['POST', `/v1/rooms/${room}/messages`, { text: 'x', agent: 'bob' }], ['POST', '/v1/agents', { agent: 'eve' }], ['GET', '/v1/status']
  ]
  for (const [method, path, body] of calls) {
    const init = { method, body: body === undefined ? undefined : JSON.stringify(body) }
    assert.equal((await fetch(url + path, init)).status, 401, `${method} ${path} without a token`)
    const wrong = await fetch(url + path, { ...init, headers: { authorization: `Bearer ${'0'.repeat(64)}` } })
    assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`)
  }

  const bob = await agent(b, 'bob')
  assert.deepEqual((await bob.list()).map(r => r.id), [room])
  assert.equal((await bob.read(room)).messages.length, 3)
  // bob's token speaking as alice, issuing tokens, or reaching operator routes
  await assert.rejects((await agent(b, 'bob', 'alice')).send(room, 'I am alice'), { status: 403, code: 'ROOM_NOT_AUTHORISED' })
  const asBob = new ControlClient(url, tokens.get('bob')!)
  await assert.rejects(asBob.get('/v1/status'), { status: 403, code: 'API_FORBIDDEN' })
  await assert.rejects(asBob.post('/v1/agents', { agent: 'mallory' }), { status: 403, code: 'API_FORBIDDEN' })
  await assert.rejects(bob.create('mine', [{ host: b.peerId, agent: 'bob' }]), { status: 403, code: 'API_FORBIDDEN' })
  await assert.rejects(bob.add(room, { host: d.peerId, agent: 'mallory' }), { status: 403, code: 'API_FORBIDDEN' })
  await assert.rejects(asBob.get(`/v1/rooms/${room}/stats`), { status: 403, code: 'API_FORBIDDEN' })
  // a token issued on another host means nothing here
  await assert.rejects(new RoomClient({ url, token: tokens.get('alice')! }).list(), { status: 401 })
  // an agent outside the room sees nothing of it
  await issueToken(d, 'dave')
  const dave = await agent(d, 'dave')
  assert.deepEqual(await dave.list(), [])
  await assert.rejects(dave.read(room), { status: 403, code: 'ROOM_NOT_MEMBER' })
  await assert.rejects(dave.send(room, 'let me in'), { status: 403, code: 'ROOM_NOT_MEMBER' })
  assert.deepEqual((await stats(a)).rejected, {})
})

test('removal starts a new epoch: the removed host receives the next message and cannot read it', { timeout: 120_000 }, async () => {
  const removed = await a.json<RoomInfo>(['room', 'remove', room, `${c.peerId}:carol`])
  assert.equal(removed.epoch, 1)
  assert.deepEqual(removed.members.map(m => m.agent).sort(), ['alice', 'bob'])
  for (const h of [b, c]) await waitFor(`${h.name} to see epoch 1`, async () => (await roomAt(h))?.epoch === 1)
  assert.equal((await roomAt(c))?.member, false)
  const carol = await agent(c, 'carol')
  await assert.rejects(carol.send(room, 'still here?'), { status: 403, code: 'ROOM_NOT_MEMBER' })
  await assert.rejects(carol.read(room), { status: 403, code: 'ROOM_NOT_MEMBER' })

  const before = (await stats(c)).rejected.ROOM_NO_KEY ?? 0
  await (await agent(a, 'alice')).send(room, 'after the removal')
  const bob = await agent(b, 'bob')
  await waitFor('bob to read the message after the removal', async () => (await bob.read(room)).messages.some(m => m.text === 'after the removal'))
  await waitFor('c to receive the epoch-1 frame', async () => ((await stats(c)).rejected.ROOM_NO_KEY ?? 0) > before)
  assert.deepEqual((await tail(c)).map(m => m.text).sort(), ['bob here', 'carol too', 'hello from alice'])
  // alice's and bob's messages; its own it stored when sending
  assert.equal((await stats(c)).accepted, 2)
})

test('a host offline during the conversation catches up the history when it returns', { timeout: 180_000 }, async () => {
  await fleet.stop('b')
  const alice = await agent(a, 'alice')
  await alice.send(room, 'while bob was away 1')
  await alice.send(room, 'while bob was away 2')
  // Longer than gossipsub's message cache (5 heartbeats): the messages can no longer reach b
  // by gossip repair, so what b gets it fetched from a member's history.
  await new Promise((resolve) => setTimeout(resolve, 6000))
  await fleet.start('b')
  await waitFor('b to catch up', async () => (await texts(b)).includes('while bob was away 2'))
  const got = (await tail(b)).map(m => m.text)
  assert.ok(got.includes('while bob was away 1'))
  assert.equal(got.length, 6)
  assert.ok((await stats(b)).history >= 2)
  // bob's token survived the restart; he takes part again, live
  await meshed([a, b])
  const bob = await agent(b, 'bob')
  await bob.send(room, 'back')
  await waitFor('alice to read bob\'s return', async () => (await alice.read(room)).messages.some(m => m.text === 'back'))
})

test('a host added later reads from its join on', { timeout: 120_000 }, async () => {
  const added = await a.json<RoomInfo>(['room', 'add', room, `${d.peerId}:dave`])
  assert.equal(added.epoch, 2)
  await waitFor('d to become a member', async () => (await roomAt(d))?.member === true && (await roomAt(d))?.epoch === 2)
  await meshed([a, b, d])
  await (await agent(a, 'alice')).send(room, 'welcome dave')
  const dave = await agent(d, 'dave')
  await waitFor('dave to read the welcome', async () => (await dave.read(room)).messages.length > 0)
  assert.deepEqual((await dave.read(room)).messages.map(m => m.text), ['welcome dave'])
  const dm = JSON.parse(await cliOk(d, ['room', 'send', room, 'thanks', '--agent', 'dave', '--json'])) as RoomMessageOut
  assert.equal(dm.epoch, 2)
  await waitFor('alice to read dave', async () => (await texts(a)).includes('thanks'))
})

test('`room token AGENT --revoke` ends the agent\'s stream and refuses its token at once; `--ttl` tokens expire', { timeout: 120_000 }, async () => {
  const alice = await agent(a, 'alice')
  const streamed: string[] = []
  const streaming = (async () => {
    for await (const m of alice.stream(room)) streamed.push(m.text)
  })()
  await waitFor('alice\'s stream to deliver the backlog', async () => streamed.length > 0)
  const revoked = JSON.parse(await cliOk(a, ['room', 'token', 'alice', '--revoke', '--json'])) as { agent: string, revoked: number }
  assert.deepEqual(revoked, { agent: 'alice', revoked: 1 })
  await streaming
  await assert.rejects(alice.list(), { status: 401 })
  assert.match(await cliOk(a, ['room', 'token', 'alice', '--revoke']), /revoked 0 token\(s\) of alice/)

  const t = await a.json<{ agent: string, token: string, expiresAt: number }>(['room', 'token', 'alice', '--ttl', '2s'])
  assert.ok(t.expiresAt > 0)
  const brief = new RoomClient({ url: (await operator(a)).url, token: t.token })
  assert.equal((await brief.list()).length, 1)
  await waitFor('the 2 s token to expire', async () => brief.list().then(() => false, (err: { status?: number }) => err.status === 401))
  assert.notEqual((await a.cli(['room', 'token', 'alice', '--ttl', '2w'])).code, 0)
})
