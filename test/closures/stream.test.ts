// Paced reading and bounded sending on a real libp2p stream: a reader that stops consuming
// makes the sender wait, instead of either side buffering the whole closure in memory.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { readPaced, send } from '../../protocols/closures/stream.js'
import { WRITE_HIGH_WATER } from '../../protocols/send.js'

const PROTOCOL = '/fleetmesh/test-paced/1.0.0'
const CHUNK = 256 * 1024
// 64 MiB: well past what may be in flight once paused (a 16 MiB yamux window and socket buffers).
const TOTAL = 256 * CHUNK
const HIGH_WATER = 1024 * 1024

function chunk (i: number): Uint8Array {
  return new Uint8Array(CHUNK).fill(i & 0xff)
}

async function until (cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 3000) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('paced streams', () => {
  let server: MeshLibp2p
  let client: MeshLibp2p
  let serverStream: Stream | undefined
  let sent = 0
  let blocked = false

  before(async () => {
    ;[server, client] = await Promise.all([0, 1].map(async () => await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })))
    await server.handle(PROTOCOL, (stream) => {
      serverStream = stream
      void (async () => {
        for await (const _ of readPaced(stream)) break // the client's go-ahead
        for (let i = 0; i < TOTAL / CHUNK; i++) {
          blocked = true
          await send(stream, chunk(i))
          blocked = false
          sent += CHUNK
        }
        await stream.close()
      })().catch((err: Error) => { stream.abort(err) })
    })
  })

  after(async () => {
    await Promise.all([server?.stop(), client?.stop()])
  })

  it('holds the sender back while the reader is not reading, then delivers every byte', async () => {
    const stream = await client.dialProtocol(server.getMultiaddrs()[0] as never, PROTOCOL)
    const reader = readPaced(stream, HIGH_WATER)
    await send(stream, Uint8Array.of(1))
    await stream.close()
    const first = await reader.next()
    assert.equal(first.done, false)
    await until(() => stream.readStatus === 'paused' && blocked, 'the stream to pause and the sender to block')
    assert.ok(sent < TOTAL / 2, `the sender got ${sent} bytes out to a stalled reader`)
    assert.ok((serverStream?.writeBufferLength ?? 0) <= WRITE_HIGH_WATER + CHUNK, 'the sender queues at most its high-water mark and one chunk')
    assert.ok(stream.readBufferLength <= stream.maxReadBufferLength, 'the paused reader stays under its read limit')
    const hash = createHash('sha256').update(first.value as Uint8Array)
    let received = (first.value as Uint8Array).byteLength
    for await (const c of { [Symbol.asyncIterator]: () => reader }) {
      hash.update(c)
      received += c.byteLength
      // A consumer slower than loopback, as nix-store --import writing to disk can be: every
      // resume then finds the buffer refilled, and a pause lost in a resume would overflow it.
      await new Promise(resolve => setImmediate(resolve))
    }
    assert.equal(received, TOTAL)
    const want = createHash('sha256')
    for (let i = 0; i < TOTAL / CHUNK; i++) want.update(chunk(i))
    assert.equal(hash.digest('hex'), want.digest('hex'))
  })
})
