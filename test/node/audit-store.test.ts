// Issue 13, finding 5, with real daemon processes over loopback libp2p: a member host running
// modified code (no author check, replicates with anyone) holds an outsider's feed of twenty
// 60 KiB entries of an unregistered kind; the honest daemons neither pull nor store it, nor the
// member's own oversize entries of an unknown kind, while the member's ordinary entries still
// replicate. The fleet's third host joins through an invite of the second (an admin the founder
// admitted), so its own admission rests on the genesis → admit → admit chain, which a joining
// host must still be able to store under the check.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Level } from 'level'
import { pino } from 'pino'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { loadIdentity } from '../../crypto/identity.js'
import { dataPaths } from '../../node/config.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { createNodeKindRegistry } from '../../node/store.js'
import type { EntryRow } from '../../node/routes.js'
import { AuditStore, AuditSync, auditSublevel } from '../../protocols/audit/index.js'
import { entryHash, ZERO_HASH } from '../../protocols/audit/codec.js'
import { craft } from '../audit/helpers.js'

let fleet: Fleet

before(async () => {
  fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b', role: 'admin' }, { name: 'r' }] })
  await fleet.pairAll()
}, { timeout: 300_000 })

after(async () => { await fleet?.close() })

async function feedEntries (host: FleetHost, feed: string): Promise<EntryRow[]> {
  const r = await host.cli(['audit', 'log', '--feed', feed, '--json'])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as EntryRow)
}

interface Rogue { libp2p: MeshLibp2p, db: Level<string, Uint8Array>, store: AuditStore, sync: AuditSync }

/** The member `r` restarted on its own data dir with modified code: no author check, no feed filter. */
async function startRogue (host: FleetHost): Promise<Rogue> {
  const paths = dataPaths(host.dataDir)
  const identity = await loadIdentity(paths.identity)
  const db = new Level<string, Uint8Array>(paths.db, { valueEncoding: 'view' })
  await db.open()
  const store = await AuditStore.open({ db: auditSublevel(db), privateKey: identity.privateKey, kinds: createNodeKindRegistry(), maxUnknownKindBytes: Infinity })
  const libp2p = await createMeshLibp2p({ privateKey: identity.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const sync = new AuditSync({ libp2p, store, logger: pino({ level: 'silent' }) })
  await sync.start()
  return { libp2p, db, store, sync }
}

test('a member relaying a never-admitted feed gets none of it stored by the honest daemons; its own oversize unknown-kind entries are refused too', { timeout: 300_000 }, async () => {
  const a = fleet.host('a')
  const b = fleet.host('b')
  const r = fleet.host('r')
  // r joined through b's invite: the chain genesis(a) → admit b (a's feed) → admit r (b's feed).
  assert.ok((await feedEntries(r, b.peerId)).some((e) => e.kind === 'admit'), 'r stored b\'s feed, which admits it')
  await fleet.stop('r')
  const rogue = await startRogue(r)
  // what the honest daemons ask the rogue for: feed and first seq of each range request
  const asked: string[] = []
  const rangeBytes = rogue.store.rangeBytes.bind(rogue.store)
  rogue.store.rangeBytes = (feed, from, to) => {
    asked.push(`${feed}:${from}`)
    return rangeBytes(feed, from, to)
  }
  try {
    // twenty entries of ~60 KiB of an unregistered kind, by a key no admin ever admitted
    const outsider = await generateKeyPair('Ed25519')
    const outsiderFeed = peerIdFromPrivateKey(outsider).toString()
    const entries: Uint8Array[] = []
    let prev = ZERO_HASH
    for (let seq = 0; seq < 20; seq++) {
      const e = craft(outsider, { seq, prev, kind: 'blob', body: { seq, pad: 'x'.repeat(60 * 1024) } })
      entries.push(e.bytes)
      prev = entryHash(e.bytes)
    }
    assert.equal((await rogue.store.ingest(entries)).stored.length, 20, 'the modified member holds the outsider feed')
    await rogue.libp2p.dial(multiaddr(a.address))
    await rogue.libp2p.dial(multiaddr(b.address))
    // A positive control: an ordinary entry of the member's own replicates to both.
    const own = await rogue.store.append('status', { rogue: true })
    await fleet.waitFor('a and b to hold the member\'s new entry', async () => {
      for (const h of [a, b]) if (!(await feedEntries(h, r.peerId)).some((e) => e.seq === own.entry.seq)) return false
      return true
    })
    // Both exchanged head vectors with it on connect, before that entry: they named the outsider feed.
    assert.deepEqual(asked.filter((x) => x.startsWith(outsiderFeed)), [], 'nobody asked for the outsider feed')
    for (const h of [a, b]) assert.deepEqual(await feedEntries(h, outsiderFeed), [], `${h.name} stored none of the outsider's entries`)

    // Its own 60 KiB entry of an unknown kind is over the cap for unknown kinds.
    const big = await rogue.store.append('blob', { pad: 'x'.repeat(60 * 1024) })
    await fleet.waitFor('a and b to ask for it', async () => asked.filter((x) => x.startsWith(`${r.peerId}:${big.entry.seq}`)).length >= 2)
    // A refusal leaves nothing to wait for: look a few times while the pulls that asked end.
    for (let i = 0; i < 10; i++) {
      for (const h of [a, b]) {
        const seqs = (await feedEntries(h, r.peerId)).map((e) => e.seq)
        assert.ok(!seqs.includes(big.entry.seq), `${h.name} refused the oversize unknown-kind entry: ${seqs.join(',')}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
  } finally {
    await rogue.sync.stop()
    await rogue.libp2p.stop()
    await rogue.store.close()
    await rogue.db.close()
  }
})
