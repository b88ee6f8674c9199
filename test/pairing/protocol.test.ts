// The pairing protocol between two real libp2p nodes (hybrid encrypter, yamux) in one process:
// what a proof is bound to, what spends an invite, and what the inviter refuses before that.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createInvite, decodeInvite, inviteIdOfSecret, pairingProof, type Invite } from '../../crypto/invite.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import {
  InviteBook, PAIRING_PROTOCOL, PAIRING_PROTOCOLS, PairingBudget, PairingError, requestPairing, servePairing,
  type AdmitRequest, type InviteDb, type InviterContext
} from '../../protocols/pairing/index.js'
import { decodePairing, encodePairing, PAIRING_VERSION } from '../../protocols/pairing/codec.js'

const MESH = 'fleet-0011223344556677'
let inviter: MeshLibp2p
let joiner: MeshLibp2p
let dir: string
let db: Level<string, Uint8Array>
let book: InviteBook
const admits: AdmitRequest[] = []
const logs: Array<Record<string, unknown>> = []
let ctx: InviterContext

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetmesh-pairing-'))
  db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  book = new InviteBook(db.sublevel<string, Uint8Array>('invites', { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as InviteDb)
  inviter = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  joiner = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
  ctx = {
    selfPeerId: inviter.peerId.toString(),
    invites: book,
    attempts: new PairingBudget({ perAddress: { burst: 100, perMinute: 100 }, overall: { burst: 100, perMinute: 100 } }),
    mesh: () => ({ id: MESH, name: 'fleet', founder: inviter.peerId.toString() }),
    isAdmin: () => true,
    isMember: () => false,
    admit: async (req) => { admits.push(req) },
    bootstrap: () => inviter.getMultiaddrs().map(String),
    nowMs: Date.now,
    log: (event, msg) => { logs.push({ ...event, msg }) }
  }
  await inviter.handle(PAIRING_PROTOCOLS, (stream, connection) => { void servePairing(stream, connection, ctx) })
})

after(async () => {
  await joiner.stop()
  await inviter.stop()
  await db.close()
  await rm(dir, { recursive: true, force: true })
})

async function issue (uses = 1): Promise<Invite> {
  const addrs = inviter.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/.*$/, ''))
  const expiresAt = Math.floor(Date.now() / 1000) + 3600
  const made = createInvite({ meshId: MESH, inviterPeerId: inviter.peerId.toString(), founderPeerId: inviter.peerId.toString(), addrs, expiresAt, uses, role: 'host', tags: ['web'] })
  await book.add({ id: made.inviteId, meshId: MESH, proofKey: made.proofKey, role: 'host', tags: ['web'], expiresAt, usesLeft: uses, createdAt: expiresAt - 3600 })
  return decodeInvite(made.code)
}

const xwing = new Uint8Array(1216).fill(9)

async function pair (invite: Invite, selfPeerId = joiner.peerId.toString(), name?: string): Promise<unknown> {
  return requestPairing(invite, {
    selfPeerId,
    xwingPublicKey: xwing,
    ...(name !== undefined ? { name } : {}),
    dial: async (peer, addrs, protocols, signal) => joiner.dialProtocol(addrs.map((a) => multiaddr(`${a}/p2p/${peer}`)), protocols, { signal })
  })
}

const refusedWith = (code: string) => (err: unknown): boolean => {
  assert.ok(err instanceof PairingError, String(err))
  assert.equal(err.code, code, err.message)
  return true
}

/** Opens a raw pairing stream and returns the nonce of the inviter's challenge. */
async function challenge (inviteId: string): Promise<{ nonce: Uint8Array, send: (proof: Uint8Array, name?: string) => Promise<unknown> }> {
  const stream = await joiner.dialProtocol(inviter.getMultiaddrs()[0], PAIRING_PROTOCOL)
  const framed = lpStream(stream)
  await framed.write(encodePairing({ t: 'hello', v: PAIRING_VERSION, mesh: MESH, invite: inviteId }))
  const m = decodePairing((await framed.read()).subarray())
  assert.equal(m.t, 'challenge')
  return {
    nonce: (m as { nonce: Uint8Array }).nonce,
    send: async (proof, name?: string) => {
      await framed.write(encodePairing({ t: 'proof', proof, xwing, ...(name !== undefined ? { name } : {}) }))
      return decodePairing((await framed.read()).subarray())
    }
  }
}

test('a valid code admits the authenticated joiner once and hands back the mesh', async () => {
  const invite = await issue()
  const welcome = await pair(invite) as { mesh: string, founder: string, addrs: string[] }
  assert.equal(welcome.mesh, MESH)
  assert.equal(welcome.founder, inviter.peerId.toString())
  assert.ok(welcome.addrs.length > 0)
  assert.equal(admits.length, 1)
  assert.deepEqual({ ...admits[0], xwing: [...admits[0].xwing].length }, { peer: joiner.peerId.toString(), role: 'host', tags: ['web'], invite: admits[0].invite, xwing: 1216 })
  await assert.rejects(pair(invite), refusedWith('INVITE_USED_UP'))
  assert.equal(admits.length, 1)
})

