// Pairing against a real daemon process by an attacker on the network: what a stolen copy of
// the inviter's database, a revoked or expired invite, or a lying inviter gets it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { chmod, mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { decodeInvite, pairingProof, type PairingContext } from '../../crypto/invite.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { decodeCanonical, encodeCanonical } from '../../protocols/canonical.js'
import { PAIRING_PROTOCOL, requestPairing } from '../../protocols/pairing/index.js'
import { PAIRING_VERSION } from '../../protocols/pairing/codec.js'
import { HostProcess, runCli, tempDir } from '../../simulations/harness/processes.js'

const XWING = new Uint8Array(1216).fill(7)

async function founder (): Promise<{ dir: string, host: HostProcess, mesh: string }> {
  const dir = join(await tempDir(), 'a')
  const init = await runCli(['--data-dir', dir, 'init', '--mesh', 'hygiene', '--json'])
  assert.equal(init.code, 0, init.stderr)
  return { dir, host: await HostProcess.start(dir), mesh: (JSON.parse(init.stdout) as { mesh: { id: string } }).mesh.id }
}

async function stranger (): Promise<MeshLibp2p> {
  return createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
}

/** Every value of the inviter's `invites` sublevel, decoded: what a reader of db/ holds. */
async function stolenRecords (dataDir: string): Promise<Array<Record<string, unknown>>> {
  const db = new Level<string, Uint8Array>(join(dataDir, 'db'), { valueEncoding: 'view' })
  await db.open()
  try {
    const out: Array<Record<string, unknown>> = []
    for await (const v of db.sublevel<string, Uint8Array>('invites', { keyEncoding: 'utf8', valueEncoding: 'view' }).values()) {
      out.push(decodeCanonical(v, 1 << 16) as Record<string, unknown>)
    }
    return out
  } finally {
    await db.close()
  }
}

/** The proof shape of the first pairing version: an HMAC keyed by what the inviter stored. */
function hmacProof (key: Uint8Array, ctx: PairingContext): Uint8Array {
  const mac = createHmac('sha256', key)
  const text = ['fleetmesh pairing proof v1', ctx.meshId, ctx.joinerPeerId, ctx.inviterPeerId].map((f) => new TextEncoder().encode(f))
  for (const field of [...text, ctx.channelBinding]) {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(field.length)
    mac.update(len)
    mac.update(field)
  }
  return new Uint8Array(mac.digest())
}

/** One raw pairing attempt: hello with the stored invite id, then `forge(nonce)` as the proof. */
async function attempt (attacker: MeshLibp2p, target: string, mesh: string, inviteId: string, forge: (nonce: Uint8Array) => Uint8Array): Promise<Record<string, unknown>> {
  const stream = await attacker.dialProtocol(multiaddr(target), PAIRING_PROTOCOL)
  const lp = lpStream(stream)
  const read = async (): Promise<Record<string, unknown>> => decodeCanonical((await lp.read()).subarray(), 1 << 16) as Record<string, unknown>
  try {
    await lp.write(encodeCanonical({ t: 'hello', v: PAIRING_VERSION, mesh, invite: inviteId }))
    const challenge = await read()
    if (challenge.t !== 'challenge') return challenge
    await lp.write(encodeCanonical({ t: 'proof', proof: forge(challenge.nonce as Uint8Array), xwing: XWING }))
    return await read()
  } catch (err) {
    return { t: 'closed', message: (err as Error).message }
  } finally {
    await stream.close().catch(() => {})
  }
}

test('a reader of every stored invite record cannot pair; the code itself still can', { timeout: 180_000 }, async () => {
  const { dir, host, mesh } = await founder()
  let a = host
  const attacker = await stranger()
  try {
    const code = (await a.cli(['invite', '--uses', '5'])).stdout.trim()
    assert.match(code, /^fm\d+-/)
    // The attacker copies the database while the daemon is down (it holds LevelDB's lock).
    await a.stop()
    const records = await stolenRecords(dir)
    assert.equal(records.length, 1)
    a = await HostProcess.start(dir)
    const target = a.addresses[0]!
    for (const record of records) {
      const keys = Object.values(record).filter((v): v is Uint8Array => v instanceof Uint8Array)
      assert.ok(keys.length > 0, 'the record holds key material')
      for (const key of keys) {
        const ctx = (nonce: Uint8Array): PairingContext => ({ meshId: mesh, joinerPeerId: attacker.peerId.toString(), inviterPeerId: a.peerId, channelBinding: nonce })
        const forged = [
          (nonce: Uint8Array) => hmacProof(key, ctx(nonce)),
          // The stored bytes used as though they were the secret of the code.
          (nonce: Uint8Array) => pairingProof(key, ctx(nonce))
        ]
        for (const forge of forged) {
          const reply = await attempt(attacker, target, mesh, record.id as string, forge)
          assert.notEqual(reply.t, 'welcome', `a forged proof was accepted: ${JSON.stringify(reply)}`)
        }
      }
    }
    const members = JSON.parse((await a.cli(['members', '--json'])).stdout) as Array<{ peerId: string }>
    assert.ok(!members.some((m) => m.peerId === attacker.peerId.toString()), 'the attacker is not a member')

    // The same attacker with the real code pairs: the attempts above reached a working inviter.
    const welcome = await requestPairing(decodeInvite(code), {
      selfPeerId: attacker.peerId.toString(),
      xwingPublicKey: XWING,
      dial: async (peer, addrs, protocols, signal) => attacker.dialProtocol(addrs.map((x) => multiaddr(`${x}/p2p/${peer}`)), protocols, { signal })
    })
    assert.equal(welcome.mesh, mesh)
  } finally {
    await attacker.stop()
    await a.stop()
  }
})

