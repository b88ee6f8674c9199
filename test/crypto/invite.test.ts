import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { encode as cborEncode } from 'cborg'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  INVITE_PREFIX, MAX_INVITE_CODE_CHARS, createInvite, decodeInvite, encodeInvite, inviteIdOf,
  inviteIdOfSecret, inviteProofKey, isExpired, pairingProof, verifyPairingProof
} from '../../crypto/invite.js'
import type { Invite, PairingContext } from '../../crypto/invite.js'
import { InviteError } from '../../crypto/errors.js'

async function newPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

const inviter = await newPeerId()
const founder = await newPeerId()
const joiner = await newPeerId()

function sampleInvite (): Invite {
  return {
    meshId: 'mesh-7f3a',
    inviterPeerId: inviter,
    founderPeerId: founder,
    addrs: ['/ip4/192.168.1.10/tcp/4001', '/ip6/::1/tcp/4001', '/dns4/host-a.example.org/tcp/4001'],
    secret: new Uint8Array(randomBytes(32)),
    expiresAt: 1_900_000_000,
    uses: 3,
    role: 'admin',
    tags: ['gpu', 'eu-west']
  }
}

function rejects (fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof InviteError && err.code === code, `expected ${code}`)
}

// Builds a code around an arbitrary payload with a valid checksum, to reach the payload checks.
function codeWithPayload (payload: Uint8Array): string {
  const sum = createHash('sha256').update(INVITE_PREFIX).update(payload).digest().subarray(0, 4)
  return INVITE_PREFIX + base32(Buffer.concat([payload, sum]))
}
function peerIdPublicKey (id: string) { return peerIdFromString(id).publicKey! }
function multiaddrBytes (a: string) { return multiaddr(a).bytes }
// An independent, bit-string base32 so the test does not trust the encoder under test.
function base32 (bytes: Uint8Array): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let bits = ''
  for (const b of bytes) bits += b.toString(2).padStart(8, '0')
  while (bits.length % 5 !== 0) bits += '0'
  let out = ''
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)]
  return out
}

test('round trip keeps every field and the code has the versioned prefix', () => {
  const inv = sampleInvite()
  const code = encodeInvite(inv)
  assert.ok(code.startsWith('fm2-'))
  assert.match(code, /^fm2-[a-z2-7]+$/)
  assert.deepEqual(decodeInvite(code), inv)
})

test('the independent base32 of the test matches the encoder (a fixed layout others can read)', () => {
  const inv = sampleInvite()
  const code = encodeInvite(inv)
  const payload = cborEncode([inv.meshId, publicKeyToProtobuf(peerIdPublicKey(inv.inviterPeerId)), publicKeyToProtobuf(peerIdPublicKey(inv.founderPeerId)), inv.addrs.map(a => multiaddrBytes(a)), inv.secret, inv.expiresAt, inv.uses, inv.role, inv.tags])
  assert.equal(codeWithPayload(payload), code)
})


test('whitespace and upper case from terminals and chat clients are tolerated', () => {
  const inv = sampleInvite()
  const code = encodeInvite(inv)
  const wrapped = code.toUpperCase().replace(/(.{40})/g, '$1\n  ')
  assert.deepEqual(decodeInvite(wrapped), inv)
})

test('createInvite: proofKey and inviteId are derived from the secret in the code', () => {
  const created = createInvite({ meshId: 'm', inviterPeerId: inviter, founderPeerId: founder, addrs: ['/ip4/10.0.0.1/tcp/1'], expiresAt: 2_000_000_000, uses: 1, role: 'host', tags: [] })
  const inv = decodeInvite(created.code)
  assert.deepEqual(created.proofKey, inviteProofKey(inv.secret))
  assert.equal(created.inviteId, inviteIdOf(created.proofKey))
  assert.match(created.inviteId, /^[0-9a-f]{32}$/)
  // the stored key is not the secret itself
  assert.notDeepEqual(created.proofKey, inv.secret)
  const other = createInvite({ meshId: 'm', inviterPeerId: inviter, founderPeerId: founder, addrs: [], expiresAt: 2_000_000_000, uses: 1, role: 'host', tags: [] })
  assert.notEqual(other.inviteId, created.inviteId)
})

