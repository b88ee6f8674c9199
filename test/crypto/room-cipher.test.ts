import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { MAX_ROOM_PLAINTEXT_BYTES, decryptRoomMessage, encryptRoomMessage, headerBytes, signingBytes } from '../../crypto/room-cipher.js'
import type { RoomHeader, RoomMessage } from '../../crypto/room-cipher.js'
import { RoomCipherError } from '../../crypto/errors.js'

const key = new Uint8Array(randomBytes(32))
const header: RoomHeader = { room: 'ops', epoch: 2, sender: '12D3KooWSender', agent: 'planner', seq: 41, ts: 1_760_000_000_123 }
const text = new TextEncoder().encode('deploy wave 2 looks healthy')

function rejects (fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof RoomCipherError && err.code === code, `expected ${code}`)
}

test('round trip', () => {
  const msg = encryptRoomMessage(key, header, text)
  assert.deepEqual({ ...msg, ciphertext: undefined }, { ...header, ciphertext: undefined })
  assert.equal(msg.ciphertext.length, 24 + text.length + 16)
  assert.deepEqual(decryptRoomMessage(key, msg), text)
  assert.deepEqual(decryptRoomMessage(key, encryptRoomMessage(key, header, new Uint8Array(0))), new Uint8Array(0))
})

test('the same plaintext and header encrypt to different ciphertexts (fresh nonce)', () => {
  const a = encryptRoomMessage(key, header, text)
  const b = encryptRoomMessage(key, header, text)
  assert.notDeepEqual(a.ciphertext.subarray(0, 24), b.ciphertext.subarray(0, 24))
  assert.notDeepEqual(a.ciphertext, b.ciphertext)
})

test('any flipped ciphertext byte (nonce, body or tag) is rejected', () => {
  const msg = encryptRoomMessage(key, header, text)
  for (let i = 0; i < msg.ciphertext.length; i++) {
    const ct = new Uint8Array(msg.ciphertext)
    ct[i]! ^= 0x40
    rejects(() => decryptRoomMessage(key, { ...msg, ciphertext: ct }), 'ROOM_MSG_AUTH_FAILED')
  }
})

test('every header field is authenticated', () => {
  const msg = encryptRoomMessage(key, header, text)
  const changes: Partial<RoomMessage>[] = [
    { room: 'ops2' }, { epoch: 3 }, { sender: '12D3KooWOther' }, { agent: 'critic' }, { seq: 42 }, { ts: header.ts + 1 }
  ]
  for (const change of changes) rejects(() => decryptRoomMessage(key, { ...msg, ...change }), 'ROOM_MSG_AUTH_FAILED')
})

test('a wrong epoch key is rejected', () => {
  const msg = encryptRoomMessage(key, header, text)
  rejects(() => decryptRoomMessage(new Uint8Array(randomBytes(32)), msg), 'ROOM_MSG_AUTH_FAILED')
})

test('malformed headers, keys and ciphertexts give typed errors', () => {
  const msg = encryptRoomMessage(key, header, text)
  rejects(() => decryptRoomMessage(key, { ...msg, ciphertext: msg.ciphertext.subarray(0, 39) }), 'ROOM_MSG_MALFORMED')
  rejects(() => decryptRoomMessage(key, { ...msg, ciphertext: 'x' as unknown as Uint8Array }), 'ROOM_MSG_MALFORMED')
  rejects(() => decryptRoomMessage(key, { ...msg, ciphertext: new Uint8Array(24 + MAX_ROOM_PLAINTEXT_BYTES + 17) }), 'ROOM_MSG_TOO_LARGE')
  rejects(() => decryptRoomMessage(key.subarray(1), msg), 'ROOM_MSG_MALFORMED')
  for (const bad of [{ room: '' }, { agent: 'a'.repeat(257) }, { epoch: -1 }, { seq: 1.5 }, { ts: Number.MAX_SAFE_INTEGER + 2 }, { sender: 7 as unknown as string }]) {
    rejects(() => decryptRoomMessage(key, { ...msg, ...bad }), 'ROOM_MSG_MALFORMED')
    rejects(() => encryptRoomMessage(key, { ...header, ...bad }, text), 'ROOM_MSG_MALFORMED')
  }
  rejects(() => encryptRoomMessage(key, header, new Uint8Array(MAX_ROOM_PLAINTEXT_BYTES + 1)), 'ROOM_MSG_TOO_LARGE')
})

test('header bytes are canonical: field order of the object does not matter', () => {
  const reordered: RoomHeader = { ts: header.ts, seq: header.seq, agent: header.agent, sender: header.sender, epoch: header.epoch, room: header.room }
  assert.deepEqual(headerBytes(reordered), headerBytes(header))
})

test('signingBytes covers every field and carries a domain tag', () => {
  const msg = encryptRoomMessage(key, header, text)
  const base = signingBytes(msg)
  assert.ok(Buffer.from(base).toString('latin1').startsWith('fleetmesh room message v1\0'))
  const ct = new Uint8Array(msg.ciphertext)
  ct[0]! ^= 1
  for (const change of [{ room: 'x' }, { epoch: 9 }, { sender: 'y' }, { agent: 'z' }, { seq: 1 }, { ts: 1 }, { ciphertext: ct }]) {
    assert.notDeepEqual(signingBytes({ ...msg, ...change }), base)
  }
  assert.deepEqual(signingBytes({ ...msg }), base)
})

test('fixed vector: the associated data is RFC 8949 deterministic CBOR of the header', () => {
  const h: RoomHeader = { room: 'ops', epoch: 2, sender: '12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5', agent: 'planner', seq: 41, ts: 1760000000123 }
  assert.equal(Buffer.from(headerBytes(h)).toString('hex'),
    'a76176016274731b00000199c82cc07b63736571182964726f6f6d636f7073656167656e7467706c616e6e65726565706f6368026673656e6465727834313244334b6f6f574b3939566f56784e4537587a79427758457a573778684b37477076383572394633563366794b53554b504835')
})
