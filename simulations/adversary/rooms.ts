// The rooms attacks (issue 13, findings 1-4): a backdated room-create taking over a room the
// member is not in, a removal the mesh's admin undoes by demoting then revoking the remover, a
// removed member's frame backdated into the old epoch, and floods of room frames and history
// requests. What the honest hosts' agents send is labelled: "secret …" is for no one the
// attacker may be (a room it is not in, or sent after its removal), "shared …" it may read.
import { randomBytes } from 'node:crypto'
import type { FleetHost } from '../harness/fleet.js'
import { sealEpochKey } from '../../crypto/seal.js'
import { keyId, ROOM_CREATE, ROOM_MEMBER, type RoomCreateBody } from '../../protocols/rooms/index.js'
import type { Attacker } from './attacker.js'
import { eventually, room, send, sleep, stats, texts, type HeapWatch, type Outcome } from './observe.js'

/** The daemons' epoch grace (protocols/rooms epoch-ends.ts), with a margin. */
const PAST_GRACE_MS = 12_000

export interface RoomsCast {
  /** the mesh's admin, who also creates every room */
  admin: FleetHost
  /** an admin who removes the member, then is demoted and revoked by `admin` */
  remover: FleetHost
  /** every host that stays honest, `admin` first */
  honest: FleetHost[]
}

/** Room ids by role: `closed` lacks the attacker, `removal` drops it, `shared` keeps it. */
export interface Rooms { closed: string, removal: string, shared: string }

async function create (c: RoomsCast, name: string, members: string[]): Promise<string> {
  const r = await c.admin.json<{ id: string }>(['room', 'create', name, ...members.flatMap((m) => ['--member', m])])
  return r.id
}

async function entryOf<T> (m: Attacker, kind: string, id: string): Promise<{ body: T, ts: number }> {
  for await (const { entry } of m.store.log({ kind })) if ((entry.body as { room: string }).room === id) return { body: entry.body as T, ts: entry.ts }
  throw new Error(`the attacker holds no ${kind} of room ${id}`)
}

/** Creates the three rooms and lets the attacker listen on all of them. */
export async function setUpRooms (m: Attacker, c: RoomsCast, honestAgents: string[]): Promise<Rooms> {
  const closed = await create(c, 'closed', honestAgents)
  const removal = await create(c, 'removal', [...honestAgents, `${c.remover.peerId}:xavier`, `${m.id}:rob`])
  const shared = await create(c, 'shared', [...honestAgents, `${m.id}:rob`])
  const ids = [closed, removal, shared]
  const everywhere = await eventually(async () => {
    await m.pull(c.honest.map((h) => h.peerId))
    for (const id of ids) await entryOf(m, ROOM_CREATE, id)
    for (const h of [...c.honest, c.remover]) for (const id of ids) if ((await room(h, id)) === undefined) return false
    return true
  }, 60_000)
  if (!everywhere) throw new Error('the rooms never reached every host')
  await m.listen()
  await sleep(2000)
  for (const id of ids) await send(c.admin, id, 'alice', `${id === closed ? 'secret' : 'shared'} ${id} before`)
  return { closed, removal, shared }
}

/** Finding 1: a room-create of the closed room's id, by the member, dated a day earlier. */
export async function takeover (m: Attacker, c: RoomsCast, rooms: Rooms): Promise<Outcome> {
  const id = rooms.closed
  const genuine = await entryOf<RoomCreateBody>(m, ROOM_CREATE, id)
  const key = new Uint8Array(randomBytes(32))
  m.own(id, key)
  const hosts = [...c.honest.map((h) => h.peerId), c.remover.peerId, m.id]
  const xwing = await Promise.all(hosts.map(async (h) => await xwingOf(m, h)))
  const keys = await Promise.all(hosts.map(async (host, i) => ({ host, epoch: 0, sealed: await sealEpochKey({ recipientPublicKey: xwing[i], recipientPeerId: host, roomId: id, epoch: 0, key }) })))
  await m.forgeEntry(ROOM_CREATE, { ...genuine.body, kid: keyId(id, 0, key), keys, members: [...genuine.body.members, { host: m.id, agent: 'mallory' }] }, genuine.ts - 86_400_000)
  await m.pull(c.honest.map((h) => h.peerId))
  await sleep(3000)
  // the members keep talking: under the attacker's key, were the room its
  await send(c.admin, id, 'alice', `secret ${id} after the takeover`)
  const delivered = await eventually(async () => (await texts(c.honest[1], id)).includes(`secret ${id} after the takeover`))
  let held = delivered
  for (const h of c.honest) {
    const r = await room(h, id)
    held &&= r !== undefined && r.creator === c.admin.peerId && !r.members.some((x) => x.host === m.id)
  }
  return { attack: 'backdated room-create of an existing room', blocked: held }
}

async function xwingOf (m: Attacker, peer: string): Promise<Uint8Array> {
  for await (const { entry } of m.store.log()) {
    const b = entry.body as { peer?: string, xwing?: Uint8Array, founder?: string }
    if ((entry.kind === 'admit' && b.peer === peer) || (entry.kind === 'genesis' && entry.feed === peer)) {
      if (b.xwing instanceof Uint8Array) return b.xwing
    }
  }
  throw new Error(`the attacker's log has no X-Wing key of ${peer}`)
}

