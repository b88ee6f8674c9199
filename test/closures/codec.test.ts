// The closure protocol's wire schemas and framing, without Nix or a network.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encode } from 'cborg'
import { encodeCanonical } from '../../protocols/canonical.js'
import {
  MAX_HEADER_BYTES, MAX_REQUEST_BYTES, decodeHeader, decodeRequest, encodeHeader, encodeRequest, frame, type ClosureHeader
} from '../../protocols/closures/codec.js'
import { FrameReader, exactly } from '../../protocols/closures/stream.js'
import type { PathInfo } from '../../protocols/closures/index.js'

const TOP = '/nix/store/a8spvqsbbpp7h2mgrfa2cf2dqh1gvyp0-fleetmesh-fixture-system-1'
const DEP = '/nix/store/b8spvqsbbpp7h2mgrfa2cf2dqh1gvyp0-fleetmesh-fixture-service'
const HASH = 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='

const infos = (): PathInfo[] => [
  { path: TOP, narHash: HASH, narSize: 1000, references: [DEP], signatures: ['fleet-1:' + 'A'.repeat(86) + '=='] },
  { path: DEP, narHash: HASH, narSize: 500, references: [], signatures: [] }
]
const ok = (): ClosureHeader => ({ ok: true, infos: infos(), bytes: 2000 })