test('init tightens an existing data dir to 0700; start refuses one others can enter, in one line', { timeout: 120_000 }, async () => {
  const dir = join(await tempDir(), 'a')
  await mkdir(dir, { mode: 0o755 })
  await chmod(dir, 0o755)
  assert.equal((await runCli(['--data-dir', dir, 'init'])).code, 0)
  assert.equal((await stat(dir)).mode & 0o777, 0o700)

  for (const mode of [0o750, 0o705]) {
    await chmod(dir, mode)
    const r = await runCli(['--data-dir', dir, 'start'])
    assert.equal(r.code, 1, r.stdout)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0]!, /data dir .* is accessible by other users.*chmod 700/)
  }
  await chmod(dir, 0o700)
  const ok = await HostProcess.start(dir)
  assert.equal(await ok.stop(), 0)
})

test('invite list and revoke through the CLI; a revoked or expired code is refused with its reason; TTL has a maximum', { timeout: 240_000 }, async () => {
  const { host: a } = await founder()
  const dirB = join(await tempDir(), 'b')
  assert.equal((await runCli(['--data-dir', dirB, 'init'])).code, 0)
  const b = await HostProcess.start(dirB)
  try {
    const tooLong = await a.cli(['invite', '--ttl', '8d'])
    assert.notEqual(tooLong.code, 0)
    assert.match(tooLong.stderr, /7 days/)

    const issue = async (ttl: string): Promise<{ code: string, inviteId: string }> => {
      const r = await a.cli(['invite', '--ttl', ttl, '--json'])
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout) as { code: string, inviteId: string }
    }
    const revoked = await issue('1h')
    const expired = await issue('1s')
    const list = async (): Promise<Array<{ inviteId: string, state: string }>> => JSON.parse((await a.cli(['invite', 'list', '--json'])).stdout) as Array<{ inviteId: string, state: string }>
    assert.deepEqual((await list()).map((r) => r.inviteId).sort(), [revoked.inviteId, expired.inviteId].sort())

    const r = await a.cli(['invite', 'revoke', revoked.inviteId])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`revoked invite ${revoked.inviteId}`))
    assert.notEqual((await a.cli(['invite', 'revoke', 'f'.repeat(32)])).code, 0)

    const joinRevoked = await b.cli(['join', revoked.code])
    assert.equal(joinRevoked.code, 5, joinRevoked.stderr)
    assert.match(joinRevoked.stderr, /INVITE_REVOKED/)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const joinExpired = await b.cli(['join', expired.code])
    assert.equal(joinExpired.code, 5, joinExpired.stderr)
    assert.match(joinExpired.stderr, /INVITE_EXPIRED/)

    const states = new Map((await list()).map((x) => [x.inviteId, x.state]))
    assert.deepEqual([states.get(revoked.inviteId), states.get(expired.inviteId)], ['revoked', 'expired'])
    const human = (await a.cli(['invite', 'list'])).stdout
    assert.match(human, new RegExp(`${revoked.inviteId}\\s+revoked`))
  } finally {
    await b.stop()
    await a.stop()
  }
})

test('a store holding invite records of the first format still lists, refuses them for pairing, and revokes them', { timeout: 180_000 }, async () => {
  const { dir, host, mesh } = await founder()
  let a = host
  const attacker = await stranger()
  try {
    const current = JSON.parse((await a.cli(['invite', '--json'])).stdout) as { inviteId: string }
    // what the first pairing version stored: the hash that keyed its HMAC proof
    await a.stop()
    const secretHash = new Uint8Array(32).fill(3)
    const old = { id: 'c'.repeat(32), meshId: mesh, secretHash, role: 'host', tags: [], expiresAt: Math.floor(Date.now() / 1000) + 3600, usesLeft: 1, createdAt: Math.floor(Date.now() / 1000) }
    const db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
    await db.open()
    await db.sublevel<string, Uint8Array>('invites', { keyEncoding: 'utf8', valueEncoding: 'view' }).put(old.id, encodeCanonical(old))
    await db.close()
    a = await HostProcess.start(dir)

    const listed = await a.cli(['invite', 'list', '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    const states = new Map((JSON.parse(listed.stdout) as Array<{ inviteId: string, state: string }>).map((x) => [x.inviteId, x.state]))
    assert.deepEqual([states.get(current.inviteId), states.get(old.id)], ['open', 'unusable'])
    // the first version's proof, keyed by the stored hash (twice, to the 64 bytes the wire now carries), gets nothing
    const reply = await attempt(attacker, a.addresses[0]!, mesh, old.id, (nonce) => {
      const mac = hmacProof(secretHash, { meshId: mesh, joinerPeerId: attacker.peerId.toString(), inviterPeerId: a.peerId, channelBinding: nonce })
      return new Uint8Array([...mac, ...mac])
    })
    assert.equal(reply.code, 'INVITE_REVOKED', JSON.stringify(reply))
    const revoked = await a.cli(['invite', 'revoke', old.id])
    assert.equal(revoked.code, 0, revoked.stderr)
    assert.match((await a.cli(['invite', 'list'])).stdout, new RegExp(`${old.id}\\s+revoked`))
  } finally {
    await attacker.stop()
    await a.stop()
  }
})