test('the joiner\'s host name rides in its proof into the admit; a joiner without one still pairs', async () => {
  admits.length = 0
  await pair(await issue(), undefined, 'web-1')
  assert.equal(admits[0]?.name, 'web-1')
  await pair(await issue())
  assert.equal(admits.length, 2)
  assert.ok(!('name' in admits[1]!), 'an old request without a name pairs, and its admit names none')
})

test('a proof with an invalid or oversize host name is refused with NAME_INVALID and spends nothing', async () => {
  const invite = await issue()
  const inviteId = inviteIdOfSecret(invite.secret)
  const before = admits.length
  for (const name of ['web 1', '-web', 'a'.repeat(64), 'a'.repeat(5000)]) {
    const c = await challenge(inviteId)
    const proof = pairingProof(invite.secret, { meshId: MESH, joinerPeerId: joiner.peerId.toString(), inviterPeerId: inviter.peerId.toString(), channelBinding: c.nonce })
    const reply = await c.send(proof, name) as { t: string, code: string, message: string }
    assert.deepEqual([reply.t, reply.code], ['error', 'NAME_INVALID'])
    assert.match(reply.message, /letters, digits/)
  }
  assert.equal(admits.length, before)
  assert.equal((await book.get(inviteId))?.usesLeft, 1, 'no refusal spent a use')
  // the joiner's own side refuses before it dials
  await assert.rejects(pair(invite, undefined, 'no spaces'), refusedWith('NAME_INVALID'))
})

test('a proof is bound to the challenge nonce: replaying it on a new attempt fails', async () => {
  const invite = await issue()
  const inviteId = inviteIdOfSecret(invite.secret)
  const first = await challenge(inviteId)
  const captured = pairingProof(invite.secret, { meshId: MESH, joinerPeerId: joiner.peerId.toString(), inviterPeerId: inviter.peerId.toString(), channelBinding: first.nonce })
  const second = await challenge(inviteId)
  assert.notDeepEqual(second.nonce, first.nonce)
  assert.deepEqual(await second.send(captured), { t: 'error', code: 'PROOF_INVALID', message: 'the pairing proof does not match the invite (wrong secret)' })
  assert.equal((await book.get(inviteId))?.usesLeft, 1, 'the failed attempt spent nothing')
  // The same captured proof, answered to the challenge it was made for, is good.
  assert.equal((await first.send(captured) as { t: string }).t, 'welcome')
})

test('a proof is bound to the joiner\'s authenticated peer id', async () => {
  const invite = await issue()
  const other = (await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] }))
  try {
    // The joiner computes its proof as if it were another peer: the inviter binds the proof to
    // the id the hybrid handshake authenticated, so it does not match.
    await assert.rejects(pair(invite, other.peerId.toString()), refusedWith('PROOF_INVALID'))
  } finally {
    await other.stop()
  }
})

test('the inviter refuses before any challenge: wrong mesh, not an admin, rate-limited; a member is welcomed again', async () => {
  const invite = await issue(10)
  // A stranger with a code for another mesh learns "no", not which mesh this host is in.
  await assert.rejects(pair({ ...invite, meshId: 'other-mesh' }), (err: unknown) => refusedWith('WRONG_MESH')(err) && !(err as Error).message.includes(MESH))
  const saved = { ...ctx }
  try {
    ctx.isAdmin = () => false
    await assert.rejects(pair(invite), refusedWith('INVITER_NOT_ADMIN'))
    ctx.isAdmin = saved.isAdmin
    ctx.isMember = (peer) => peer === joiner.peerId.toString()
    const again = await pair(invite) as { t: string, mesh: string }
    assert.deepEqual([again.t, again.mesh], ['welcome', MESH])
    ctx.isMember = saved.isMember
    ctx.attempts = new PairingBudget({ perAddress: { burst: 1, perMinute: 1 }, overall: { burst: 100, perMinute: 100 } })
    await assert.rejects(pair({ ...invite, meshId: 'other-mesh' }), refusedWith('WRONG_MESH'))
    await assert.rejects(pair(invite), refusedWith('RATE_LIMITED'))
  } finally {
    Object.assign(ctx, saved)
  }
  const id = (await book.list()).find((r) => r.usesLeft === 10)
  assert.ok(id !== undefined, 'no refusal spent a use')
  for (const code of ['WRONG_MESH', 'INVITER_NOT_ADMIN', 'RATE_LIMITED']) {
    assert.ok(logs.some((l) => l.code === code && l.peer === joiner.peerId.toString()), `the inviter logged ${code}`)
  }
  assert.ok(logs.some((l) => l.msg === 'pairing: member welcomed again'), 'the inviter logged the second welcome')
})

