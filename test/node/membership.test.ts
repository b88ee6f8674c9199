// Membership by invite code, proven with real daemon processes over loopback libp2p: joins
// through two inviters, every way a join is refused (with no admit entry anywhere), a stranger
// with a valid hybrid identity kept out of sync and gossip and hung up on at its deadline, a
// revoked host cut off by every member, and a concurrent admit and revoke that every host
// resolves the same way. One fleet serves the whole file, so the steps run in order. What the
// steps poll (members, peers, the log) is read over the control API; the CLI runs where its own
// behaviour is checked (invite, join and its refusals, revoke).
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { pino } from 'pino'
import { lpStream } from '@libp2p/utils'
import * as lp from 'it-length-prefixed'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { HostProcess, runCli, type CliResult } from '../../simulations/harness/processes.js'
import { auditLog, memberRows, peerRows } from '../../simulations/harness/queries.js'
import { freePort } from '../fixtures/nix/fixtures.js'
import { createIdentity, type HostIdentity } from '../../crypto/identity.js'
import { decodeInvite, encodeInvite } from '../../crypto/invite.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { openAuditStore } from '../../node/store.js'
import { withOfflineStore } from '../../node/offline.js'
import type { MemberRow } from '../../node/routes.js'
import { AuditSync, HEADS_TOPIC, SYNC_PROTOCOL, type AuditStore } from '../../protocols/audit/index.js'
import { encodeRequest } from '../../protocols/audit/wire.js'
import { PAIRING_PROTOCOL } from '../../protocols/pairing/index.js'
import { decodePairing, encodePairing, PAIRING_VERSION } from '../../protocols/pairing/codec.js'

const WAIT_MS = 45_000

interface IssuedInvite { code: string, inviteId: string }
interface LogLine { msg: string, code?: string, peer?: string, invite?: string }

/** The inviter's own account of pairing: its pino lines on stderr. */
function logLines (host: FleetHost): LogLine[] {
  return (host.process?.stderr ?? '').split('\n').flatMap((l) => {
    try { return [JSON.parse(l) as LogLine] } catch { return [] }
  })
}

/** Log lines come through a pipe, so they may trail the network reply they go with. */
async function logged (host: FleetHost, what: string, match: (l: LogLine) => boolean): Promise<LogLine> {
  const until = Date.now() + 10_000
  for (;;) {
    const line = logLines(host).find(match)
    if (line !== undefined) return line
    if (Date.now() > until) throw new Error(`${host.name} never logged ${what}`)
    await sleep(100)
  }
}

async function refusalLogged (host: FleetHost, code: string): Promise<LogLine> {
  return logged(host, `a ${code} refusal`, (l) => l.msg === 'pairing: refused' && l.code === code)
}

async function admitted (host: FleetHost): Promise<string[]> {
  return (await auditLog(host, { kind: 'admit' })).map((e) => (e.body as { peer: string }).peer)
}

async function feedEntries (host: FleetHost, feed: string): Promise<number> {
  return (await auditLog(host, { feed })).length
}

