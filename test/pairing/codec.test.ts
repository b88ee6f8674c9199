import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encode } from 'cborg'
import { decodePairing, encodePairing, MAX_PAIRING_MESSAGE_BYTES, NONCE_BYTES, PAIRING_VERSION, type PairingMessage } from '../../protocols/pairing/codec.js'
import { encodeCanonical } from '../../protocols/audit/codec.js'
import { PairingError } from '../../protocols/pairing/errors.js'

const bytes = (n: number, fill = 7): Uint8Array => new Uint8Array(n).fill(fill)

const valid: PairingMessage[] = [
  { t: 'hello', v: PAIRING_VERSION, mesh: 'fleet-0011223344556677', invite: 'ab'.repeat(16) },
  { t: 'challenge', nonce: bytes(NONCE_BYTES) },
  { t: 'proof', proof: bytes(64), xwing: bytes(1216) },
  { t: 'proof', proof: bytes(64), xwing: bytes(1216), name: 'web-1.eu' },
  { t: 'welcome', mesh: 'fleet-0011223344556677', name: 'fleet', founder: '12D3KooWfounder', addrs: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWfounder'] },
  { t: 'error', code: 'INVITE_USED_UP', message: 'the invite has been used up' }
]

function refused (input: Uint8Array, why: RegExp): void {
  assert.throws(() => decodePairing(input), (err: unknown) => {
    assert.ok(err instanceof PairingError)
    assert.equal(err.code, 'PAIRING_MALFORMED')
    assert.match(err.message, why)
    return true
  })
}

test('every message type round-trips through its canonical bytes', () => {
  for (const m of valid) assert.deepEqual(decodePairing(encodePairing(m)), m)
})

test('truncated messages are refused with a typed error', () => {
  for (const m of valid) {
    const b = encodePairing(m)
    for (const cut of [0, 1, Math.floor(b.length / 2), b.length - 1]) refused(b.subarray(0, cut), /malformed pairing message/)
  }
})

test('oversize messages are refused before decoding, and never encoded', () => {
  refused(new Uint8Array(MAX_PAIRING_MESSAGE_BYTES + 1), /malformed pairing message/)
  assert.throws(() => encodePairing({ t: 'welcome', mesh: 'm', name: 'n', founder: 'f', addrs: Array.from({ length: 32 }, () => 'a'.repeat(512)) }),
    (err: unknown) => err instanceof PairingError && err.code === 'PAIRING_MALFORMED' && /too large/.test(err.message))
})

test('malformed messages are refused: wrong types, sizes, fields, versions, codes and encodings', () => {
  const enc = (v: unknown): Uint8Array => encodeCanonical(v)
  refused(enc(['hello']), /not a map/)
  refused(enc({ t: 'bye' }), /unknown type/)
  refused(enc({ t: 'hello', v: PAIRING_VERSION + 1, mesh: 'm', invite: 'i' }), /version/)
  refused(enc({ t: 'hello', v: PAIRING_VERSION, mesh: 'm', invite: 'i', extra: 1 }), /fields/)
  refused(enc({ t: 'hello', v: PAIRING_VERSION, mesh: '', invite: 'i' }), /hello fields/)
  refused(enc({ t: 'challenge', nonce: bytes(NONCE_BYTES - 1) }), /nonce/)
  refused(enc({ t: 'proof', proof: bytes(63), xwing: bytes(1216) }), /proof fields/)
  refused(enc({ t: 'proof', proof: bytes(32), xwing: bytes(1216) }), /proof fields/)
  refused(enc({ t: 'proof', proof: bytes(64), xwing: bytes(1215) }), /proof fields/)
  refused(enc({ t: 'welcome', mesh: 'm', name: 'n', founder: 'f', addrs: Array.from({ length: 33 }, () => '/ip4/1.2.3.4') }), /addrs/)
  refused(enc({ t: 'error', code: 'INVITER_UNREACHABLE', message: 'only the joiner concludes this' }), /error fields/)
  refused(enc({ t: 'error', code: 'NOT_A_CODE', message: 'x' }), /error fields/)
  // The same hello with its keys out of canonical order: one message, one encoding.
  refused(encode(new Map<string, unknown>([['v', PAIRING_VERSION], ['t', 'hello'], ['mesh', 'm'], ['invite', 'i']]), { mapSorter: () => 0 }), /canonical/)
  refused(new Uint8Array([0xff, 0x00]), /malformed pairing message/)
})

test('a proof naming a host refuses a name outside the host-name syntax with its own code', () => {
  const enc = (v: unknown): Uint8Array => encodeCanonical(v)
  for (const name of ['', '-x', 'web 1', 'a'.repeat(64), 'a'.repeat(5000), 42, new Uint8Array(3)]) {
    assert.throws(() => decodePairing(enc({ t: 'proof', proof: bytes(64), xwing: bytes(1216), name })),
      (err: unknown) => err instanceof PairingError && err.code === 'NAME_INVALID' && /host name/.test(err.message))
  }
  refused(enc({ t: 'proof', proof: bytes(64), xwing: bytes(1216), nick: 'web' }), /fields/)
})
