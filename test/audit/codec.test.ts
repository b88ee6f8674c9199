import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encode, rfc8949EncodeOptions } from 'cborg'
import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  decodeEntry, encodeEntry, entryHash, signingBytes, encodeCanonical, decodeCanonical, KindRegistry, ZERO_HASH, maxEntryBytes
} from '../../protocols/audit/codec.js'
import { AuditError, type AuditErrorCode } from '../../protocols/audit/errors.js'
import type { Entry } from '../../protocols/audit/types.js'
import { craft } from './helpers.js'

const key = await generateKeyPair('Ed25519')
const base = craft(key, { seq: 3, prev: new Uint8Array(32).fill(9), body: { a: 1, list: ['x', new Uint8Array([1, 2])], nested: { t: true, n: null } } })

function rejects (fn: () => unknown, code: AuditErrorCode): void {
  assert.throws(fn, (err: unknown) => err instanceof AuditError && err.code === code, `expected ${code}`)
}

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
// re-encode an entry's map with a tweak, bypassing our encoder's checks
const plain = (v: unknown): Uint8Array => new Uint8Array(encode(v, rfc8949EncodeOptions))
const raw = (fields: Record<string, unknown>): Uint8Array => encode({ ...base.entry, ...fields }, rfc8949EncodeOptions)

test('an entry round-trips and its canonical bytes are the plain RFC 8949 encoding of its map', () => {
  assert.deepEqual(decodeEntry(base.bytes), base.entry)
  assert.deepEqual(encodeEntry(base.entry), base.bytes)
  assert.deepEqual(base.bytes, plain(base.entry))
  const { sig: _sig, ...unsigned } = base.entry
  assert.deepEqual(new Uint8Array(signingBytes(base.entry)), plain(unsigned))
  assert.equal(entryHash(base.entry).length, 32)
  assert.deepEqual(entryHash(base.entry), entryHash(base.bytes))
})