test('every single changed character of the body is reported as a typo', () => {
  const code = encodeInvite(sampleInvite())
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  for (let i = INVITE_PREFIX.length; i < code.length; i++) {
    for (const replacement of [alphabet[(alphabet.indexOf(code[i]!) + 1) % 32]!, alphabet[(alphabet.indexOf(code[i]!) + 17) % 32]!, '0', '8']) {
      const damaged = code.slice(0, i) + replacement + code.slice(i + 1)
      rejects(() => decodeInvite(damaged), 'INVITE_TYPO')
    }
  }
})

test('dropped, added or cut-off characters are typos', () => {
  const code = encodeInvite(sampleInvite())
  for (let i = INVITE_PREFIX.length; i < code.length; i += 7) {
    rejects(() => decodeInvite(code.slice(0, i) + code.slice(i + 1)), 'INVITE_TYPO')
    rejects(() => decodeInvite(code.slice(0, i) + 'q' + code.slice(i)), 'INVITE_TYPO')
  }
  for (const cut of [5, 10, 40, code.length - 1]) rejects(() => decodeInvite(code.slice(0, cut)), 'INVITE_TYPO')
})

test('unknown version, foreign strings and oversize input', () => {
  const code = encodeInvite(sampleInvite())
  rejects(() => decodeInvite('fm1-' + code.slice(4)), 'INVITE_VERSION')
  rejects(() => decodeInvite('fm3-' + code.slice(4)), 'INVITE_VERSION')
  rejects(() => decodeInvite('fm10-' + code.slice(4)), 'INVITE_VERSION')
  rejects(() => decodeInvite('hello world'), 'INVITE_MALFORMED')
  rejects(() => decodeInvite(''), 'INVITE_MALFORMED')
  rejects(() => decodeInvite(code.slice(4)), 'INVITE_MALFORMED')
  rejects(() => decodeInvite(42 as unknown as string), 'INVITE_MALFORMED')
  rejects(() => decodeInvite(INVITE_PREFIX + 'a'.repeat(MAX_INVITE_CODE_CHARS)), 'INVITE_TOO_LARGE')
  rejects(() => decodeInvite('x'.repeat(10 * MAX_INVITE_CODE_CHARS)), 'INVITE_TOO_LARGE')
  rejects(() => encodeInvite({ ...sampleInvite(), meshId: 'm'.repeat(128), addrs: Array.from({ length: 8 }, (_, i) => `/dns4/${'h'.repeat(90)}${i}.example/tcp/1`) }), 'INVITE_TOO_LARGE')
})

