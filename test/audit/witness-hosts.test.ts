// Issue 17 item 2 over real hosts: an auditor holding a rewritten history and another host's
// version 2 witness fetches the witnessed vector from that host over the sync protocol, checks
// it against the signed root, and finds the rewrite.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { entryHash } from '../../protocols/audit/codec.js'
import { auditSublevel } from '../../protocols/audit/layout.js'
import { Witness, findWitnessConflicts } from '../../protocols/audit/witness.js'
import type { StoredEntry } from '../../protocols/audit/types.js'
import { connect, craft, craftChain, startNode, until } from './helpers.js'

test('an auditor fetches a host\'s witnessed vector over the sync protocol and finds a rewrite of a witnessed entry', { timeout: 180_000 }, async () => {
  const author = await generateKeyPair('Ed25519')
  const authorFeed = peerIdFromPrivateKey(author).toString()
  const history = craftChain(author, 10)
  const rewritten = [...history.slice(0, 9), craft(author, { seq: 9, prev: entryHash(history[8].bytes), body: { rewritten: true } })]
  let witness: Witness | undefined
  // neither pulls the author's feed from the other: the auditor only has the rewrite to go on
  const b = await startNode({ syncOpts: { wantFeed: feed => feed !== authorFeed, witnessed: async seq => await witness?.witnessedVector(seq) } })
  const c = await startNode({ syncOpts: { wantFeed: feed => feed !== authorFeed } })
  try {
    witness = new Witness({ store: b.store, db: auditSublevel(b.db) })
    await b.store.ingest(history.map(h => h.bytes))
    await c.store.ingest(rewritten.map(h => h.bytes))
    const written = await witness.witnessNow()
    assert.ok(written !== undefined)
    const bFeed = b.store.feed as string
    await connect(c.libp2p, b.libp2p)
    await until(() => (c.store.head(bFeed)?.seq ?? -1) >= written.entry.seq, 'the auditor holds the witness entry')

    const fetched = async (s: StoredEntry) => s.entry.feed === bFeed ? await c.sync.fetchWitnessed(b.libp2p.peerId, s.entry.seq) : undefined
    const conflicts = await findWitnessConflicts(c.store, fetched)
    assert.equal(conflicts.length, 1)
    assert.deepEqual({ feed: conflicts[0].feed, seq: conflicts[0].seq, witness: conflicts[0].witness }, { feed: authorFeed, seq: 9, witness: { feed: bFeed, seq: written.entry.seq } })
    // an entry of B's that is no witness has no vector to serve
    const status = await b.store.append('status', { n: 1 })
    await assert.rejects(c.sync.fetchWitnessed(b.libp2p.peerId, status.entry.seq), /NOT_FOUND/)
  } finally {
    await witness?.stop()
    await c.stop()
    await b.stop()
  }
})
