// The audit-log attacks (issue 13, findings 4, 5, 6): an outsider feed relayed by the member, an
// entry of its own stamped an hour ahead, and two announcement floods, one naming random feeds,
// one its own feed at heads it never serves.
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { FleetHost } from '../harness/fleet.js'
import { encodeCanonical, HEADS_TOPIC, ZERO_HASH } from '../../protocols/audit/index.js'
import { entryHash } from '../../protocols/audit/codec.js'
import { signEntry, type Attacker } from './attacker.js'
import { entries, eventually, sleep, type HeapWatch, type Outcome } from './observe.js'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const randomFeed = (): string => '12D3KooW' + [...randomBytes(44)].map((b) => B58[b % 58]).join('')

/** The outsider feed and the future entry: neither may be stored by an honest host. */
export async function forgedEntries (m: Attacker, honest: FleetHost[]): Promise<Outcome[]> {
  const outsider = await generateKeyPair('Ed25519')
  const outsiderFeed = peerIdFromPrivateKey(outsider).toString()
  const chain: Uint8Array[] = []
  for (let seq = 0, prev = ZERO_HASH; seq < 20; seq++) {
    chain.push(signEntry(outsider, { seq, prev, ts: Date.now(), kind: 'blob', body: { seq, pad: 'x'.repeat(60 * 1024) } }))
    prev = entryHash(chain[seq])
  }
  await m.store.ingest(chain)
  // an ordinary entry first: once it replicated, the future one had every chance to
  const control = await m.store.append('status', { adversary: true })
  await m.forgeEntry('status', { future: true }, Date.now() + 3_600_000)
  await m.pull(honest.map((h) => h.peerId))
  const replicated = await eventually(async () => {
    for (const h of honest) if (!(await entries(h, m.id)).some((e) => e.seq === control.entry.seq)) return false
    return true
  }, 60_000)
  if (!replicated) throw new Error('the attacker\'s ordinary entry never replicated: the scenario proves nothing')
  await sleep(3000)
  const held = await Promise.all(honest.map(async (h) => ({
    outsider: (await entries(h, outsiderFeed)).length,
    future: (await entries(h, m.id)).filter((e) => e.seq > control.entry.seq).length
  })))
  return [
    { attack: 'outsider feed relayed', blocked: held.every((x) => x.outsider === 0) },
    { attack: 'entry stamped an hour ahead', blocked: held.every((x) => x.future === 0) }
  ]
}

/** The announcement floods; the member is banned and hung up on past the threshold, so they come last. */
export async function announcementFloods (m: Attacker, heap: HeapWatch, floods: number): Promise<Outcome[]> {
  const pubsub = m.libp2p.services.pubsub
  const before = heap.maxGrowthMiB
  for (let i = 0; i < floods; i++) {
    const heads = Array.from({ length: 1024 }, () => [randomFeed(), 1_000_000, randomBytes(32)])
    await pubsub.publish(HEADS_TOPIC, encodeCanonical({ heads })).catch(() => {})
  }
  await sleep(3000)
  const random = heap.maxGrowthMiB <= 64 && before <= 64
  for (let i = 0; i < floods * 2; i++) {
    await pubsub.publish(HEADS_TOPIC, encodeCanonical({ heads: [[m.id, 1_000_000 + i, randomBytes(32)]] })).catch(() => {})
  }
  await sleep(3000)
  return [
    { attack: 'announcements of random feeds', blocked: random },
    { attack: 'announcements of unserved own heads', blocked: heap.maxGrowthMiB <= 64 }
  ]
}
