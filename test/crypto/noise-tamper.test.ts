// Active attacks on the hybrid handshake and transport: every single-byte change of every
// handshake message, and of a transport frame, must end in a typed error, never in a
// completed handshake on both sides or in delivered data.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { nativeCrypto } from '../../crypto/noise/crypto.js'
import { HybridNoiseError, MalformedMessageError, TransportDecryptError } from '../../crypto/noise/errors.js'
import { performHandshakeInitiator, performHandshakeResponder, signStaticKey } from '../../crypto/noise/handshake.js'
import { hybridNoise } from '../../crypto/noise/index.js'
import { ZEROLEN } from '../../crypto/noise/protocol.js'
import type { HandshakeChannel, HandshakeResult } from '../../crypto/noise/handshake.js'
import type { MessageStream, PrivateKey } from '@libp2p/interface'

const log = defaultLogger().forComponent('test:noise-tamper')
const [keyI, keyR] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
const staticI = nativeCrypto.generateDhKeyPair()
const staticR = nativeCrypto.generateDhKeyPair()
const [identityI, identityR] = await Promise.all([signStaticKey(keyI, staticI.publicKey), signStaticKey(keyR, staticR.publicKey)])

class Closed extends Error {}

/** In-memory framed channels; `tamper` may rewrite the k-th message (0 = A, 1 = B, 2 = C). */
function channelPair (tamper: (index: number, message: Uint8Array) => Uint8Array): { i: HandshakeChannel, r: HandshakeChannel, close: () => void, sizes: number[] } {
  const queues = [[] as Uint8Array[], [] as Uint8Array[]]
  const waiting: Array<((m: Uint8Array | Error) => void) | undefined> = [undefined, undefined]
  const sizes: number[] = []
  let closed = false
  const end = (side: number): HandshakeChannel => ({
    async write (message) {
      if (closed) throw new Closed()
      const delivered = tamper(sizes.length, Uint8Array.from(message))
      sizes.push(message.byteLength)
      const to = 1 - side
      const wake = waiting[to]
      if (wake !== undefined) { waiting[to] = undefined; wake(delivered) } else queues[to].push(delivered)
    },
    async read () {
      const queued = queues[side].shift()
      if (queued !== undefined) return queued
      if (closed) throw new Closed()
      const next = await new Promise<Uint8Array | Error>(resolve => { waiting[side] = resolve })
      if (next instanceof Error) throw next
      return next
    }
  })
  const close = (): void => {
    closed = true
    for (const wake of waiting) wake?.(new Closed())
  }
  return { i: end(0), r: end(1), close, sizes }
}

async function run (tamper: (index: number, message: Uint8Array) => Uint8Array): Promise<{ results: Array<PromiseSettledResult<HandshakeResult>>, sizes: number[] }> {
  const { i, r, close, sizes } = channelPair(tamper)
  const common = { crypto: nativeCrypto, prologue: ZEROLEN, log }
  // whichever side fails first closes the channels so its peer stops waiting
  const guard = async (p: Promise<HandshakeResult>): Promise<HandshakeResult> => {
    try { return await p } catch (err) { close(); throw err }
  }
  const results = await Promise.allSettled([
    guard(performHandshakeInitiator({ ...common, channel: i, identity: identityI, s: staticI, remoteIdentityKey: keyR.publicKey })),
    guard(performHandshakeResponder({ ...common, channel: r, identity: identityR, s: staticR }))
  ])
  return { results, sizes }
}

function assertRejected (results: Array<PromiseSettledResult<HandshakeResult>>, what: string): void {
  const failures = results.filter(r => r.status === 'rejected').map(r => r.reason as Error)
  assert.ok(failures.length > 0, `${what}: both sides completed the handshake`)
  const typed = failures.filter(e => !(e instanceof Closed))
  assert.equal(typed.length, 1, `${what}: exactly one side detects the change`)
  assert.ok(typed[0] instanceof HybridNoiseError, `${what}: untyped ${typed[0]?.name}: ${typed[0]?.message}`)
}

