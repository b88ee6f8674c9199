import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CipherSuite, HkdfSha256 } from '@hpke/core'
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305'
import { XWing } from '@hpke/hybridkem-x-wing'
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js'
import { SEALED_EPOCH_KEY_BYTES, openEpochKey, sealEpochKey, sealInfo } from '../../crypto/seal.js'
import { generateXWingSeed, xwingPublicKey } from '../../crypto/xwing.js'
import { SealError } from '../../crypto/errors.js'

const hostA = { peerId: '12D3KooWHostAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', seed: generateXWingSeed() }
const hostB = { peerId: '12D3KooWHostBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', seed: generateXWingSeed() }
const key = new Uint8Array(randomBytes(32))

async function sealedForA (roomId = 'room-a', epoch = 3): Promise<Uint8Array> {
  return sealEpochKey({ recipientPublicKey: xwingPublicKey(hostA.seed), recipientPeerId: hostA.peerId, roomId, epoch, key })
}

async function rejects (p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof SealError && err.code === code, `expected ${code}`)
}

test('our seed-based X-Wing keys are the keys @hpke derives, and @noble decapsulates @hpke encapsulations', async () => {
  const seed = generateXWingSeed()
  const kem = new XWing()
  const pair = await kem.generateKeyPairDerand(seed)
  assert.deepEqual(new Uint8Array(await kem.serializePublicKey(pair.publicKey)), xwingPublicKey(seed))
  const { enc, sharedSecret } = await kem.encap({ recipientPublicKey: await kem.importKey('raw', new Uint8Array(xwingPublicKey(seed)).buffer, true) })
  assert.deepEqual(ml_kem768_x25519.decapsulate(new Uint8Array(enc), seed), new Uint8Array(sharedSecret))
})

test('round trip', async () => {
  const sealed = await sealedForA()
  assert.equal(sealed.length, SEALED_EPOCH_KEY_BYTES)
  assert.equal(sealed[0], 1)
  assert.deepEqual(await openEpochKey({ seed: hostA.seed, peerId: hostA.peerId, roomId: 'room-a', epoch: 3, sealed }), key)
})

test('sealing is randomised: two seals of one key differ', async () => {
  assert.notDeepEqual(await sealedForA(), await sealedForA())
})

test('the sealed key is plain HPKE: a generic RFC 9180 X-Wing receiver with the same info opens it', async () => {
  const sealed = await sealedForA()
  const suite = new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() })
  const opened = await suite.open({
    recipientKey: await suite.kem.importKey('raw', hostA.seed, false),
    enc: sealed.slice(1, 1121),
    info: sealInfo('room-a', 3, hostA.peerId)
  }, sealed.slice(1121))
  assert.deepEqual(new Uint8Array(opened), key)
})

test('bound to room, epoch and recipient', async () => {
  const sealed = await sealedForA('room-a', 3)
  await rejects(openEpochKey({ seed: hostA.seed, peerId: hostA.peerId, roomId: 'room-b', epoch: 3, sealed }), 'SEAL_OPEN_FAILED')
  await rejects(openEpochKey({ seed: hostA.seed, peerId: hostA.peerId, roomId: 'room-a', epoch: 4, sealed }), 'SEAL_OPEN_FAILED')
  await rejects(openEpochKey({ seed: hostA.seed, peerId: hostB.peerId, roomId: 'room-a', epoch: 3, sealed }), 'SEAL_OPEN_FAILED')
})

test("a non-recipient's key cannot open it", async () => {
  const sealed = await sealedForA()
  await rejects(openEpochKey({ seed: hostB.seed, peerId: hostA.peerId, roomId: 'room-a', epoch: 3, sealed }), 'SEAL_OPEN_FAILED')
  await rejects(openEpochKey({ seed: hostB.seed, peerId: hostB.peerId, roomId: 'room-a', epoch: 3, sealed }), 'SEAL_OPEN_FAILED')
})

test('malformed, truncated, flipped and unknown-version sealed bytes give typed errors', async () => {
  const sealed = await sealedForA()
  const open = (s: Uint8Array): Promise<Uint8Array> => openEpochKey({ seed: hostA.seed, peerId: hostA.peerId, roomId: 'room-a', epoch: 3, sealed: s })
  await rejects(open(new Uint8Array(0)), 'SEAL_MALFORMED')
  await rejects(open(sealed.subarray(0, sealed.length - 1)), 'SEAL_MALFORMED')
  await rejects(open(sealed.subarray(0, 1121)), 'SEAL_MALFORMED')
  await rejects(open(new Uint8Array([...sealed, 0])), 'SEAL_MALFORMED')
  const v2 = new Uint8Array(sealed)
  v2[0] = 2
  await rejects(open(v2), 'SEAL_VERSION')
  for (const at of [1, 500, 1088, 1120, 1121, 1140, sealed.length - 1]) {
    const flipped = new Uint8Array(sealed)
    flipped[at]! ^= 0x01
    await rejects(open(flipped), 'SEAL_OPEN_FAILED')
  }
})

test('bad inputs to seal and open are refused', async () => {
  const pk = xwingPublicKey(hostA.seed)
  await rejects(sealEpochKey({ recipientPublicKey: pk, recipientPeerId: hostA.peerId, roomId: 'r', epoch: 0, key: new Uint8Array(16) }), 'SEAL_MALFORMED')
  await rejects(sealEpochKey({ recipientPublicKey: pk.subarray(1), recipientPeerId: hostA.peerId, roomId: 'r', epoch: 0, key }), 'SEAL_MALFORMED')
  await rejects(sealEpochKey({ recipientPublicKey: pk, recipientPeerId: hostA.peerId, roomId: 'r', epoch: -1, key }), 'SEAL_MALFORMED')
  await rejects(sealEpochKey({ recipientPublicKey: pk, recipientPeerId: hostA.peerId, roomId: '', epoch: 0, key }), 'SEAL_MALFORMED')
  await rejects(openEpochKey({ seed: hostA.seed.subarray(1), peerId: hostA.peerId, roomId: 'r', epoch: 0, sealed: await sealedForA() }), 'SEAL_MALFORMED')
})

test('info is length-prefixed: shifting characters between room id and peer id changes it', () => {
  assert.notDeepEqual(sealInfo('ab', 1, 'c'), sealInfo('a', 1, 'bc'))
  assert.notDeepEqual(sealInfo('a', 1, 'b'), sealInfo('a', 256, 'b'))
})

test('fixed vector: the HPKE info bytes', () => {
  assert.equal(Buffer.from(sealInfo('ops', 2, '12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5')).toString('hex'),
    '0000001b666c6565746d65736820726f6f6d2065706f6368206b6579207631000000036f7073000000000000000200000034313244334b6f6f574b3939566f56784e4537587a79427758457a573778684b37477076383572394633563366794b53554b504835')
})