async function * chunks (bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

async function collect (it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = []
  for await (const c of it) out.push(c)
  return Buffer.concat(out)
}

describe('closure codec', () => {
  it('round-trips a request and both kinds of header', () => {
    assert.deepEqual(decodeRequest(encodeRequest({ path: TOP })), { path: TOP })
    assert.deepEqual(decodeHeader(encodeHeader(ok())), ok())
    const refused: ClosureHeader = { ok: false, code: 'PATH_NOT_FOUND', message: 'not here' }
    assert.deepEqual(decodeHeader(encodeHeader(refused)), refused)
  })

  it('encodes canonically, so equal headers are equal bytes', () => {
    const reordered = infos().map(i => ({ signatures: i.signatures, references: i.references, path: i.path, narSize: i.narSize, narHash: i.narHash }))
    assert.deepEqual(encodeHeader({ bytes: 2000, infos: reordered, ok: true }), encodeHeader(ok()))
  })

  it('rejects requests that are not one valid store path', () => {
    assert.throws(() => encodeRequest({ path: '/etc/passwd' }), { code: 'INVALID_STORE_PATH' })
    assert.throws(() => decodeRequest(encodeCanonical({ path: '/nix/store/x.drv' })), { code: 'INVALID_STORE_PATH' })
    assert.throws(() => decodeRequest(encodeCanonical({ path: TOP, extra: 1 })), { code: 'MESSAGE_MALFORMED' })
    assert.throws(() => decodeRequest(encodeCanonical([TOP])), { code: 'MESSAGE_MALFORMED' })
    assert.throws(() => decodeRequest(new Uint8Array(MAX_REQUEST_BYTES + 1)), { code: 'MESSAGE_TOO_LARGE' })
    const good = encodeRequest({ path: TOP })
    assert.throws(() => decodeRequest(good.subarray(0, good.length - 1)), { code: 'MESSAGE_MALFORMED' })
    // Same value, non-canonical encoding (a longer length form than needed).
    const loose = Buffer.from(encode({ path: TOP }))
    loose[0] = 0xb8
    assert.throws(() => decodeRequest(Buffer.concat([loose.subarray(0, 1), Buffer.of(1), loose.subarray(1)])), { code: 'MESSAGE_MALFORMED' })
  })

  it('rejects headers that break the schema', () => {
    const mutate = (f: (h: Record<string, any>) => void): Uint8Array => {
      const h: Record<string, any> = { ok: true, infos: infos(), bytes: 2000 }
      f(h)
      return encodeCanonical(h)
    }
    const cases: Array<[string, Uint8Array]> = [
      ['bad hash', mutate(h => { h.infos[0].narHash = 'md5-abc' })],
      ['zero size', mutate(h => { h.infos[1].narSize = 0 })],
      ['bad path', mutate(h => { h.infos[1].path = '/tmp/x' })],
      ['bad reference', mutate(h => { h.infos[0].references = ['/nix/store/zzz'] })],
      ['dangling reference', mutate(h => { h.infos = [h.infos[0]] })],
      ['duplicate path', mutate(h => { h.infos = [h.infos[1], h.infos[1]] })],
      ['no infos', mutate(h => { h.infos = [] })],
      ['extra field', mutate(h => { h.infos[0].deriver = 'x' })],
      ['too many signatures', mutate(h => { h.infos[1].signatures = Array(17).fill('k:sig') })],
      ['empty signature', mutate(h => { h.infos[1].signatures = [''] })],
      ['bytes not above the NARs', mutate(h => { h.bytes = 1500 })],
      ['bytes negative', mutate(h => { h.bytes = -1 })],
      ['no ok flag', mutate(h => { delete h.ok })],
      ['unknown error code', encodeCanonical({ ok: false, code: 'PWNED', message: 'x' })],
      ['long error message', encodeCanonical({ ok: false, code: 'PEER_BUSY', message: 'x'.repeat(1025) })],
      ['error with infos', encodeCanonical({ ok: false, code: 'PEER_BUSY', message: 'x', infos: [] })]
    ]
    for (const [what, bytes] of cases) assert.throws(() => decodeHeader(bytes), { code: 'MESSAGE_MALFORMED' }, what)
    assert.throws(() => decodeHeader(new Uint8Array(MAX_HEADER_BYTES + 1)), { code: 'MESSAGE_TOO_LARGE' })
  })

  it('reads frames then the raw rest, whatever the chunking', async () => {
    const raw = Buffer.from('raw export bytes follow the header')
    const wire = Buffer.concat([frame(encodeRequest({ path: TOP })), frame(encodeHeader(ok())), raw])
    for (const size of [1, 3, 7, 64, wire.length]) {
      const reader = new FrameReader(chunks(wire, size))
      assert.deepEqual(decodeRequest(await reader.frame(MAX_REQUEST_BYTES)), { path: TOP })
      assert.deepEqual(decodeHeader(await reader.frame(MAX_HEADER_BYTES)), ok())
      assert.deepEqual(await collect(reader.rest()), raw)
    }
  })

  it('rejects an oversize or truncated frame', async () => {
    const big = frame(new Uint8Array(MAX_REQUEST_BYTES + 1))
    await assert.rejects(new FrameReader(chunks(big, 5)).frame(MAX_REQUEST_BYTES), { code: 'MESSAGE_TOO_LARGE' })
    const good = frame(encodeRequest({ path: TOP }))
    await assert.rejects(new FrameReader(chunks(good.subarray(0, 2), 1)).frame(MAX_REQUEST_BYTES), { code: 'STREAM_TRUNCATED' })
    await assert.rejects(new FrameReader(chunks(good.subarray(0, good.length - 1), 4)).frame(MAX_REQUEST_BYTES), { code: 'STREAM_TRUNCATED' })
    await assert.rejects(new FrameReader(chunks(new Uint8Array(0), 1)).frame(MAX_REQUEST_BYTES), { code: 'STREAM_TRUNCATED' })
  })

  it('holds the raw rest to exactly the announced length', async () => {
    const raw = Buffer.alloc(100, 7)
    assert.deepEqual(await collect(exactly(chunks(raw, 30), 100)), raw)
    await assert.rejects(collect(exactly(chunks(raw, 30), 101)), { code: 'STREAM_TRUNCATED' })
    await assert.rejects(collect(exactly(chunks(raw, 30), 99)), { code: 'MESSAGE_MALFORMED' })
  })
})
