// The handshake payload schema: round trip, and typed refusal of truncated, oversize and
// malformed input.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeLength, decodePayload, encodeLength, encodePayload } from '../../crypto/noise/codec.js'
import { MalformedMessageError, MessageTooLargeError } from '../../crypto/noise/errors.js'

const payload = {
  identityKey: new Uint8Array(36).fill(1),
  identitySig: new Uint8Array(64).fill(2),
  extensions: { webtransportCerthashes: [new Uint8Array([9, 9])], streamMuxers: ['/yamux/1.0.0'] }
}

describe('handshake payload codec', () => {
  it('round-trips, with and without extensions', () => {
    assert.deepEqual(decodePayload(encodePayload(payload)), payload)
    const { extensions: _, ...bare } = payload
    assert.deepEqual(decodePayload(encodePayload(bare)), bare)
  })

  it('skips unknown fields as protobuf requires', () => {
    const withUnknown = Uint8Array.of(...encodePayload(payload), 3 << 3 | 2, 1, 0xff, 5 << 3 | 0, 7)
    assert.deepEqual(decodePayload(withUnknown), payload)
  })

  it('refuses every truncation except at the optional field\'s boundary', () => {
    const bytes = encodePayload(payload)
    // cut just before `extensions` the bytes are a valid payload without them: protobuf cannot tell
    const { extensions: _, ...bare } = payload
    const boundary = encodePayload(bare).byteLength
    for (let length = 0; length < bytes.byteLength; length++) {
      if (length === boundary) continue
      assert.throws(() => decodePayload(bytes.subarray(0, length)), MalformedMessageError, `length ${length}`)
    }
  })

  it('refuses oversize fields and too many extension entries', () => {
    const oversize = [
      encodePayload({ ...payload, identityKey: new Uint8Array(4096) }),
      encodePayload({ ...payload, identitySig: new Uint8Array(4096) }),
      encodePayload({ ...payload, extensions: { webtransportCerthashes: [new Uint8Array(2000)], streamMuxers: [] } }),
      encodePayload({ ...payload, extensions: { webtransportCerthashes: [], streamMuxers: Array(40).fill('/m') } })
    ]
    for (const bytes of oversize) assert.throws(() => decodePayload(bytes), MessageTooLargeError)
  })

  it('refuses missing fields, wrong wire types and bad UTF-8', () => {
    const cases: Array<[string, Uint8Array]> = [
      ['no signature', encodePayload({ ...payload, identitySig: new Uint8Array(0) })],
      ['no key', encodePayload({ ...payload, identityKey: new Uint8Array(0) })],
      ['key as varint', Uint8Array.of(1 << 3 | 0, 1, ...encodePayload(payload).subarray(0))],
      ['group wire type', Uint8Array.of(...encodePayload(payload), 6 << 3 | 3)],
      // extensions { stream_muxers: [0xff] }
      ['bad utf-8', Uint8Array.of(...encodePayload({ identityKey: payload.identityKey, identitySig: payload.identitySig }), 4 << 3 | 2, 3, 2 << 3 | 2, 1, 0xff)]
    ]
    for (const [what, bytes] of cases) assert.throws(() => decodePayload(bytes), MalformedMessageError, what)
  })
})

describe('length prefix', () => {
  it('is 2 bytes big-endian and asks for more bytes with a RangeError', () => {
    assert.deepEqual([...encodeLength(0x1234)], [0x12, 0x34])
    assert.equal(decodeLength(Uint8Array.of(0xff, 0xff)), 65535)
    assert.throws(() => decodeLength(Uint8Array.of(1)), RangeError)
  })
})