/**
 * Finding 2 and 3: the remover drops the member; the member, past the grace, posts a frame
 * under the old key dated at its removal; the admin then demotes and revokes the remover. The
 * member must stay out, and its frame must reach no agent.
 */
export async function removal (m: Attacker, c: RoomsCast, rooms: Rooms): Promise<Outcome[]> {
  const id = rooms.removal
  await c.remover.json(['room', 'remove', id, `${m.id}:rob`])
  const removed = await eventually(async () => {
    for (const h of c.honest) if ((await room(h, id))?.epoch !== 1) return false
    return true
  }, 60_000)
  if (!removed) throw new Error('the removal never reached the honest hosts')
  const seenAt = Date.now()
  await send(c.admin, id, 'alice', `secret ${id} after the removal`)

  await m.pull(c.honest.map((h) => h.peerId))
  const removalTs = (await entryOf<unknown>(m, ROOM_MEMBER, id)).ts
  const [oldKey] = await m.epochKeys(id)
  if (oldKey === undefined) throw new Error('the attacker never held the removal room\'s first key')
  await sleep(Math.max(0, seenAt + PAST_GRACE_MS - Date.now()))
  const refusedBefore = await refusals(c.honest, id)
  const forged = `forged ${id} backdated into the old epoch`
  await m.publish(id, m.frame(oldKey, { room: id, epoch: 0, ts: removalTs, text: forged }))
  const judged = await eventually(async () => (await refusals(c.honest, id)) > refusedBefore || await anyReads(c.honest, id, forged))
  if (!judged) throw new Error('the backdated frame reached no honest host: the scenario proves nothing')
  const backdatedBlocked = !(await anyReads(c.honest, id, forged))

  await c.admin.json(['grant', c.remover.peerId, '--role', 'host'])
  await send(c.admin, id, 'alice', `secret ${id} after the demotion`)
  await c.admin.json(['revoke', c.remover.peerId, '--reason', 'adversary scenario'])
  await eventually(async () => {
    for (const h of c.honest) {
      const members = await h.json<Array<{ peerId: string, revoked: boolean }>>(['members'])
      if (members.find((x) => x.peerId === c.remover.peerId)?.revoked !== true) return false
    }
    return true
  }, 60_000)
  // the remover held the current key and is out: the admin rekeys, still without the member
  const rekeyed = await eventually(async () => {
    for (const h of c.honest) if (((await room(h, id))?.epoch ?? 0) < 2) return false
    return true
  }, 60_000)
  await send(c.admin, id, 'alice', `secret ${id} after the revoke`)
  const delivered = await eventually(async () => (await texts(c.honest[1], id)).includes(`secret ${id} after the revoke`))
  let out = rekeyed && delivered
  for (const h of c.honest) {
    const r = await room(h, id)
    out &&= r !== undefined && r.epoch >= 2 && !r.members.some((x) => x.host === m.id)
  }
  return [
    { attack: 'removal undone by demoting and revoking the remover', blocked: out },
    { attack: 'removed member posting backdated into the old epoch', blocked: backdatedBlocked }
  ]
}

async function refusals (hosts: FleetHost[], id: string): Promise<number> {
  let n = 0
  for (const h of hosts) n += Object.values((await stats(h, id)).rejected).reduce((a, b) => a + (b ?? 0), 0)
  return n
}

async function anyReads (hosts: FleetHost[], id: string, text: string): Promise<boolean> {
  for (const h of hosts) if ((await texts(h, id)).includes(text)) return true
  return false
}

/** Finding 4, rooms: `2n` history requests to each host as fast as streams open, then `n` frames of ~60 KiB. */
export async function roomFloods (m: Attacker, c: RoomsCast, rooms: Rooms, heap: HeapWatch, n: number): Promise<Outcome[]> {
  const id = rooms.shared
  let everyHostRefused = true
  for (const h of c.honest) {
    // as many requests in flight as a host takes streams of the protocol: the budget must answer
    const answers: string[] = []
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (answers.length < 2 * n) answers.push(await m.fetchHistory(id, h.peerId))
    }))
    const overBudget = answers.filter((a) => a.includes('ROOM_OVER_BUDGET')).length
    process.stderr.write(`adversary: ${h.name} served ${answers.filter((a) => a === 'served').length} of ${answers.length} history requests, ${overBudget} refused over budget\n`)
    everyHostRefused &&= overBudget > 0
  }
  const history = everyHostRefused && heap.maxGrowthMiB <= 64

  const [key] = await m.epochKeys(id)
  if (key === undefined) throw new Error('the attacker holds no key of the room it is in')
  const pad = 'x'.repeat(60 * 1024)
  for (let i = 0; i < n; i++) await m.publish(id, m.frame(key, { room: id, epoch: 0, ts: Date.now(), text: `flood ${i} ${pad}` }))
  await sleep(3000)
  // the room still works for its honest members
  await send(c.admin, rooms.closed, 'alice', `secret ${rooms.closed} after the floods`)
  const alive = await eventually(async () => (await texts(c.honest[1], rooms.closed)).includes(`secret ${rooms.closed} after the floods`), 60_000)
  return [
    { attack: 'room history request flood', blocked: history },
    { attack: 'room frame flood', blocked: alive && heap.maxGrowthMiB <= 64 }
  ]
}
