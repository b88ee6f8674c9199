// `npm run bench -- handshake [--connections N] [--mib M] [--rounds R]`: the hybrid
// post-quantum encrypter against stock libp2p-noise between two libp2p nodes on loopback TCP
// (tcp + yamux + identify). (a) p50 time from dial to an identified connection over N
// sequential connections; (b) MiB/s of one stream carrying M MiB to a sink, best of R rounds.
// Also the p50 of the bare handshake (both encrypters over an in-memory pair, no TCP, no
// identify), which isolates the encrypter from the rest of the connection setup.
// Hybrid and classic runs alternate so background load on the machine hits both alike.
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { defaultLogger } from '@libp2p/logger'
import { tcp } from '@libp2p/tcp'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { hybridNoise } from '../../crypto/noise/index.js'
import type { ConnectionEncrypter, Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const SINK = '/fleetmesh/bench/sink/1.0.0'
const CHUNK = 64 * 1024

interface Pair { name: string, dialer: Libp2p, listener: Libp2p, address: Multiaddr }

async function makeNode (encrypter: (components: any) => ConnectionEncrypter): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [encrypter],
    streamMuxers: [yamux()],
    services: { identify: identify() },
    // sequential reconnects from one host would otherwise trip the 5-per-second limit
    connectionManager: { inboundConnectionThreshold: 100_000 }
  })
}

async function makePair (name: string, encrypter: () => (components: any) => ConnectionEncrypter): Promise<Pair> {
  const [dialer, listener] = await Promise.all([makeNode(encrypter()), makeNode(encrypter())])
  await listener.handle(SINK, async (stream) => {
    let received = 0
    for await (const chunk of stream) received += chunk.byteLength
    // one reply after the end, so the sender's clock stops when every byte has arrived
    stream.send(new TextEncoder().encode(String(received)))
    await stream.close()
  })
  return { name, dialer, listener, address: listener.getMultiaddrs()[0] }
}

function identified (node: Libp2p, peer: PeerId): Promise<void> {
  return new Promise(resolve => {
    const onIdentify = (evt: CustomEvent<{ peerId: PeerId }>): void => {
      if (!evt.detail.peerId.equals(peer)) return
      node.removeEventListener('peer:identify', onIdentify)
      resolve()
    }
    node.addEventListener('peer:identify', onIdentify)
  })
}

async function connectOnce (pair: Pair): Promise<number> {
  const done = identified(pair.dialer, pair.listener.peerId)
  const start = performance.now()
  await pair.dialer.dial(pair.address)
  await done
  const elapsed = performance.now() - start
  await pair.dialer.hangUp(pair.listener.peerId)
  return elapsed
}

async function sendThrough (pair: Pair, bytes: number): Promise<number> {
  const stream = await pair.dialer.dialProtocol(pair.address, SINK)
  const chunk = new Uint8Array(CHUNK).fill(0x5a)
  const reply = (async () => {
    let text = ''
    for await (const part of stream) text += new TextDecoder().decode(part.subarray())
    return Number(text)
  })()
  const start = performance.now()
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
  const received = await reply
  const seconds = (performance.now() - start) / 1000
  if (received !== bytes) throw new Error(`${pair.name}: sink received ${received} of ${bytes} bytes`)
  return bytes / (1024 * 1024) / seconds
}

type EncrypterFactory = () => (components: any) => ConnectionEncrypter

/** Bare handshake times: secureOutbound/secureInbound over an in-memory connection pair. */
async function bareHandshakes (factories: Record<string, EncrypterFactory>, count: number): Promise<Record<string, number[]>> {
  const [keyI, keyR] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
  const upgrader = { getStreamMuxers: () => new Map() }
  const make = (factory: EncrypterFactory, privateKey: unknown): ConnectionEncrypter => factory()({ privateKey, logger: defaultLogger(), upgrader })
  const pairs = Object.entries(factories).map(([name, f]) => ({ name, initiator: make(f, keyI), responder: make(f, keyR) }))
  const times: Record<string, number[]> = Object.fromEntries(pairs.map(p => [p.name, []]))
  for (let i = 0; i < count; i++) {
    for (const pair of i % 2 === 0 ? pairs : [...pairs].reverse()) {
      const [outbound, inbound] = multiaddrConnectionPair()
      const start = performance.now()
      await Promise.all([pair.initiator.secureOutbound(outbound), pair.responder.secureInbound(inbound)])
      times[pair.name].push(performance.now() - start)
      await Promise.all([outbound.close(), inbound.close()])
    }
  }
  return times
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits))

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const quick = args.includes('--quick')
  const { values } = parseArgs({
    args,
    options: {
      connections: { type: 'string', default: quick ? '20' : '200' },
      mib: { type: 'string', default: quick ? '8' : '64' },
      rounds: { type: 'string', default: quick ? '1' : '3' },
      quick: { type: 'boolean', default: false }
    }
  })
  const connections = Number(values.connections)
  const mib = Number(values.mib)
  const rounds = Number(values.rounds)
  if (!(connections >= 1 && mib >= 1 && rounds >= 1)) throw new Error('--connections, --mib and --rounds must be positive')

  const bare = await bareHandshakes({ hybrid: () => hybridNoise(), classic: () => noise() }, 4 * connections)
  console.error('handshake: bare handshakes done')

  const hybrid = await makePair('hybrid', () => hybridNoise())
  const classic = await makePair('classic', () => noise())
  try {
    // warm up both paths (JIT, module init) before measuring
    for (let i = 0; i < 5; i++) { await connectOnce(hybrid); await connectOnce(classic) }

    const times: Record<string, number[]> = { hybrid: [], classic: [] }
    for (let i = 0; i < connections; i++) {
      const order = i % 2 === 0 ? [hybrid, classic] : [classic, hybrid]
      for (const pair of order) times[pair.name].push(await connectOnce(pair))
      if ((i + 1) % 25 === 0) console.error(`handshake: ${i + 1}/${connections} connections each`)
    }

    const rates: Record<string, number[]> = { hybrid: [], classic: [] }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [hybrid, classic] : [classic, hybrid]
      for (const pair of order) rates[pair.name].push(await sendThrough(pair, mib * 1024 * 1024))
      console.error(`handshake: throughput round ${r + 1}/${rounds}: hybrid ${round(rates.hybrid.at(-1) ?? 0, 1)} classic ${round(rates.classic.at(-1) ?? 0, 1)} MiB/s`)
    }

    const hybridMs = median(times.hybrid)
    const classicMs = median(times.classic)
    // best round: the least disturbed by other processes on a shared machine
    const hybridRate = Math.max(...rates.hybrid)
    const classicRate = Math.max(...rates.classic)
    return {
      bench: 'handshake',
      connections,
      mib,
      hybrid_connect_ms_p50: round(hybridMs, 3),
      classic_connect_ms_p50: round(classicMs, 3),
      connect_ratio: round(hybridMs / classicMs, 3),
      hybrid_mib_s: round(hybridRate, 1),
      classic_mib_s: round(classicRate, 1),
      throughput_ratio: round(hybridRate / classicRate, 3),
      hybrid_bare_handshake_ms_p50: round(median(bare.hybrid), 3),
      classic_bare_handshake_ms_p50: round(median(bare.classic), 3)
    }
  } finally {
    await Promise.all([hybrid, classic].flatMap(p => [p.dialer.stop(), p.listener.stop()]))
  }
}
