// The meta store's address book on real LevelDB: bounded, newest kept, damage skipped.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { openDb } from '../../node/store.js'
import { MAX_ADDRS_PER_PEER, MAX_KNOWN_PEERS, MetaStore } from '../../node/meta.js'
import { tempDir } from '../../simulations/harness/processes.js'

test('the address book keeps the members seen last, a bounded list each, and skips a damaged record', async () => {
  const db = await openDb(join(await tempDir(), 'db'))
  try {
    const meta = new MetaStore(db)
    const many = Array.from({ length: MAX_ADDRS_PER_PEER + 5 }, (_, i) => `/ip4/10.0.0.${i}/tcp/4001/p2p/P0`)
    for (let i = 0; i < MAX_KNOWN_PEERS + 10; i++) await meta.setAddresses(`P${i}`, i === 0 ? many : [`/ip4/10.0.1.${i % 250}/tcp/4001/p2p/P${i}`], 1_000 + i)
    // P0 seen again, last: it survives the eviction of the oldest others.
    await meta.setAddresses('P0', many, 10_000)
    const known = await meta.addresses()
    assert.equal(known.size, MAX_KNOWN_PEERS)
    assert.equal([...known.keys()][0], 'P0', 'newest first')
    assert.equal(known.get('P0')!.length, MAX_ADDRS_PER_PEER)
    for (let i = 1; i <= 10; i++) assert.equal(known.has(`P${i}`), false, `P${i} was seen longest ago`)
    assert.equal(known.has('P11'), true)
    // A record of an earlier version (a bare list) is read; garbage is skipped, not fatal.
    const raw = db.sublevel<string, string>('meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    await raw.put('addr!OLD', JSON.stringify(['/ip4/10.0.2.1/tcp/1/p2p/OLD']))
    await raw.put('addr!BAD', '{not json')
    const again = await meta.addresses()
    assert.deepEqual(again.get('OLD'), ['/ip4/10.0.2.1/tcp/1/p2p/OLD'])
    assert.equal(again.has('BAD'), false)
    await meta.dropAddresses('P0')
    assert.equal((await meta.addresses()).has('P0'), false)
  } finally {
    await db.close()
  }
})
