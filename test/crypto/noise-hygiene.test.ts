// Secret hygiene of the hybrid encrypter on its @noble path, through a real libp2p handshake
// over a connection pair: what a finished handshake leaves in memory, and what a secured
// connection exposes as properties.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { nobleCrypto, type DhKeyPair, type HybridCrypto, type KemKeyPair } from '../../crypto/noise/crypto.js'
import { hybridNoise } from '../../crypto/noise/index.js'
import { CipherState } from '../../crypto/noise/protocol.js'
import type { MessageStream, StreamMessageEvent } from '@libp2p/interface'

/** @noble, recording every secret it hands out: DH outputs, KEM secrets, HKDF outputs, ephemeral pairs. */
interface Recording { crypto: HybridCrypto, secrets: Uint8Array[], dh: DhKeyPair[], kem: KemKeyPair[] }

/** One per encrypter: its first DH pair is its static key, the next ones its ephemerals in order. */
function recording (secrets: Uint8Array[]): Recording {
  const dh: DhKeyPair[] = []
  const kem: KemKeyPair[] = []
  const keep = <T extends Uint8Array>(v: T): T => { secrets.push(v); return v }
  let made = 0
  const crypto: HybridCrypto = {
    ...nobleCrypto,
    generateDhKeyPair: () => {
      const pair = nobleCrypto.generateDhKeyPair()
      // the static key lives as long as its encrypter; pairs made after it are ephemeral
      if (made++ > 0) dh.push(pair)
      return pair
    },
    generateKemKeyPair: () => { const pair = nobleCrypto.generateKemKeyPair(); kem.push(pair); return pair },
    dh: (l, r) => keep(nobleCrypto.dh(l, r)),
    kemEncapsulate: (pk) => { const out = nobleCrypto.kemEncapsulate(pk); keep(out.sharedSecret); return out },
    kemDecapsulate: (l, c) => keep(nobleCrypto.kemDecapsulate(l, c)),
    hkdf: (ck, ikm) => { const [a, b] = nobleCrypto.hkdf(ck, ikm); return [keep(a), keep(b)] }
  }
  return { crypto, secrets, dh, kem }
}

const privateHalf = (pair: DhKeyPair | KemKeyPair): Uint8Array => (pair as unknown as { privateKey?: Uint8Array, secretKey?: Uint8Array }).privateKey ?? (pair as unknown as { secretKey: Uint8Array }).secretKey

/** Every value reachable through own properties, to `depth` levels: what any code holding the object can read. */
function reachable (root: object, depth: number): unknown[] {
  const out: unknown[] = []
  const seen = new Set<unknown>()
  const walk = (v: unknown, d: number): void => {
    if (v === null || typeof v !== 'object' || seen.has(v) || d < 0) return
    seen.add(v)
    out.push(v)
    for (const k of Object.getOwnPropertyNames(v)) walk((v as Record<string, unknown>)[k], d - 1)
  }
  walk(root, depth)
  return out
}

async function secured (): Promise<{ i: MessageStream, r: MessageStream, used: Array<DhKeyPair | KemKeyPair>, secrets: Uint8Array[] }> {
  const secrets: Uint8Array[] = []
  const [recI, recR] = [recording(secrets), recording(secrets)]
  const [keyI, keyR] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
  const [outbound, inbound] = multiaddrConnectionPair()
  const encrypter = hybridNoise({ crypto: recI.crypto })({ privateKey: keyI, logger: defaultLogger() })
  const responder = hybridNoise({ crypto: recR.crypto })({ privateKey: keyR, logger: defaultLogger() })
  const [i, r] = await Promise.all([encrypter.secureOutbound(outbound), responder.secureInbound(inbound)])
  // the pairs the handshake used: later ones are pregenerated for the next handshake
  const used = [recI.dh[0]!, recI.kem[0]!, recR.dh[0]!]
  return { i: i.connection, r: r.connection, used, secrets }
}

describe('encrypter secret hygiene (@noble)', () => {
  it('a finished handshake has zeroed its ephemeral private keys, DH and KEM secrets and chaining keys', async () => {
    const { i, r, used, secrets } = await secured()
    assert.ok(secrets.length >= 10, 'the handshake produced its secrets')
    for (const pair of used) assert.ok(privateHalf(pair).every((b) => b === 0), 'an ephemeral private key survived the handshake')
    for (const s of secrets) assert.ok(s.every((b) => b === 0), 'a handshake secret survived the handshake')

    // The wiped copies were the handshake's own: the transport still works both ways.
    const received = new Promise<Uint8Array>((resolve) => { r.addEventListener('message', (e: StreamMessageEvent) => { resolve(e.data.subarray()) }, { once: true }) })
    i.send(new TextEncoder().encode('after the wipe'))
    assert.equal(new TextDecoder().decode(await received), 'after the wipe')
    await Promise.all([i.close(), r.close()])
  })

  it('no property of a secured connection reaches its cipher states or keys', async () => {
    const { i, r } = await secured()
    for (const stream of [i, r]) {
      const values = reachable(stream, 4)
      assert.ok(!values.some((v) => v instanceof CipherState), 'a cipher state is reachable through properties')
    }
    const cs = new CipherState(nobleCrypto, new Uint8Array(32).fill(1))
    assert.ok(cs.hasKey())
    assert.ok(!reachable(cs, 3).some((v) => v instanceof Uint8Array && v.length === 32 && v.every((b) => b === 1)), 'the key is reachable from its cipher state')
    await Promise.all([i.close(), r.close()])
  })
})
