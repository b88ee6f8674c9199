// The hybrid encrypter inside real libp2p nodes on loopback TCP: nodes connect, identify and
// ping with the authenticated peer id; a classic-Noise-only peer is refused in both directions;
// a node:crypto side and a @noble side interoperate.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { defaultLogger } from '@libp2p/logger'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { HYBRID_NOISE_PROTOCOL, hybridNoise, nativeCrypto, nobleCrypto } from '../../crypto/noise/index.js'
import type { HybridCrypto } from '../../crypto/noise/index.js'
import type { ConnectionEncrypter, Libp2p, MessageStream, PrivateKey } from '@libp2p/interface'

const started: Libp2p[] = []
after(async () => { await Promise.all(started.map(async n => { await n.stop() })) })

async function node (encrypter: (components: any) => ConnectionEncrypter) {
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [encrypter],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })
  started.push(n)
  return n
}

describe('hybrid noise in libp2p over TCP', () => {
  it('two hybrid nodes connect, ping, and see each other\'s real peer id', async () => {
    const [a, b] = await Promise.all([node(hybridNoise()), node(hybridNoise())])
    const rtt = await a.services.ping.ping(b.getMultiaddrs()[0])
    assert.ok(rtt >= 0)
    const [conn] = a.getConnections(b.peerId)
    assert.ok(conn.remotePeer.equals(b.peerId))
    assert.equal(conn.encryption, HYBRID_NOISE_PROTOCOL)
    const [back] = b.getConnections(a.peerId)
    assert.ok(back.remotePeer.equals(a.peerId))
    // and in the other direction, over a fresh connection
    await b.hangUp(a.peerId)
    assert.ok(await b.services.ping.ping(a.getMultiaddrs()[0]) >= 0)
  })

  it('a classic-only peer is refused in both directions', async () => {
    const [hybrid, classic] = await Promise.all([node(hybridNoise()), node(noise())])
    // refused at encrypter negotiation: neither side offers the other's protocol, no fallback
    await assert.rejects(hybrid.dial(classic.getMultiaddrs()[0]), { name: 'EncryptionFailedError' })
    await assert.rejects(classic.dial(hybrid.getMultiaddrs()[0]), { name: 'EncryptionFailedError' })
    assert.equal(hybrid.getConnections().length, 0)
    assert.equal(classic.getConnections().length, 0)
  })
})

describe('node:crypto ↔ @noble interoperability', () => {
  const encrypter = (privateKey: PrivateKey, crypto: HybridCrypto) => hybridNoise({ crypto })({ privateKey, logger: defaultLogger() })

  async function echoOnce (stream: MessageStream): Promise<void> {
    for await (const chunk of stream) stream.send(chunk)
  }

  for (const [initiator, responder] of [[nativeCrypto, nobleCrypto], [nobleCrypto, nativeCrypto]]) {
    it(`${initiator.name} initiator with ${responder.name} responder`, async () => {
      const [keyI, keyR] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
      const [out, inc] = multiaddrConnectionPair()
      const [o, i] = await Promise.all([
        encrypter(keyI, initiator).secureOutbound(out),
        encrypter(keyR, responder).secureInbound(inc)
      ])
      assert.ok(o.remotePeer.publicKey?.equals(keyR.publicKey))
      assert.ok(i.remotePeer.publicKey?.equals(keyI.publicKey))
      void echoOnce(i.connection).catch(() => {})
      // larger than one Noise message, so chunking is exercised across implementations
      const payload = new Uint8Array(200_000).map((_, n) => n * 7)
      const received: Uint8Array[] = []
      let total = 0
      const done = (async () => {
        for await (const chunk of o.connection) {
          received.push(chunk.subarray())
          total += chunk.byteLength
          if (total >= payload.byteLength) break
        }
      })()
      o.connection.send(payload)
      await done
      assert.deepEqual(new Uint8Array(Buffer.concat(received)), payload)
      await o.connection.close()
    })
  }
})
