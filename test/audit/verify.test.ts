import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createSigner, verifyEd25519, ed25519Verifier, Ed25519VerifyPool, SigningKeyError } from '../../crypto/sign.js'
import { entryHash, ZERO_HASH, KindRegistry } from '../../protocols/audit/codec.js'
import { verifyEntry, verifyEntryBytes, feedPublicKey } from '../../protocols/audit/verify.js'
import { createKindRegistry } from '../../protocols/audit/kinds.js'
import { AuditError, type AuditErrorCode } from '../../protocols/audit/errors.js'
import type { VerifyResult } from '../../protocols/audit/verify.js'
import { craft } from './helpers.js'

const key = await generateKeyPair('Ed25519')
const other = await generateKeyPair('Ed25519')
const e0 = craft(key, { seq: 0, prev: ZERO_HASH })
const e1 = craft(key, { seq: 1, prev: entryHash(e0.bytes) })
const link0 = { seq: 0, hash: entryHash(e0.bytes) }

function fails (r: VerifyResult | { ok: boolean, error?: AuditError }, code: AuditErrorCode): void {
  assert.equal(r.ok, false, `expected ${code}`)
  assert.equal((r as { error: AuditError }).error.code, code)
}

test('crypto/sign: signatures verify under the right key only; malformed input is false, not a throw', () => {
  const signer = createSigner(key)
  const msg = new Uint8Array([1, 2, 3])
  const sig = signer.sign(msg)
  assert.deepEqual(signer.publicKey, key.publicKey.raw)
  assert.equal(verifyEd25519(signer.publicKey, msg, sig), true)
  assert.equal(verifyEd25519(other.publicKey.raw, msg, sig), false)
  assert.equal(verifyEd25519(signer.publicKey, new Uint8Array([1, 2, 4]), sig), false)
  assert.equal(verifyEd25519(signer.publicKey, msg, sig.subarray(1)), false)
  assert.equal(verifyEd25519(signer.publicKey.subarray(1), msg, sig), false)
  assert.equal(ed25519Verifier(signer.publicKey)(msg, sig), true)
  assert.throws(() => ed25519Verifier(new Uint8Array(31)), SigningKeyError)
  // a key object whose public half does not belong to its seed
  assert.throws(() => createSigner({ ...key, raw: new Uint8Array([...key.raw.subarray(0, 32), ...other.publicKey.raw]) } as typeof key), SigningKeyError)
})

test('crypto/sign: the worker pool gives the same verdicts as the calling thread, in order', async () => {
  const signer = createSigner(key)
  const checks = Array.from({ length: 300 }, (_, i) => {
    const message = new Uint8Array([i & 255, i >> 8])
    return { publicKey: signer.publicKey, message, signature: signer.sign(message) }
  })
  checks[7] = { ...checks[7], signature: checks[8].signature }
  checks[150] = { ...checks[150], publicKey: new Uint8Array(32) }
  checks[299] = { ...checks[299], signature: new Uint8Array(12) }
  const pool = new Ed25519VerifyPool(1)
  try {
    const got = await pool.verifyBatch(checks)
    assert.deepEqual(got, checks.map((c, i) => ![7, 150, 299].includes(i) && verifyEd25519(c.publicKey, c.message, c.signature)))
    assert.equal(got.filter(x => !x).length, 3)
  } finally {
    await pool.close()
  }
})

test('a valid chain verifies: first entry against nothing, next against its predecessor', () => {
  assert.deepEqual(verifyEntry(e0.entry, undefined), { ok: true })
  assert.deepEqual(verifyEntry(e1.entry, link0), { ok: true })
  const r = verifyEntryBytes(e1.bytes, link0)
  assert.equal(r.ok, true)
  assert.deepEqual(r.ok && r.hash, entryHash(e1.bytes))
})

test('BAD_SIGNATURE: any flipped signature or content byte', () => {
  const sig = new Uint8Array(e1.entry.sig)
  sig[10] ^= 1
  fails(verifyEntry({ ...e1.entry, sig }, link0), 'BAD_SIGNATURE')
  fails(verifyEntry({ ...e1.entry, body: { n: 2 } }, link0), 'BAD_SIGNATURE')
  fails(verifyEntry({ ...e1.entry, ts: e1.entry.ts + 1 }, link0), 'BAD_SIGNATURE')
  // an entry signed by another key under this feed's name
  const forged = craft(other, { seq: 1, prev: link0.hash })
  fails(verifyEntry({ ...forged.entry, feed: e1.entry.feed }, link0), 'BAD_SIGNATURE')
})

test('BAD_PREV and SEQ_GAP: links and continuity', () => {
  fails(verifyEntry(e1.entry, { seq: 0, hash: new Uint8Array(32).fill(1) }), 'BAD_PREV')
  fails(verifyEntry(craft(key, { seq: 0, prev: new Uint8Array(32).fill(1) }).entry, undefined), 'BAD_PREV')
  fails(verifyEntry(e1.entry, undefined), 'SEQ_GAP')
  fails(verifyEntry(craft(key, { seq: 5, prev: link0.hash }).entry, link0), 'SEQ_GAP')
  fails(verifyEntry(e0.entry, link0), 'SEQ_GAP')
})

test('UNKNOWN_FEED_KEY: feeds that are not Ed25519 peer ids in base58btc', async () => {
  const secp = await generateKeyPair('secp256k1')
  const secpFeed = peerIdFromPrivateKey(secp).toString()
  assert.throws(() => feedPublicKey(secpFeed), (e: unknown) => e instanceof AuditError && e.code === 'UNKNOWN_FEED_KEY')
  fails(verifyEntry({ ...e0.entry, feed: secpFeed }, undefined), 'UNKNOWN_FEED_KEY')
  fails(verifyEntry({ ...e0.entry, feed: 'QmNotAvaidPeerzzz' }, undefined), 'UNKNOWN_FEED_KEY')
  // same key, CIDv1 spelling: one feed must have one spelling
  const cid = peerIdFromPrivateKey(key).toCID().toString()
  assert.throws(() => feedPublicKey(cid))
})

test('ENTRY_MALFORMED, ENTRY_TOO_LARGE, BODY_NOT_CANONICAL, BODY_INVALID and AUTHOR_REJECTED', () => {
  fails(verifyEntryBytes(e0.bytes.subarray(3), undefined), 'ENTRY_MALFORMED')
  fails(verifyEntryBytes(new Uint8Array(70_000), undefined), 'ENTRY_TOO_LARGE')
  fails(verifyEntry({ ...e0.entry, body: 0.5 }, undefined), 'BODY_NOT_CANONICAL')
  const kinds = createKindRegistry()
  const badWitness = craft(key, { seq: 0, prev: ZERO_HASH, kind: 'witness', body: { heads: 'nope' } })
  fails(verifyEntry(badWitness.entry, undefined, { kinds }), 'BODY_INVALID')
  fails(verifyEntryBytes(badWitness.bytes, undefined, { kinds }), 'BODY_INVALID')
  assert.deepEqual(verifyEntry(badWitness.entry, undefined, { kinds: new KindRegistry() }), { ok: true })
  const members = new Set([peerIdFromPrivateKey(other).toString()])
  fails(verifyEntry(e0.entry, undefined, { authorCheck: (e) => members.has(e.feed) }), 'AUTHOR_REJECTED')
})
