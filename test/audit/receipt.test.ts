// Issue 13, findings 5 and 6 at the store, through real libp2p: claimed time is bounded on
// receipt (an entry stamped beyond the skew bound is refused, unpenalised, and stored once the
// receiver's clock is within the bound), and entries of unknown kinds have a small size cap.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { entryHash, ZERO_HASH } from '../../protocols/audit/codec.js'
import type { PenaltyEvent } from '../../protocols/audit/penalties.js'
import { CLOCK_SKEW_MS, UNKNOWN_KIND_MAX_BYTES } from '../../protocols/audit/store.js'
import { startNode, connect, until, craft, openStore } from './helpers.js'

test('an entry stamped beyond the skew bound is refused with CLOCK_AHEAD, unpenalised, its feed held there; once the receiver\'s clock is within the bound it is stored', { timeout: 120_000 }, async () => {
  const author = await generateKeyPair('Ed25519')
  const feed = peerIdFromPrivateKey(author).toString()
  const now = Date.now()
  const e0 = craft(author, { seq: 0, prev: ZERO_HASH, ts: now })
  const e1 = craft(author, { seq: 1, prev: entryHash(e0.bytes), ts: now + 60 * 60_000 })
  const e2 = craft(author, { seq: 2, prev: entryHash(e1.bytes), ts: now + 60 * 60_000 + 1 })
  // The relay's clock runs an hour ahead, so it holds the entries; the receiver's does not.
  const relay = await startNode({ now: () => Date.now() + 60 * 60_000 })
  const clock = { offsetMs: 0 }
  const h = await startNode({ now: () => Date.now() + clock.offsetMs })
  const penalties: PenaltyEvent[] = []
  h.sync.on('penalty', (p) => penalties.push(p))
  try {
    assert.equal((await relay.store.ingest([e0.bytes, e1.bytes, e2.bytes])).stored.length, 3)
    const direct = await h.store.ingest([e0.bytes, e1.bytes])
    assert.equal(direct.error?.code, 'CLOCK_AHEAD')
    assert.equal(direct.stored.length, 1)
    await connect(h.libp2p, relay.libp2p)
    await until(() => h.store.head(feed)?.seq === 0, 'H to sync with the relay')
    const pulled = await h.sync.pull(relay.libp2p.peerId, feed, 1, 2)
    assert.equal(pulled.error?.code, 'CLOCK_AHEAD')
    assert.equal(h.store.head(feed)?.seq, 0, 'held at the last entry within the bound')
    assert.deepEqual(penalties, [], 'an honest relay of a fast author is not at fault')
    // This host's clock catches up (or the stamp's time comes): the next head exchange pulls them.
    clock.offsetMs = 60 * 60_000 - CLOCK_SKEW_MS + 1000
    await h.sync.syncWith(relay.libp2p.peerId)
    await until(() => h.store.head(feed)?.seq === 2, 'the held entries to be stored')
  } finally {
    await h.stop()
    await relay.stop()
  }
})

test('a received entry of an unknown kind over the cap is refused with UNKNOWN_KIND_TOO_LARGE; small ones and known kinds are kept', async () => {
  const author = await generateKeyPair('Ed25519')
  const s = await openStore()
  try {
    const small = craft(author, { seq: 0, prev: ZERO_HASH, kind: 'future-kind', body: { x: 'a'.repeat(100) } })
    const big = craft(author, { seq: 1, prev: entryHash(small.bytes), kind: 'future-kind', body: { x: 'a'.repeat(UNKNOWN_KIND_MAX_BYTES) } })
    const r = await s.store.ingest([small.bytes, big.bytes])
    assert.equal(r.stored.length, 1)
    assert.equal(r.error?.code, 'UNKNOWN_KIND_TOO_LARGE')
    // a kind with a validator is bounded by the body limit only (64 KiB)
    s.store.kinds.register('known-kind', () => true)
    const known = craft(author, { seq: 1, prev: entryHash(small.bytes), kind: 'known-kind', body: { x: 'a'.repeat(60 * 1024) } })
    assert.equal((await s.store.ingest([known.bytes])).stored.length, 1)
    // this host's own appends are its own business
    await s.store.append('future-kind', { x: 'a'.repeat(UNKNOWN_KIND_MAX_BYTES) })
  } finally {
    await s.close()
  }
})