test('an intact code with an invalid payload is malformed, not a typo', () => {
  const inv = sampleInvite()
  const key = publicKeyToProtobuf(peerIdPublicKey(inv.inviterPeerId))
  const founderKey = publicKeyToProtobuf(peerIdPublicKey(inv.founderPeerId))
  const good = [inv.meshId, key, founderKey, [], inv.secret, inv.expiresAt, inv.uses, inv.role, inv.tags]
  const variants: unknown[] = [
    'not an array',
    good.slice(0, 8),
    // the version-1 layout, without the founder
    [good[0], good[1], ...good.slice(3)],
    [...good, 'extra'],
    Object.assign([...good], { 0: '' }),
    Object.assign([...good], { 1: new Uint8Array(36) }),
    Object.assign([...good], { 2: new Uint8Array(36) }),
    Object.assign([...good], { 2: 'founder' }),
    Object.assign([...good], { 3: [new Uint8Array([0xff, 0xff])] }),
    Object.assign([...good], { 4: new Uint8Array(31) }),
    Object.assign([...good], { 5: -5 }),
    Object.assign([...good], { 6: 0 }),
    Object.assign([...good], { 7: 'root' }),
    Object.assign([...good], { 8: ['UPPER case'] }),
    Object.assign([...good], { 8: ['a', 'a'] })
  ]
  for (const v of variants) rejects(() => decodeInvite(codeWithPayload(cborEncode(v))), 'INVITE_MALFORMED')
  // trailing bytes after the CBOR array, and a non-canonical (non-shortest) integer
  rejects(() => decodeInvite(codeWithPayload(Buffer.concat([cborEncode(good), Buffer.from([0])]))), 'INVITE_MALFORMED')
  // the same array with `uses` written as a 3-byte integer instead of 1 byte
  const items = good.map((v, i) => i === 6 ? Buffer.from([0x19, 0x00, inv.uses]) : Buffer.from(cborEncode(v)))
  const nonCanonical = Buffer.concat([Buffer.from([0x89]), ...items])
  assert.deepEqual(decodeInvite(codeWithPayload(Buffer.concat([Buffer.from([0x89]), ...good.map(v => Buffer.from(cborEncode(v)))]))), { ...inv, addrs: [] })
  rejects(() => decodeInvite(codeWithPayload(nonCanonical)), 'INVITE_MALFORMED')
  assert.deepEqual(decodeInvite(codeWithPayload(cborEncode(good))), { ...inv, addrs: [] })
})

test('encoding refuses invalid invites with INVITE_MALFORMED', () => {
  rejects(() => encodeInvite({ ...sampleInvite(), inviterPeerId: 'nope' }), 'INVITE_MALFORMED')
  rejects(() => encodeInvite({ ...sampleInvite(), founderPeerId: 'nope' }), 'INVITE_MALFORMED')
  rejects(() => encodeInvite({ ...sampleInvite(), addrs: ['not/an/addr'] }), 'INVITE_MALFORMED')
  rejects(() => encodeInvite({ ...sampleInvite(), uses: 1.5 }), 'INVITE_MALFORMED')
  rejects(() => encodeInvite({ ...sampleInvite(), secret: new Uint8Array(16) }), 'INVITE_MALFORMED')
})

test('isExpired compares against the expiry in unix seconds', () => {
  const inv = sampleInvite()
  assert.equal(isExpired(inv, inv.expiresAt - 1), false)
  assert.equal(isExpired(inv, inv.expiresAt), true)
  assert.equal(isExpired(inv, inv.expiresAt + 3600), true)
})

test('pairing proof verifies with the stored public key and is bound to every field', () => {
  const secret = new Uint8Array(randomBytes(32))
  const secretHash = inviteProofKey(secret)
  const ctx: PairingContext = { meshId: 'mesh-7f3a', joinerPeerId: joiner, inviterPeerId: inviter, channelBinding: new Uint8Array(randomBytes(32)) }
  const proof = pairingProof(secret, ctx)
  assert.equal(proof.length, 64)
  assert.equal(verifyPairingProof(secretHash, ctx, proof), true)
  // What the inviter stores cannot stand in for the secret.
  assert.equal(verifyPairingProof(secretHash, ctx, pairingProof(secretHash, ctx)), false)

  const flipped = new Uint8Array(ctx.channelBinding)
  flipped[0]! ^= 1
  for (const changed of [
    { ...ctx, meshId: 'mesh-7f3b' },
    { ...ctx, joinerPeerId: inviter },
    { ...ctx, inviterPeerId: joiner },
    { ...ctx, channelBinding: flipped }
  ]) assert.equal(verifyPairingProof(secretHash, changed, proof), false)
  // a different secret, a damaged proof, a truncated proof
  assert.equal(verifyPairingProof(inviteProofKey(new Uint8Array(32)), ctx, proof), false)
  const bad = new Uint8Array(proof)
  bad[31]! ^= 0x80
  assert.equal(verifyPairingProof(secretHash, ctx, bad), false)
  assert.equal(verifyPairingProof(secretHash, ctx, proof.subarray(0, 32)), false)
})

