import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { encode, rfc8949EncodeOptions } from 'cborg'
import { ed25519 } from '@noble/curves/ed25519.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { buildVectors, fromJson } from '../vectors/audit-entry-gen.js'
import { decodeEntry } from '../../protocols/audit/codec.js'
import { verifyEntryBytes } from '../../protocols/audit/verify.js'

const vectors = JSON.parse(readFileSync(new URL('../vectors/audit-entry.json', import.meta.url), 'utf8'))
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

test('this code reproduces the checked-in audit entry vectors byte for byte', async () => {
  assert.deepEqual(await buildVectors(), vectors)
})

test('vectors hold by independent means: plain cborg, @noble ed25519 and sha256', () => {
  let link: { seq: number, hash: Uint8Array } | undefined
  for (const v of vectors.entries) {
    const canonical = hex(v.canonical)
    const entry = decodeEntry(canonical)
    assert.equal(entry.feed, vectors.feed)
    assert.deepEqual(entry.body, fromJson(v.input.body))
    const { sig, ...unsigned } = entry
    assert.equal(Buffer.from(encode(unsigned, rfc8949EncodeOptions)).toString('hex'), v.signing_bytes)
    assert.equal(Buffer.from(encode(entry, rfc8949EncodeOptions)).toString('hex'), v.canonical)
    assert.equal(ed25519.verify(sig, hex(v.signing_bytes), hex(vectors.public_key)), true)
    assert.equal(Buffer.from(sha256(canonical)).toString('hex'), v.hash)
    const r = verifyEntryBytes(canonical, link)
    assert.equal(r.ok, true)
    link = { seq: entry.seq, hash: hex(v.hash) }
  }
})
