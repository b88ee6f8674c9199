// Pairing across releases, between real libp2p nodes: while a fleet is upgraded host by host, a
// joiner of this release meets inviters of the release before host names (pairing-2.0/, that
// release's code, frozen) and inviters of this one meet joiners of the old one. Each pair must
// still admit the host; only an inviter that takes a name hears it.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createInvite, decodeInvite, inviteIdOfSecret, pairingProof, type Invite } from '../../crypto/invite.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { InviteBook, PAIRING_PROTOCOLS, PairingBudget, requestPairing, servePairing, type AdmitRequest, type InviteDb, type InviterContext, type Paired } from '../../protocols/pairing/index.js'
import * as v2 from './pairing-2.0/protocol.js'
import { decodePairing as decodeV2, encodePairing as encodeV2 } from './pairing-2.0/codec.js'

const MESH = 'fleet-0011223344556677'
const xwing = new Uint8Array(1216).fill(9)
let dir: string
let db: Level<string, Uint8Array>
let joiner: MeshLibp2p

interface Inviter { node: MeshLibp2p, book: InviteBook, admits: AdmitRequest[], refusals: string[] }
let oldInviter: Inviter
let newInviter: Inviter

async function inviter (label: string): Promise<Inviter> {
  const node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const book = new InviteBook(db.sublevel<string, Uint8Array>(label, { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as InviteDb)
  return { node, book, admits: [], refusals: [] }
}

/** What an inviter of either release is given (the old one's admit requests lack only `name`). */
function context (i: Inviter): InviterContext {
  const self = i.node.peerId.toString()
  return {
    selfPeerId: self,
    invites: i.book,
    attempts: new PairingBudget({ perAddress: { burst: 100, perMinute: 100 }, overall: { burst: 100, perMinute: 100 } }),
    mesh: () => ({ id: MESH, name: 'fleet', founder: self }),
    isAdmin: () => true,
    isMember: () => false,
    admit: async (req) => { i.admits.push(req) },
    bootstrap: () => i.node.getMultiaddrs().map(String),
    nowMs: Date.now,
    log: (event, msg) => { if (msg === 'pairing: refused') i.refusals.push(String(event.code)) }
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetmesh-pairing-compat-'))
  db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  oldInviter = await inviter('old')
  newInviter = await inviter('new')
  joiner = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
  await oldInviter.node.handle(v2.PAIRING_PROTOCOL, (stream, connection) => { void v2.servePairing(stream, connection, context(oldInviter)) })
  await newInviter.node.handle(PAIRING_PROTOCOLS, (stream, connection) => { void servePairing(stream, connection, context(newInviter)) })
})

after(async () => {
  for (const n of [joiner, oldInviter.node, newInviter.node]) await n.stop()
  await db.close()
  await rm(dir, { recursive: true, force: true })
})

async function issue (i: Inviter): Promise<Invite> {
  const peer = i.node.peerId.toString()
  const addrs = i.node.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/.*$/, ''))
  const expiresAt = Math.floor(Date.now() / 1000) + 3600
  const made = createInvite({ meshId: MESH, inviterPeerId: peer, founderPeerId: peer, addrs, expiresAt, uses: 1, role: 'host', tags: ['web'] })
  await i.book.add({ id: made.inviteId, meshId: MESH, proofKey: made.proofKey, role: 'host', tags: ['web'], expiresAt, usesLeft: 1, createdAt: expiresAt - 3600 })
  return decodeInvite(made.code)
}

const targets = (peer: string, addrs: string[]): ReturnType<typeof multiaddr>[] => addrs.map((a) => multiaddr(`${a}/p2p/${peer}`))

/** The joiner of this release, as node/pairing.ts runs it. */
async function joinNow (invite: Invite, name?: string): Promise<Paired> {
  return requestPairing(invite, {
    selfPeerId: joiner.peerId.toString(),
    xwingPublicKey: xwing,
    ...(name !== undefined ? { name } : {}),
    dial: async (peer, addrs, protocols, signal) => joiner.dialProtocol(targets(peer, addrs), protocols, { signal })
  })
}

test('an inviter of the release before names refuses a proof that names the host, and spends nothing', async () => {
  // What a joiner sending its name over 2.0.0 gets: the old decoder refuses the unknown field.
  const invite = await issue(oldInviter)
  const id = inviteIdOfSecret(invite.secret)
  const lp = lpStream(await joiner.dialProtocol(targets(oldInviter.node.peerId.toString(), invite.addrs), v2.PAIRING_PROTOCOL))
  await lp.write(encodeV2({ t: 'hello', v: 2, mesh: MESH, invite: id }))
  const challenge = decodeV2((await lp.read()).subarray())
  assert.equal(challenge.t, 'challenge')
  const proof = pairingProof(invite.secret, { meshId: MESH, joinerPeerId: joiner.peerId.toString(), inviterPeerId: invite.inviterPeerId, channelBinding: (challenge as { nonce: Uint8Array }).nonce })
  await lp.write(encodeV2({ t: 'proof', proof, xwing, name: 'web-1' } as never))
  await assert.rejects(lp.read())
  assert.deepEqual(oldInviter.refusals, ['PAIRING_MALFORMED'])
  assert.equal((await oldInviter.book.get(id))?.usesLeft, 1)
  assert.equal(oldInviter.admits.length, 0)
})

test('a joiner of this release pairs with an inviter from before names, leaving its name out', async () => {
  const welcome = await joinNow(await issue(oldInviter), 'web-1')
  assert.equal(welcome.mesh, MESH)
  assert.equal(welcome.nameLeftOut, true)
  assert.deepEqual(oldInviter.admits.map((a) => [a.peer, a.tags, 'name' in a]), [[joiner.peerId.toString(), ['web'], false]])
})

test('a joiner of this release names itself to an inviter of this release', async () => {
  const welcome = await joinNow(await issue(newInviter), 'web-1')
  assert.equal(welcome.nameLeftOut, false)
  assert.equal(newInviter.admits.at(-1)?.name, 'web-1')
})

test('a joiner from before names pairs with an inviter of this release', async () => {
  const invite = await issue(newInviter)
  const welcome = await v2.requestPairing(invite, {
    selfPeerId: joiner.peerId.toString(),
    xwingPublicKey: xwing,
    dial: async (peer, addrs, signal) => joiner.dialProtocol(targets(peer, addrs), v2.PAIRING_PROTOCOL, { signal })
  })
  assert.equal(welcome.mesh, MESH)
  const admit = newInviter.admits.at(-1)
  assert.equal(admit?.invite, inviteIdOfSecret(invite.secret))
  assert.ok(admit !== undefined && !('name' in admit), 'its admission names no host')
  assert.deepEqual(newInviter.refusals, [])
})