test('field boundaries are unambiguous: moving a character between fields changes the proof', () => {
  const secret = new Uint8Array(randomBytes(32))
  const cb = new Uint8Array(32)
  const a = pairingProof(secret, { meshId: 'ab', joinerPeerId: 'c', inviterPeerId: 'd', channelBinding: cb })
  const b = pairingProof(secret, { meshId: 'a', joinerPeerId: 'bc', inviterPeerId: 'd', channelBinding: cb })
  assert.notDeepEqual(a, b)
})

test('a channel binding that is too short is refused', () => {
  const secret = new Uint8Array(32)
  rejects(() => pairingProof(secret, { meshId: 'm', joinerPeerId: joiner, inviterPeerId: inviter, channelBinding: new Uint8Array(8) }), 'INVITE_MALFORMED')
})

test('fixed vector: the version-2 layout, proof key, invite id and proof do not drift', async () => {
  const { generateKeyPairFromSeed } = await import('@libp2p/crypto/keys')
  const id = peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(1))).toString()
  assert.equal(id, '12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5')
  const founderId = peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(2))).toString()
  assert.equal(founderId, '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq')
  const secret = new Uint8Array(32).map((_, i) => i)
  const inv: Invite = { meshId: 'mesh-vector', inviterPeerId: id, founderPeerId: founderId, addrs: ['/ip4/192.0.2.1/tcp/4001', '/ip6/2001:db8::1/tcp/4001'], secret, expiresAt: 1893456000, uses: 1, role: 'host', tags: ['gpu'] }
  const code = 'fm2-rfvw2zltnawxmzldorxxewbebaareiekrdr525aj6gk72uw3fu6luxlszjtqtpy5sqjbx43uraa3id3plrmcicabciqicolxb2uh2f27k2rvizwdjr7mzs4nrki3j3rxujo7md23r7e3hfecjacmaaacaeda7ikufeqacdnyaaaaaaaaaaaaaaaaaaaqmd5blaqaaaicamcakbqhbaequcymbuha6earcijrifiwc4mbsgq3dqor4hy2odn5raabmrug643uqfrwo4dvmviraui'
  assert.equal(encodeInvite(inv), code)
  assert.deepEqual(decodeInvite(code), inv)
  // the version-1 code of the same invite (no founder) is refused as such, not misread
  rejects(() => decodeInvite('fm1-rbvw2zltnawxmzldorxxewbebaareiekrdr525aj6gk72uw3fu6luxlszjtqtpy5sqjbx43uraa3id3plsbeqbgaaabacbqpufkcsiabbw4aaaaaaaaaaaaaaaaaaaigb6qvqiaaaebagbafaydqqcikbmga2dqpcaireeyuculbogazdinryhi6d4nhbw6yqaawi2dpon2icy3hob26k2hwca'), 'INVITE_VERSION')
  const proofKey = inviteProofKey(secret)
  assert.equal(Buffer.from(proofKey).toString('hex'), '1e68851497351f5a6af93acf809d4c1d3cbeac5acea460ce346ff11af0a3219c')
  assert.equal(inviteIdOf(proofKey), '68bcac90cf90d9d4621691d7724e8b6d')
  assert.equal(inviteIdOfSecret(secret), '68bcac90cf90d9d4621691d7724e8b6d')
  const proof = pairingProof(secret, { meshId: 'mesh-vector', joinerPeerId: id, inviterPeerId: id, channelBinding: new Uint8Array(32).fill(9) })
  assert.equal(Buffer.from(proof).toString('hex'), '189417d5ba6d3c647ce2375379da6e1923005a1ae9aefef449295a1729f35ca84dabbe61a452b935173c09eb65df6b8fe6fd2cd206b41b586130c2d8ad159709')
})
