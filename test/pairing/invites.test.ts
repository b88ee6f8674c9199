import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { createInvite, decodeInvite, inviteProofKey } from '../../crypto/invite.js'
import { encodeCanonical } from '../../protocols/audit/codec.js'
import { InviteBook, PairingError, type InviteDb, type InviteRecord, type OpenInviteRecord } from '../../protocols/pairing/index.js'

const NOW = 1_800_000_000

async function withBook (fn: (open: () => Promise<{ book: InviteBook, raw: InviteDb, close: () => Promise<void> }>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-invites-'))
  try {
    await fn(async () => {
      const db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
      await db.open()
      // The same sublevel the node gives its book (node/pairing.ts).
      const raw = db.sublevel<string, Uint8Array>('invites', { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as InviteDb
      return { book: new InviteBook(raw), raw, close: async () => { await db.close() } }
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function record (uses: number, overrides: Partial<InviteRecord> = {}): { record: InviteRecord, secret: Uint8Array } {
  const made = createInvite({ meshId: 'fleet-00', inviterPeerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', founderPeerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', addrs: ['/ip4/127.0.0.1/tcp/4001'], expiresAt: NOW + 3600, uses, role: 'host', tags: ['web'] })
  const secret = decodeInvite(made.code).secret
  return { secret, record: { id: made.inviteId, meshId: 'fleet-00', proofKey: made.proofKey, role: 'host', tags: ['web'], expiresAt: NOW + 3600, usesLeft: uses, createdAt: NOW, ...overrides } }
}

const refusedWith = (code: string) => (err: unknown): boolean => err instanceof PairingError && err.code === code

test('the book keeps the proof\'s public key, never the secret, and its use count survives a reopen', async () => {
  await withBook(async (open) => {
    const { record: r, secret } = record(2)
    let s = await open()
    await s.book.add(r)
    const stored = (await s.raw.get(r.id))!
    assert.equal(Buffer.from(stored).includes(Buffer.from(secret)), false, 'the secret is not in the stored bytes')
    assert.deepEqual((await s.book.get(r.id) as OpenInviteRecord | undefined)?.proofKey, inviteProofKey(secret))
    assert.equal((await s.book.consume(r.id, NOW, () => {})).usesLeft, 1)
    await s.close()

    s = await open()
    assert.equal((await s.book.get(r.id))?.usesLeft, 1)
    assert.equal((await s.book.consume(r.id, NOW, () => {})).usesLeft, 0)
    await assert.rejects(s.book.consume(r.id, NOW, () => {}), refusedWith('INVITE_USED_UP'))
    await s.close()
  })
})

test('a refused check spends nothing; unknown and expired invites are refused with their codes', async () => {
  await withBook(async (open) => {
    const s = await open()
    const { record: r } = record(1)
    await s.book.add(r)
    const bad = (): never => { throw new PairingError('PROOF_INVALID', 'wrong secret') }
    await assert.rejects(s.book.consume(r.id, NOW, bad), refusedWith('PROOF_INVALID'))
    assert.equal((await s.book.get(r.id))?.usesLeft, 1)
    await assert.rejects(s.book.consume('0'.repeat(32), NOW, () => {}), refusedWith('INVITE_UNKNOWN'))
    await assert.rejects(s.book.consume(r.id, r.expiresAt, () => {}), refusedWith('INVITE_EXPIRED'))
    assert.equal((await s.book.get(r.id))?.usesLeft, 1)
    await s.close()
  })
})

test('a revoked invite is kept, listed as revoked, and refuses every later use', async () => {
  await withBook(async (open) => {
    let s = await open()
    const { record: r } = record(3)
    await s.book.add(r)
    assert.equal(await s.book.revoke('0'.repeat(32), NOW), undefined)
    assert.equal((await s.book.revoke(r.id, NOW + 5))?.revokedAt, NOW + 5)
    assert.equal((await s.book.revoke(r.id, NOW + 9))?.revokedAt, NOW + 5, 'the first revocation stands')
    await s.close()
    s = await open()
    await assert.rejects(s.book.consume(r.id, NOW + 10, () => {}), refusedWith('INVITE_REVOKED'))
    assert.deepEqual((await s.book.list()).map((x) => [x.id, x.revokedAt, x.usesLeft]), [[r.id, NOW + 5, 3]])
    await s.close()
  })
})

test('joiners racing for a single-use invite: exactly one gets it', async () => {
  await withBook(async (open) => {
    const s = await open()
    const { record: r } = record(1)
    await s.book.add(r)
    const results = await Promise.allSettled(Array.from({ length: 20 }, async () => s.book.consume(r.id, NOW, () => {})))
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1)
    for (const x of results) if (x.status === 'rejected') assert.ok(refusedWith('INVITE_USED_UP')(x.reason))
    await s.close()
  })
})

test('a corrupt stored record is refused with a typed error', async () => {
  await withBook(async (open) => {
    const s = await open()
    const { record: r } = record(1)
    await s.raw.put('junk', new Uint8Array([0xa1, 0x61]))
    await assert.rejects(s.book.get('junk'), refusedWith('INVITE_STORE_CORRUPT'))
    await s.raw.put('extra', encodeCanonical({ ...r, extra: 1 }))
    await assert.rejects(s.book.get('extra'), refusedWith('INVITE_STORE_CORRUPT'))
    await s.raw.put('short', encodeCanonical({ ...r, proofKey: new Uint8Array(31) }))
    await assert.rejects(s.book.consume('short', NOW, () => {}), refusedWith('INVITE_STORE_CORRUPT'))
    await s.close()
  })
})

test('a record of the old format (an HMAC key\'s hash) is listed as legacy, refused for pairing, revocable, and loses nothing', async () => {
  await withBook(async (open) => {
    const s = await open()
    const { record: current } = record(1)
    await s.book.add(current)
    // what a build whose proof was an HMAC keyed by the stored hash wrote
    const old = { id: 'a'.repeat(32), meshId: 'fleet-00', secretHash: new Uint8Array(32).fill(5), role: 'admin', tags: ['db'], expiresAt: NOW + 3600, usesLeft: 2, createdAt: NOW - 10 }
    await s.raw.put(old.id, encodeCanonical(old))
    const listed = await s.book.list()
    assert.deepEqual(listed.map((r) => r.id).sort(), [current.id, old.id].sort())
    const legacy = listed.find((r) => r.id === old.id)!
    assert.deepEqual({ ...legacy }, { id: old.id, meshId: 'fleet-00', legacy: true, role: 'admin', tags: ['db'], expiresAt: NOW + 3600, usesLeft: 2, createdAt: NOW - 10 })
    let checked = false
    await assert.rejects(s.book.consume(old.id, NOW, () => { checked = true }), refusedWith('INVITE_REVOKED'))
    assert.equal(checked, false)
    assert.equal((await s.book.get(old.id))?.usesLeft, 2)
    // revoking it rewrites the record without the hash, and it stays legacy
    assert.equal((await s.book.revoke(old.id, NOW))?.revokedAt, NOW)
    assert.equal(Buffer.from((await s.raw.get(old.id))!).includes(Buffer.from(old.secretHash)), false)
    assert.deepEqual(await s.book.get(old.id), { ...legacy, revokedAt: NOW })
    // a record that is neither format is still corrupt
    await s.raw.put('b'.repeat(32), encodeCanonical({ ...old, id: 'b'.repeat(32), secretHash: new Uint8Array(31) }))
    await assert.rejects(s.book.get('b'.repeat(32)), refusedWith('INVITE_STORE_CORRUPT'))
    await s.close()
  })
})