describe('handshake tampering', () => {
  it('an untouched handshake completes with matching keys (control)', async () => {
    const { results, sizes } = await run((_, m) => m)
    assert.deepEqual(sizes.length, 3)
    const [ri, rr] = results
    assert.equal(ri.status, 'fulfilled')
    assert.equal(rr.status, 'fulfilled')
    if (ri.status !== 'fulfilled' || rr.status !== 'fulfilled') return
    assert.deepEqual(ri.value.handshakeHash, rr.value.handshakeHash)
    assert.ok(ri.value.remoteIdentityKey.equals(keyR.publicKey))
    assert.ok(rr.value.remoteIdentityKey.equals(keyI.publicKey))
  })

  it('flipping any single byte of message A, B or C makes the handshake fail with a typed error', async () => {
    const { sizes } = await run((_, m) => m)
    const codes = new Map<string, number>()
    for (let message = 0; message < 3; message++) {
      for (let byte = 0; byte < sizes[message]; byte++) {
        const { results } = await run((index, m) => {
          if (index === message) m[byte] ^= 0x01
          return m
        })
        assertRejected(results, `message ${'ABC'[message]} byte ${byte}`)
        const err = results.find(r => r.status === 'rejected' && !(r.reason instanceof Closed)) as PromiseRejectedResult
        codes.set(err.reason.code, (codes.get(err.reason.code) ?? 0) + 1)
      }
    }
    // every flip is caught by authentication or by a primitive's key check
    for (const code of codes.keys()) assert.ok(['HANDSHAKE_DECRYPT_FAILED', 'INVALID_PUBLIC_KEY'].includes(code), code)
    assert.equal([...codes.values()].reduce((a, b) => a + b), sizes[0] + sizes[1] + sizes[2])
  })

  it('a message shorter than its fixed fields is refused as malformed', async () => {
    // A: e + e1; B: e + ekem1 + s + payload tag; C: s + payload tag
    const minimum = [32 + 1184, 32 + 1088 + 16 + 48 + 16, 48 + 16]
    for (let message = 0; message < 3; message++) {
      const { results } = await run((index, m) => index === message ? m.subarray(0, minimum[message] - 1) : m)
      assertRejected(results, `truncated ${'ABC'[message]}`)
      const err = results.find(r => r.status === 'rejected' && !(r.reason instanceof Closed)) as PromiseRejectedResult
      assert.ok(err.reason instanceof MalformedMessageError, `truncated ${'ABC'[message]}: ${err.reason}`)
    }
  })

  it('a message cut or extended by one byte fails', async () => {
    for (let message = 0; message < 3; message++) {
      for (const change of [(m: Uint8Array) => m.subarray(0, m.byteLength - 1), (m: Uint8Array) => Uint8Array.of(...m, 0)]) {
        const { results } = await run((index, m) => index === message ? change(m) : m)
        assertRejected(results, `resized ${'ABC'[message]}`)
      }
    }
  })
})

/**
 * Two secured ends joined through a relay; `flipAfterHandshake(n)` makes it flip the n-th
 * initiator→responder byte sent after the handshake.
 */
async function securedThroughRelay (): Promise<{ initiator: MessageStream, responder: MessageStream, flipAfterHandshake: (offset: number) => void }> {
  const [iOut, iRelay] = multiaddrConnectionPair()
  const [rRelay, rIn] = multiaddrConnectionPair()
  let seen = 0
  let target = -1
  iRelay.addEventListener('message', (evt) => {
    const bytes = Uint8Array.from(evt.data.subarray())
    if (target >= seen && target < seen + bytes.byteLength) bytes[target - seen] ^= 0x80
    seen += bytes.byteLength
    rRelay.send(bytes)
  })
  rRelay.addEventListener('message', (evt) => { iRelay.send(evt.data) })
  // closing a multiaddr connection closes both directions, so pass the close on
  iRelay.addEventListener('close', () => { void rRelay.close() })
  const encrypter = (privateKey: PrivateKey) => hybridNoise({ crypto: nativeCrypto })({ privateKey, logger: defaultLogger() })
  const [outbound, inbound] = await Promise.all([
    encrypter(keyI).secureOutbound(iOut),
    encrypter(keyR).secureInbound(rIn)
  ])
  return { initiator: outbound.connection, responder: inbound.connection, flipAfterHandshake: (offset) => { target = seen + offset } }
}

async function collect (stream: MessageStream): Promise<{ data: Uint8Array, error?: Error }> {
  const chunks: Uint8Array[] = []
  try {
    for await (const chunk of stream) chunks.push(chunk.subarray())
    return { data: Buffer.concat(chunks) }
  } catch (error) {
    return { data: Buffer.concat(chunks), error: error as Error }
  }
}

describe('transport tampering', () => {
  const message = new TextEncoder().encode('deploy generation 42 to wave 1')
  const frameBytes = message.byteLength + 16

  it('an untouched frame is delivered (control)', async () => {
    const { initiator, responder } = await securedThroughRelay()
    const received = collect(responder)
    initiator.send(message)
    await initiator.close()
    const { data, error } = await received
    assert.equal(error, undefined)
    assert.deepEqual(new Uint8Array(data), message)
  })

  it('flipping any byte of a transport frame aborts the stream and delivers nothing', async () => {
    for (let byte = 0; byte < frameBytes; byte++) {
      const { initiator, responder, flipAfterHandshake } = await securedThroughRelay()
      flipAfterHandshake(2 + byte) // past the frame's length prefix
      const received = collect(responder)
      initiator.send(message)
      await initiator.close()
      const { data, error } = await received
      assert.equal(data.byteLength, 0, `byte ${byte}: altered data delivered`)
      assert.ok(error instanceof TransportDecryptError, `byte ${byte}: ${String(error)}`)
    }
  })
})