test('an inviter whose store fails tells the joiner only that pairing failed, and keeps the use', async () => {
  const invite = await issue()
  const saved = ctx.admit
  ctx.admit = async () => { throw new Error('disk full at /var/lib/secret-path') }
  try {
    await assert.rejects(pair(invite), (err: unknown) => refusedWith('PAIRING_FAILED')(err) && !(err as Error).message.includes('secret-path'))
  } finally {
    ctx.admit = saved
  }
  assert.equal((await book.get(inviteIdOfSecret(invite.secret)))?.usesLeft, 1)
  assert.equal((await pair(invite) as { t: string }).t, 'welcome')
})

test('revoked and expired invites refuse pairing with their own codes, and spend nothing', async () => {
  const invite = await issue(2)
  const id = inviteIdOfSecret(invite.secret)
  await book.revoke(id, Math.floor(Date.now() / 1000))
  await assert.rejects(pair(invite), refusedWith('INVITE_REVOKED'))
  const expired = await issue(2)
  const expiredId = inviteIdOfSecret(expired.secret)
  const saved = ctx.nowMs
  ctx.nowMs = () => ((expired.expiresAt + 1) * 1000)
  try {
    await assert.rejects(pair(expired), refusedWith('INVITE_EXPIRED'))
  } finally {
    ctx.nowMs = saved
  }
  assert.deepEqual([(await book.get(id))?.usesLeft, (await book.get(expiredId))?.usesLeft], [2, 2])
  assert.ok(!admits.some((a) => a.invite === id || a.invite === expiredId))
})

/**
 * An inviter that answers the joiner's hello with whatever `reply` returns, on a protocol of its
 * own; `pair` runs the real joiner against it with `invite`.
 */
async function rogueInviter (protocol: string, reply: (hello: { mesh: string }) => Record<string, unknown>): Promise<{ pair: (invite: Invite) => Promise<unknown>, [Symbol.asyncDispose]: () => Promise<void> }> {
  await inviter.handle(protocol, async (stream) => {
    const lp = lpStream(stream)
    const hello = decodePairing((await lp.read()).subarray()) as { mesh: string }
    await lp.write(encodePairing(reply(hello) as never))
    await stream.close().catch(() => {})
  })
  return {
    pair: async (invite) => requestPairing(invite, {
      selfPeerId: joiner.peerId.toString(),
      xwingPublicKey: xwing,
      dial: async (peer, addrs, _offered, signal) => joiner.dialProtocol(addrs.map((a) => multiaddr(`${a}/p2p/${peer}`)), protocol, { signal })
    }),
    [Symbol.asyncDispose]: async () => { await inviter.unhandle(protocol) }
  }
}

test('the joiner refuses a welcome for another mesh than its invite names, however the inviter sends it', async () => {
  const invite = await issue()
  let answer: (hello: { mesh: string }) => Record<string, unknown> = () => ({})
  await using rogue = await rogueInviter('/fleetmesh-test/rogue-inviter/1.0.0', (hello) => answer(hello))
  const founder = inviter.peerId.toString()
  for (const lie of [
    { t: 'welcome', mesh: 'evil-0011223344556677', name: 'evil', founder, addrs: [] },
    { t: 'welcome', mesh: MESH, name: 'other', founder, addrs: [] },
    { t: 'welcome', mesh: MESH, name: 'fleet', founder: 'not-a-peer-id', addrs: [] }
  ]) {
    answer = () => lie
    await assert.rejects(rogue.pair(invite), refusedWith('WELCOME_MISMATCH'))
  }
  // The honest answer to the same code passes the same check.
  answer = (hello) => ({ t: 'welcome', mesh: hello.mesh, name: 'fleet', founder, addrs: [] })
  assert.equal((await rogue.pair(invite) as { mesh: string }).mesh, MESH)
})

test('a welcome naming another founder is refused', async () => {
  const invite = await issue()
  // The rogue answers for the right mesh, but pins the joiner's genesis to a founder of its own.
  let founder = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  await using rogue = await rogueInviter('/fleetmesh-test/rogue-founder/1.0.0', (hello) => ({ t: 'welcome', mesh: hello.mesh, name: 'fleet', founder, addrs: [] }))
  await assert.rejects(rogue.pair(invite), refusedWith('WELCOME_MISMATCH'))
  // the founder the code names passes the same check
  founder = inviter.peerId.toString()
  assert.equal((await rogue.pair(invite) as { founder: string }).founder, founder)
})

test('past the overall pairing budget every attempt is refused before a challenge, and spends nothing', async () => {
  const invite = await issue(5)
  const saved = ctx.attempts
  ctx.attempts = new PairingBudget({ perAddress: { burst: 100, perMinute: 100 }, overall: { burst: 2, perMinute: 1 } })
  try {
    await assert.rejects(pair({ ...invite, meshId: 'other-mesh' }), refusedWith('WRONG_MESH'))
    await assert.rejects(pair({ ...invite, meshId: 'other-mesh' }), refusedWith('WRONG_MESH'))
    await assert.rejects(pair(invite), refusedWith('RATE_LIMITED'))
  } finally {
    ctx.attempts = saved
  }
  assert.equal((await book.get(inviteIdOfSecret(invite.secret)))?.usesLeft, 5)
})