/** A join must fail with exit 5 and exactly one line naming its code. */
function assertRefused (r: CliResult, code: string): void {
  assert.equal(r.code, 5, `expected exit 5 for ${code}, got ${r.code}: ${r.stdout}${r.stderr}`)
  const lines = r.stderr.trim().split('\n')
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`)
  assert.match(lines[0], new RegExp(`join refused \\(${code}\\)`))
}

/** members --json minus what legitimately differs per host (who is connected to whom). */
async function memberSet (host: FleetHost): Promise<string> {
  const rows = await memberRows(host)
  return JSON.stringify(rows.map(({ peerId, role, tags, admittedBy, admittedAt, revoked }) => ({ peerId, role, tags, admittedBy, admittedAt, revoked }))
    .sort((x, y) => x.peerId.localeCompare(y.peerId)))
}

async function connectedTo (host: FleetHost, peer: string): Promise<boolean> {
  return (await peerRows(host)).some((p) => p.peerId === peer)
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** A peer with a valid hybrid identity and the real store and sync, but never admitted. */
interface Stranger { identity: HostIdentity, libp2p: MeshLibp2p, db: Level<string, Uint8Array>, store: AuditStore, sync: AuditSync }

async function startStranger (dir: string): Promise<Stranger> {
  await mkdir(dir, { recursive: true })
  const identity = await createIdentity(join(dir, 'identity.json'))
  const libp2p = await createMeshLibp2p({ privateKey: identity.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  const store = await openAuditStore(db, identity)
  // It replicates with anyone: only the members' gate can keep its entries out.
  const sync = new AuditSync({ libp2p, store, logger: pino({ level: 'silent' }) })
  await sync.start()
  return { identity, libp2p, db, store, sync }
}

async function stopStranger (s: Stranger): Promise<void> {
  await s.sync.stop()
  await s.libp2p.stop()
  await s.store.close()
  await s.db.close()
}

/** Speaks the pairing protocol by hand: a hello naming a real invite, then a made-up proof. */
async function forgeProof (s: Stranger, inviter: string, meshId: string, inviteId: string): Promise<unknown> {
  const stream = await s.libp2p.dialProtocol(multiaddr(inviter), PAIRING_PROTOCOL)
  const framed = lpStream(stream)
  await framed.write(encodePairing({ t: 'hello', v: PAIRING_VERSION, mesh: meshId, invite: inviteId }))
  const challenge = decodePairing((await framed.read()).subarray())
  assert.equal(challenge.t, 'challenge', `the inviter challenged: ${JSON.stringify(challenge)}`)
  await framed.write(encodePairing({ t: 'proof', proof: new Uint8Array(randomBytes(64)), xwing: s.identity.xwingPublicKey }))
  const reply = decodePairing((await framed.read()).subarray())
  await stream.close().catch(() => {})
  return reply
}

/** Opens a sync stream, asks for heads, and returns every byte the member sent back. */
async function trySync (s: { libp2p: MeshLibp2p }, member: string): Promise<number> {
  let received = 0
  try {
    const stream = await s.libp2p.dialProtocol(multiaddr(member), SYNC_PROTOCOL)
    stream.send(lp.encode.single(encodeRequest({ t: 'heads' })))
    for await (const chunk of stream) received += chunk.byteLength
  } catch { /* a refusal may surface as a reset: what counts is that nothing came back */ }
  return received
}

describe('membership by invite code across real processes', { timeout: 10 * 60_000 }, () => {
  let fleet: Fleet
  let a: FleetHost, b: FleetHost, c: FleetHost, d: FleetHost, x: FleetHost
  let meshId: string
  /** d's single-use code from b, spent by d */
  let spent: IssuedInvite
  /** a two-use code from a: refused attempts must not spend it; x joins with it */
  let twoUse: IssuedInvite
  let stranger: Stranger | undefined
  const members = (): FleetHost[] => [a, b, c, d]
  const joinX = async (code: string): Promise<CliResult> => x.cli(['join', code])
  // Each step builds on the last: after a failure the rest would only fail confusingly.
  let failed = false
  const step = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    test(name, async (t) => {
      if (failed) return t.skip('an earlier step failed')
      try { await fn(t) } catch (err) { failed = true; throw err }
    })
  }

  before(async () => {
    fleet = await Fleet.create({
      hosts: [{ name: 'a', role: 'admin' }, { name: 'b', role: 'admin' }, { name: 'c', tags: ['web'] }, { name: 'd', tags: ['db'] }, { name: 'x' }]
    })
    ;[a, b, c, d, x] = ['a', 'b', 'c', 'd', 'x'].map((n) => fleet.host(n))
  })

  after(async () => {
    if (stranger !== undefined) await stopStranger(stranger)
    await fleet.close()
  })

  step('three hosts join through codes from two inviters and see each other as members', async () => {
    await fleet.start('a')
    const join = async (host: FleetHost, inviter: FleetHost, args: string[]): Promise<IssuedInvite> => {
      const inv = await inviter.json<IssuedInvite>(['invite', ...args])
      await fleet.start(host.name)
      assert.equal((await host.json<{ admitted: boolean }>(['join', inv.code])).admitted, true, `${host.name} is admitted`)
      return inv
    }
    await join(b, a, ['--role', 'admin'])
    await join(c, b, ['--tag', 'web'])
    spent = await join(d, b, ['--tag', 'db'])
    await fleet.waitFor('every host to list four members', async () => {
      for (const h of members()) if ((await memberRows(h)).length < 4) return false
      return true
    }, WAIT_MS)
    meshId = (await a.json<{ mesh: { id: string } }>(['status'])).mesh.id
    const expected = await memberSet(a)
    for (const h of [b, c, d]) assert.equal(await memberSet(h), expected, `${h.name} sees the same members as a`)
    const rows = await memberRows(a)
    const row = (h: FleetHost): MemberRow => rows.find((r) => r.peerId === h.peerId)!
    assert.deepEqual([row(a).role, row(b).role, row(c).role, row(d).role], ['admin', 'admin', 'host', 'host'])
    assert.deepEqual([row(b).admittedBy, row(c).admittedBy, row(d).admittedBy], [a.peerId, b.peerId, b.peerId])
    assert.deepEqual([row(c).tags, row(d).tags], [['web'], ['db']])
    for (const h of members()) assert.deepEqual((await admitted(h)).sort(), [b.peerId, c.peerId, d.peerId].sort())
  })

  step('invites and their use counts survive an inviter restart', async () => {
    twoUse = await a.json<IssuedInvite>(['invite', '--uses', '2'])
    // Restarted on the same address, as an operator's fixed listen port would be: the code
    // names that address.
    for (const h of [a, b]) {
      const listen = h.address.replace(/\/p2p\/.*$/, '')
      await fleet.stop(h.name)
      h.process = await HostProcess.start(h.dataDir, ['--listen', listen, ...members().filter((o) => o.online).flatMap((o) => ['--bootstrap', o.address])])
    }
    // No bootstrap: x is a stranger that must get everywhere through its codes alone.
    x.process = await HostProcess.start(x.dataDir)
    assertRefused(await joinX(spent.code), 'INVITE_USED_UP')
    await refusalLogged(b, 'INVITE_USED_UP')
  })

  step('every bad code is refused with its own error and a log line on the inviter', async () => {
    const expiring = await a.json<IssuedInvite>(['invite', '--ttl', '1s'])
    const expiresBy = Date.now() + 1000
    const real = decodeInvite(twoUse.code)

    const typo = twoUse.code.slice(0, 40) + (twoUse.code[40] === 'a' ? 'b' : 'a') + twoUse.code.slice(41)
    assertRefused(await joinX(typo), 'INVITE_TYPO')

    assertRefused(await joinX(encodeInvite({ ...real, meshId: `other-${meshId}` })), 'WRONG_MESH')
    await refusalLogged(a, 'WRONG_MESH')

    // A well-formed code naming b, with a secret b never issued.
    const bReal = decodeInvite(spent.code)
    assertRefused(await joinX(encodeInvite({ ...bReal, secret: new Uint8Array(randomBytes(32)) })), 'INVITE_UNKNOWN')
    await refusalLogged(b, 'INVITE_UNKNOWN')

    // An inviter nobody runs (x holds a connection to a by now, which any address of a's would reuse).
    const nobody = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const closed = await freePort()
    assertRefused(await joinX(encodeInvite({ ...real, inviterPeerId: nobody, addrs: [`/ip4/127.0.0.1/tcp/${closed}`] })), 'INVITER_UNREACHABLE')

    await sleep(Math.max(0, expiresBy + 500 - Date.now())) // past the one-second ttl, whatever the joins above took
    assertRefused(await joinX(expiring.code), 'INVITE_EXPIRED')
    await refusalLogged(a, 'INVITE_EXPIRED')

    for (const h of members()) assert.ok(!(await admitted(h)).includes(x.peerId), `no admit of x on ${h.name}`)
  })

  step('a stranger with a valid hybrid identity gets no sync, no gossip, and is hung up on at its deadline', async () => {
    const s = stranger = await startStranger(join(fleet.dir, 'stranger'))
    const self = s.identity.peerId.toString()
    const heard: string[] = []
    s.libp2p.services.pubsub.addEventListener('message', (evt) => { if (evt.detail.topic === HEADS_TOPIC) heard.push(evt.detail.topic) })
    const aAddr = a.address

    // A hello naming a real invite, then a proof made without its secret.
    const reply = await forgeProof(s, aAddr, meshId, twoUse.inviteId) as { t: string, code?: string }
    assert.deepEqual([reply.t, reply.code], ['error', 'PROOF_INVALID'])
    assert.equal((await refusalLogged(a, 'PROOF_INVALID')).peer, self)

    assert.equal(await trySync(s, aAddr), 0, 'a member answers a stranger\'s sync request with nothing')
    await assert.rejects(s.sync.syncWith(peerIdFromString(a.peerId)))

    // The stranger's own entries, announced on the heads topic: a member that listened would
    // pull and store them (its store takes any validly signed feed).
    await s.store.append('genesis', { mesh: `evil-${meshId}`, name: 'evil', founder: self })
    await s.store.append('revoke', { peer: c.peerId, after: -1 })
    // Control: the same request, to a peer that does serve it, does get an answer.
    const probe = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
    try {
      assert.ok(await trySync({ libp2p: probe }, s.libp2p.getMultiaddrs()[0].toString()) > 0, 'the probe reads heads from an open peer')
    } finally {
      await probe.stop()
    }
    // Members' own news must not reach it either.
    await a.json(['invite'])

    // Pairing is rationed per source address: the sixth attempt in a row is refused outright.
    const dStream = async (): Promise<string | undefined> => {
      const stream = await s.libp2p.dialProtocol(multiaddr(d.address), PAIRING_PROTOCOL)
      const framed = lpStream(stream)
      await framed.write(encodePairing({ t: 'hello', v: PAIRING_VERSION, mesh: meshId, invite: twoUse.inviteId }))
      const r = decodePairing((await framed.read()).subarray()) as { code?: string }
      await stream.close().catch(() => {})
      return r.code
    }
    const codes: Array<string | undefined> = []
    for (let i = 0; i < 6; i++) codes.push(await dStream())
    assert.deepEqual(codes, [...Array(5).fill('INVITER_NOT_ADMIN'), 'RATE_LIMITED'])
    await refusalLogged(d, 'RATE_LIMITED')

    await fleet.waitFor('a to hang up on the stranger', async () => s.libp2p.getConnections(peerIdFromString(a.peerId)).length === 0, WAIT_MS)
    await logged(a, 'the stranger\'s deadline', (l) => l.msg.includes('pairing deadline') && l.peer === self)
    assert.deepEqual(s.store.heads().map((h) => h.feed), [self], 'the stranger pulled nothing from the mesh')
    assert.deepEqual(heard, [], 'no member gossiped to the stranger')
    for (const h of [a, b, d]) assert.equal(await feedEntries(h, self), 0, `${h.name} stored none of the stranger's entries`)
    for (const h of members()) assert.ok(!(await admitted(h)).includes(self))
  })

  step('refused attempts spent nothing: x joins with the same two-use code', async () => {
    const r = await x.json<{ admitted: boolean }>(['join', twoUse.code])
    assert.equal(r.admitted, true)
    await fleet.waitFor('every member to list x', async () => {
      for (const h of members()) if (!(await memberRows(h)).some((m) => m.peerId === x.peerId && !m.revoked)) return false
      return true
    }, WAIT_MS)
  })

  step('a concurrent admit and revoke resolve the same way everywhere; the revoked host is cut off', async (t) => {
    // b, offline, admits x as an admin while a revokes x: neither entry saw the other.
    await fleet.stop('b')
    await withOfflineStore(b.dataDir, async ({ store }) => { await store.append('admit', { peer: x.peerId, role: 'admin', tags: [] }) })
    await a.json(['revoke', x.peerId, '--reason', 'test'])
    const revokedAt = Date.now()
    await fleet.waitFor('a, c and d to hang up on x', async () => {
      for (const h of [a, c, d]) if (await connectedTo(h, x.peerId)) return false
      return true
    }, WAIT_MS)
    t.diagnostic(`a, c and d hung up on x within ${Date.now() - revokedAt} ms of the revoke (polled over the control API)`)

    await fleet.start('b')
    // Agreement alone does not show that b's admit arrived: with the revoke winning, a host
    // without it already shows the same rows. So the wait also asks every host for both admits.
    const admitsOfX = async (h: FleetHost): Promise<number> => (await admitted(h)).filter((p) => p === x.peerId).length
    await fleet.waitFor('every host to hold both entries and agree', async () => {
      for (const h of members()) if (await admitsOfX(h) !== 2) return false
      const sets = await Promise.all(members().map(memberSet))
      return sets.every((m) => m === sets[0]) && (JSON.parse(sets[0]) as MemberRow[]).some((m) => m.peerId === x.peerId && m.revoked)
    }, WAIT_MS)
    await fleet.waitFor('b to hang up on x', async () => !(await connectedTo(b, x.peerId)), WAIT_MS)
    // x keeps redialling what it knows; the gates keep refusing it.
    await sleep(6000)
    for (const h of members()) assert.equal(await connectedTo(h, x.peerId), false, `${h.name} refuses x`)
  })

  step('the revoked host cannot rejoin with its old code', async (t) => {
    await fleet.stop('x')
    const again = join(fleet.dir, 'x-again')
    assert.equal((await runCli(['--data-dir', again, 'init'])).code, 0)
    await copyFile(join(x.dataDir, 'identity.json'), join(again, 'identity.json'))
    const r = await runCli(['--data-dir', again, 'join', twoUse.code])
    assertRefused(r, 'INVITER_UNREACHABLE')
    t.diagnostic(`the revoked host was told: ${r.stderr.trim()}`)
    for (const h of members()) assert.equal((await admitted(h)).filter((p) => p === x.peerId).length, 2, `no new admit of x on ${h.name}`)
  })
})
