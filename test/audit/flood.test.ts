// Issue 13, finding 4: a member flooding heads announcements and sync requests, through real
// libp2p. What it can make an honest host hold (wants, waiters, validations, heap) stays bounded.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createMeshLibp2p } from '../../node/libp2p.js'
import { encodeCanonical } from '../../protocols/audit/codec.js'
import type { PenaltyEvent } from '../../protocols/audit/penalties.js'
import { HEADS_TOPIC } from '../../protocols/audit/wire.js'
import { startNode, connect, until, craftChain } from './helpers.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapMiB (): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed / 2 ** 20
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
function randomFeed (): string {
  return '12D3KooW' + [...randomBytes(44)].map(b => B58[b % 58]).join('')
}

/** Waits until `read` has not changed for a while: the host has worked through what it was sent. */
async function quiet (read: () => string, what: string): Promise<void> {
  let last = read()
  let since = Date.now()
  await until(() => {
    const now = read()
    if (now !== last) {
      last = now
      since = Date.now()
    }
    return Date.now() - since > 1500
  }, what, 120_000)
}

test('a member flooding ~98 KB announcements of random feeds, then its own feed at heads nobody holds: wants, waiters and heap stay bounded and it is penalised', { timeout: 300_000 }, async () => {
  const mKey = await generateKeyPair('Ed25519')
  const mId = peerIdFromPrivateKey(mKey).toString()
  const members = new Set<string>([mId])
  // No ban, so that every message is processed: the bound must come from the budgets, not the ban.
  const h = await startNode({ syncOpts: { wantFeed: (feed: string) => members.has(feed), banThreshold: 1e9 } })
  members.add(h.store.feed as string)
  const m = await createMeshLibp2p({ privateKey: mKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const penalties: PenaltyEvent[] = []
  h.sync.on('penalty', (p) => penalties.push(p))
  let maxWants = 0
  let maxValidations = 0
  const sampler = setInterval(() => {
    const s = h.sync.stats()
    maxWants = Math.max(maxWants, s.wants)
    maxValidations = Math.max(maxValidations, s.validations)
  }, 10)
  try {
    m.services.pubsub.subscribe(HEADS_TOPIC)
    await connect(m, h.libp2p)
    await until(() => m.services.pubsub.getSubscribers(HEADS_TOPIC).some(p => p.equals(h.libp2p.peerId)), 'subscriptions to propagate')
    const before = heapMiB()

    // The attack: 200 announcements of 1024 heads of random base58 feeds, ~98 KB each.
    let bytes = 0
    for (let i = 0; i < 200; i++) {
      const heads = Array.from({ length: 1024 }, () => [randomFeed(), 1_000_000, randomBytes(32)])
      const data = encodeCanonical({ heads })
      bytes += data.length
      await m.services.pubsub.publish(HEADS_TOPIC, data)
    }
    assert.ok(bytes / 200 > 90_000, `announcements of ~98 KB (got ${Math.round(bytes / 200)})`)
    await quiet(() => `${penalties.length} ${JSON.stringify(h.sync.stats())}`, 'the flood to be processed')
    const floodGrowth = heapMiB() - before
    assert.ok(floodGrowth < 64, `heap grew ${floodGrowth.toFixed(1)} MiB under the flood`)
    assert.ok(maxWants <= 0, `wants peaked at ${maxWants}`)
    assert.ok(penalties.length > 0 && penalties.every(p => p.peer === mId && p.error.code === 'MESSAGE_TOO_LARGE'), JSON.stringify(penalties.slice(0, 3).map(p => p.error.code)))

    // Then well-formed announcements of its own feed, at heads it never serves, as fast as it can.
    for (let i = 0; i < 500; i++) {
      await m.services.pubsub.publish(HEADS_TOPIC, encodeCanonical({ heads: [[mId, 1_000_000 + i, randomBytes(32)]] }))
    }
    await until(() => penalties.some(p => p.error.code === 'OVER_BUDGET'), 'the publisher to go over its rate')
    await quiet(() => JSON.stringify(h.sync.stats()) + penalties.length, 'the own-feed flood to be processed')
    const growth = heapMiB() - before
    assert.ok(growth < 64, `heap grew ${growth.toFixed(1)} MiB`)
    assert.ok(maxWants <= 1, `wants peaked at ${maxWants}: only the member's own feed may be wanted`)
    assert.ok(maxValidations <= 4, `validations in flight peaked at ${maxValidations}`)
    // Nobody holds those heads: the want expires instead of staying forever.
    await until(() => h.sync.stats().wants === 0, 'the unsatisfiable want to expire', 120_000)
    await until(() => h.sync.stats().waiters === 0 && h.sync.stats().validations === 0, 'validations to settle', 120_000)
  } finally {
    clearInterval(sampler)
    await m.stop()
    await h.stop()
  }
})

test('only feeds that are or were members are wanted: a peer\'s head vector naming an outsider feed pulls nothing of it, until the feed is learned as a member', { timeout: 120_000 }, async () => {
  const outsider = await generateKeyPair('Ed25519')
  const outsiderFeed = peerIdFromPrivateKey(outsider).toString()
  const n = await startNode()
  const members = new Set<string>([n.store.feed as string])
  const h = await startNode({ syncOpts: { wantFeed: (feed: string) => members.has(feed) } })
  try {
    const r = await n.store.ingest(craftChain(outsider, 5).map(e => e.bytes))
    assert.equal(r.stored.length, 5)
    await n.store.append('status', { n: 1 })
    // Learning a member from an entry just pulled (as a joining host learns them from admits):
    // the same head exchange then pulls the feed it could not want before.
    let learned = 0
    h.store.on('entry', (s) => { if (s.entry.feed === n.store.feed && learned++ === 0) members.add(outsiderFeed) })
    await connect(h.libp2p, n.libp2p)
    await until(() => h.store.head(outsiderFeed)?.seq === 4, 'H to pull the feed once it is a member')
    assert.equal(h.store.head(n.store.feed as string)?.seq, 0)

    // A feed that is not a member is never pulled, however often a peer offers it.
    const other = await generateKeyPair('Ed25519')
    const otherFeed = peerIdFromPrivateKey(other).toString()
    await n.store.ingest(craftChain(other, 3).map(e => e.bytes))
    await n.store.append('status', { n: 2 })
    await until(() => h.store.head(n.store.feed as string)?.seq === 1, 'H to follow N')
    await h.sync.syncWith(n.libp2p.peerId)
    await h.sync.syncWith(n.libp2p.peerId)
    await until(() => h.sync.stats().waiters === 0, 'the exchanges to settle')
    assert.equal(h.store.head(otherFeed), undefined)
    assert.equal(h.sync.stats().wants, 0)
  } finally {
    await h.stop()
    await n.stop()
  }
})

test('range requests have a per-peer rate budget: past it the requester gets OVER_BUDGET error frames and is penalised', { timeout: 120_000 }, async () => {
  const h = await startNode({ syncOpts: { rangeBudget: { maxBytes: 512, burst: 5, perSecond: 0.01 }, banThreshold: 1e9 } })
  const c = await startNode()
  const penalties: PenaltyEvent[] = []
  h.sync.on('penalty', (p) => penalties.push(p))
  try {
    await connect(c.libp2p, h.libp2p)
    const outcomes: string[] = []
    for (let i = 0; i < 12; i++) {
      outcomes.push(await c.sync.pull(h.libp2p.peerId, h.store.feed as string, 0, 0).then(r => r.error?.message ?? 'ok'))
    }
    const refused = outcomes.filter(o => o.includes('OVER_BUDGET'))
    assert.deepEqual(outcomes.slice(0, 5), Array(5).fill('ok'), 'the burst is served')
    assert.equal(refused.length, 7, JSON.stringify(outcomes))
    await until(() => penalties.filter(p => p.error.code === 'OVER_BUDGET').length >= refused.length, 'each refusal to be penalised')
    assert.ok(penalties.every(p => p.peer === c.libp2p.peerId.toString()))
  } finally {
    await c.stop()
    await h.stop()
  }
})