test('signing bytes splice is right for every size class of ts and seq', () => {
  for (const n of [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    const e = craft(key, { seq: n, ts: n, prev: ZERO_HASH })
    assert.deepEqual(e.bytes, plain(e.entry), `n=${n}`)
    assert.deepEqual(decodeEntry(e.bytes), e.entry)
  }
})

test('bodies outside the deterministic data model are refused on encode', () => {
  for (const body of [1.5, NaN, Infinity, -0, undefined, 2n, new Date(0), new Map([['a', 1]]), { a: undefined }, ['\ud800'], { f: () => 1 }, Symbol('x'), 2 ** 53]) {
    rejects(() => signingBytes({ ...base.entry, body }), 'BODY_NOT_CANONICAL')
  }
  let deep: unknown = 1
  for (let i = 0; i < 40; i++) deep = [deep]
  rejects(() => signingBytes({ ...base.entry, body: deep }), 'BODY_NOT_CANONICAL')
})

test('non-canonical encodings of the same value are refused', () => {
  const good = base.bytes
  // the same map with keys in RFC 7049 order would differ only in order: build one by hand
  const unsorted = encode(base.entry, { mapSorter: (a: any, b: any) => (a[0].value < b[0].value ? 1 : -1) })
  assert.notDeepEqual(unsorted, good)
  rejects(() => decodeEntry(unsorted), 'ENTRY_MALFORMED')
  rejects(() => decodeCanonical(hex('1817'), 16), 'MESSAGE_MALFORMED') // 23 in two bytes
  rejects(() => decodeCanonical(hex('f93c00'), 16), 'MESSAGE_MALFORMED') // 1.0 as half float
  rejects(() => decodeCanonical(hex('fb3ff8000000000000'), 16), 'MESSAGE_MALFORMED') // 1.5 as double
  rejects(() => decodeCanonical(hex('9f01ff'), 16), 'MESSAGE_MALFORMED') // indefinite array
  rejects(() => decodeCanonical(hex('c11a00000000'), 16), 'MESSAGE_MALFORMED') // tag 1
  rejects(() => decodeCanonical(hex('f7'), 16), 'MESSAGE_MALFORMED') // undefined
  rejects(() => decodeCanonical(hex('a10102'), 16), 'MESSAGE_MALFORMED') // integer map key
  rejects(() => decodeCanonical(hex('a2616101616102'), 16), 'MESSAGE_MALFORMED') // duplicate key
  rejects(() => decodeCanonical(hex('6261ed'), 16), 'MESSAGE_MALFORMED') // invalid UTF-8
  rejects(() => decodeCanonical(hex('a1626161'), 16), 'MESSAGE_MALFORMED') // truncated
  rejects(() => decodeCanonical(hex('0101'), 16), 'MESSAGE_MALFORMED') // trailing byte
  rejects(() => decodeCanonical(new Uint8Array(17), 16), 'MESSAGE_TOO_LARGE')
  assert.deepEqual(decodeCanonical(encodeCanonical({ b: 1, a: [true, null] }), 64), { a: [true, null], b: 1 })
})

test('entry envelopes that break the schema are refused with ENTRY_MALFORMED', () => {
  const cases: Array<Record<string, unknown>> = [
    { prev: new Uint8Array(31) }, { sig: new Uint8Array(63) }, { seq: -1 }, { ts: -5 }, { kind: 'Has Space' }, { kind: '' },
    { kind: 'x'.repeat(65) }, { feed: 'not/base58' }, { feed: '' }, { extra: 1 }, { seq: 'one' }
  ]
  for (const c of cases) rejects(() => decodeEntry(raw(c)), 'ENTRY_MALFORMED')
  const { body: _b, ...missing } = base.entry
  rejects(() => decodeEntry(encode(missing, rfc8949EncodeOptions)), 'ENTRY_MALFORMED')
  rejects(() => decodeEntry(encode([1, 2], rfc8949EncodeOptions)), 'ENTRY_MALFORMED')
  rejects(() => decodeEntry(base.bytes.subarray(0, base.bytes.length - 1)), 'ENTRY_MALFORMED')
  rejects(() => decodeEntry(new Uint8Array([...base.bytes, 0])), 'ENTRY_MALFORMED')
  rejects(() => decodeEntry(raw({ ts: 1.5 })), 'ENTRY_MALFORMED')
  rejects(() => encodeEntry({ ...base.entry, sig: new Uint8Array(3) }), 'ENTRY_MALFORMED')
})

test('size limits: bodies over the limit and oversize byte strings are ENTRY_TOO_LARGE', () => {
  const limits = { maxBodyBytes: 1024 }
  const fits = craft(key, { seq: 0, prev: ZERO_HASH, body: 'x'.repeat(1021) }) // 3-byte string header
  assert.deepEqual(decodeEntry(fits.bytes, limits), fits.entry)
  rejects(() => signingBytes({ ...fits.entry, body: 'x'.repeat(1022) }, limits), 'ENTRY_TOO_LARGE')
  const over = craft(key, { seq: 0, prev: ZERO_HASH, body: 'x'.repeat(1022) })
  rejects(() => decodeEntry(over.bytes, limits), 'ENTRY_TOO_LARGE')
  rejects(() => decodeEntry(new Uint8Array(maxEntryBytes(limits) + 1), limits), 'ENTRY_TOO_LARGE')
  rejects(() => signingBytes({ ...base.entry, body: new Uint8Array(64 * 1024 + 1) }), 'ENTRY_TOO_LARGE')
})

test('kind registry validates registered kinds and leaves unknown kinds alone', () => {
  const kinds = new KindRegistry()
  kinds.register('release', (b) => typeof (b as { id?: unknown }).id === 'string')
  kinds.validate('release', { id: 'r1' })
  kinds.validate('someday-kind', 42)
  rejects(() => kinds.validate('release', { id: 1 }), 'BODY_INVALID')
  kinds.register('throws', () => { throw new Error('nope') })
  rejects(() => kinds.validate('throws', {}), 'BODY_INVALID')
  rejects(() => kinds.register('release', () => true), 'KIND_REGISTERED')
  const entry: Entry = base.entry
  assert.equal(entry.kind, 'status')
})
