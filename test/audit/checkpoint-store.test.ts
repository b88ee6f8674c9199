import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { entryHash } from '../../protocols/audit/codec.js'
import { headsRoot } from '../../protocols/audit/heads-root.js'
import { exportJsonl } from '../../protocols/audit/jsonl.js'
import { auditSublevel, type AuditDb } from '../../protocols/audit/layout.js'
import { AuditStore, MAX_CHECKPOINT_RECORD_BYTES } from '../../protocols/audit/store.js'
import type { AuditError } from '../../protocols/audit/errors.js'
import { verifyJsonl } from '../../protocols/audit/verify-log.js'
import type { Head, StoredEntry } from '../../protocols/audit/types.js'
import { createNodeKindRegistry } from '../../node/store.js'
import { craft, openStore, type TestStore } from './helpers.js'

const T0 = 1767225600000

/** A feed of `n` entries stamped T0 + seq; seqs in `keep` are of kind 'keep' (what the tests' checkpoints retain). */
function chain (key: Ed25519PrivateKey, n: number, keep: number[] = []): Array<{ bytes: Uint8Array, hash: Uint8Array, seq: number }> {
  const out: Array<{ bytes: Uint8Array, hash: Uint8Array, seq: number }> = []
  let prev: Uint8Array = new Uint8Array(32)
  for (let seq = 0; seq < n; seq++) {
    const e = craft(key, { seq, prev, kind: keep.includes(seq) ? 'keep' : 'status' })
    prev = entryHash(e.bytes)
    out.push({ bytes: e.bytes, hash: prev, seq })
  }
  return out
}

const ref = (feed: string, e: { seq: number, hash: Uint8Array }): Head => ({ feed, seq: e.seq, hash: e.hash })

/** The writer signs a checkpoint over its heads now, retaining `refs`. */
async function writeCheckpoint (w: TestStore, number: number, refs: Head[]): Promise<{ cp: StoredEntry, cover: Head[], refs: Head[] }> {
  const cover = w.store.heads()
  const cp = await w.store.append('checkpoint', { number, cover: headsRoot(cover), count: cover.length, retain: headsRoot(refs), retained: refs.length })
  return { cp, cover, refs }
}

async function exported (store: AuditStore): Promise<string> {
  const out = new PassThrough()
  const chunks: Buffer[] = []
  out.on('data', (c: Buffer) => chunks.push(c))
  await exportJsonl(store, out)
  out.end()
  return Buffer.concat(chunks).toString()
}

async function verifyText (text: string): Promise<Awaited<ReturnType<typeof verifyJsonl>>> {
  const input = new PassThrough()
  input.end(text)
  return await verifyJsonl(input)
}

async function entriesOf (store: AuditStore, q: { kind?: string } = {}): Promise<string[]> {
  const out: string[] = []
  for await (const s of store.log(q)) out.push(`${s.entry.feed.slice(-4)}/${s.entry.seq}`)
  return out.sort()
}

async function fixture (): Promise<{ w: TestStore, xKey: Ed25519PrivateKey, x: string, xs: ReturnType<typeof chain>, made: Awaited<ReturnType<typeof writeCheckpoint>> }> {
  const w = await openStore({ kinds: createNodeKindRegistry() })
  const xKey = await generateKeyPair('Ed25519')
  const x = peerIdFromPrivateKey(xKey).toString()
  const xs = chain(xKey, 10, [2, 5])
  assert.equal((await w.store.ingest(xs.slice(0, 8).map(e => e.bytes))).stored.length, 8)
  const own = [await w.store.append('status', { n: 0 }), await w.store.append('keep', { n: 1 })]
  const made = await writeCheckpoint(w, 1, [ref(x, xs[2]), ref(x, xs[5]), ref(w.store.feed as string, { seq: 1, hash: own[1].hash })])
  await w.store.adoptCheckpoint(made.cp.bytes, made)
  return { w, xKey, x, xs, made }
}

test('a joiner adopts a checkpoint: covered heads become bases, retained entries are readable, its feeds continue from the cover, and it verifies', async () => {
  const { w, x, xs, made } = await fixture()
  const j = await openStore({ kinds: createNodeKindRegistry() })
  try {
    const retained = await Promise.all(made.refs.map(async r => (await w.store.get(r.feed, r.seq))!.bytes))
    const stored = await j.store.adoptCheckpoint(made.cp.bytes, made, retained)
    assert.equal(stored.length, 4) // three retained entries and the checkpoint
    assert.deepEqual(j.store.head(x), ref(x, xs[7]))
    assert.deepEqual(j.store.base(x), ref(x, xs[7]))
    assert.equal(j.store.head(w.store.feed as string)?.seq, made.cp.entry.seq)
    assert.equal(j.store.checkpoint()?.number, 1)
    assert.deepEqual((await j.store.get(x, 2))?.hash, xs[2].hash)
    assert.equal(await j.store.get(x, 3), undefined)
    assert.deepEqual(await entriesOf(j.store, { kind: 'keep' }), [`${w.store.feed!.slice(-4)}/1`, `${x.slice(-4)}/2`, `${x.slice(-4)}/5`].sort())
    // it claims no range it cannot link: below the base nothing, from the checkpoint on its entries
    assert.equal((await j.store.range(x, 0, 7)).length, 0)
    assert.deepEqual((await j.store.range(w.store.feed as string, made.cp.entry.seq, made.cp.entry.seq)).map(s => s.entry.kind), ['checkpoint'])
    // the feed continues from the covered head; an entry below it (a pull in flight) is let go
    const more = await j.store.ingest([xs[6].bytes, xs[8].bytes, xs[9].bytes])
    assert.equal(more.error, undefined)
    assert.deepEqual(more.stored.map(s => s.entry.seq), [8, 9])
    assert.deepEqual(await j.store.verifyAll(), { ok: true, entries: 6, feeds: 2 })
    const text = await exported(j.store)
    assert.match(text.split('\n')[0], /^\{"v":1,"checkpoint":\{"number":1,/)
    assert.deepEqual(await verifyText(text), { ok: true, entries: 6, feeds: 2 })
    // the header's cover is what the checkpoint signed: another one fails
    const forged = text.replace(Buffer.from(xs[7].hash).toString('hex'), Buffer.from(xs[6].hash).toString('hex'))
    const bad = await verifyText(forged)
    assert.equal(bad.ok, false)
    // and a retained line the checkpoint does not name fails
    const lines = text.split('\n')
    const at = lines.findIndex(l => l.includes('"retained":true'))
    const extra = JSON.parse(lines[at])
    const notRetained = { ...extra, seq: 3, hash: Buffer.from(xs[3].hash).toString('hex'), cbor: Buffer.from(xs[3].bytes).toString('base64'), kind: 'status' }
    lines.splice(at, 0, JSON.stringify(notRetained))
    assert.equal((await verifyText(lines.join('\n'))).ok, false)
    // all of it survives a restart
    await j.store.close()
    const reopened = await AuditStore.open({ db: auditSublevel(j.db), kinds: createNodeKindRegistry() })
    assert.deepEqual(reopened.base(x), ref(x, xs[7]))
    assert.equal(reopened.checkpoint()?.refs.length, 3)
    assert.deepEqual(await reopened.verifyAll(), { ok: true, entries: 6, feeds: 2 })
    await reopened.close()
  } finally {
    await j.db.close()
    await w.close()
    rmSync(j.dir, { recursive: true, force: true })
    rmSync(w.dir, { recursive: true, force: true })
  }
})

test('adopting refuses a checkpoint at odds with held entries, a retained entry it does not name, a bad signature; and writes nothing then', async () => {
  const { w, xKey, xs, made } = await fixture()
  const j = await openStore({ kinds: createNodeKindRegistry() })
  try {
    const retained = await Promise.all(made.refs.map(async r => (await w.store.get(r.feed, r.seq))!.bytes))
    // this host holds another entry at X's covered seq 7 (X forked)
    const other = craft(xKey, { seq: 7, prev: xs[6].hash, body: { other: true } })
    await j.store.ingest([...xs.slice(0, 7).map(e => e.bytes), other.bytes])
    const before = j.store.heads()
    await assert.rejects(j.store.adoptCheckpoint(made.cp.bytes, made, retained), { code: 'CHECKPOINT_REFUSED' })
    assert.deepEqual(j.store.heads(), before)
    assert.equal(j.store.checkpoint(), undefined)
    const fresh = await openStore({ kinds: createNodeKindRegistry() })
    try {
      await assert.rejects(fresh.store.adoptCheckpoint(made.cp.bytes, made, [...retained, xs[3].bytes]), { code: 'CHECKPOINT_REFUSED' })
      const forged = new Uint8Array(retained[0])
      forged[forged.length - 5] ^= 1
      await assert.rejects(fresh.store.adoptCheckpoint(made.cp.bytes, made, [forged]), (err: Error & { code: string }) => ['BAD_SIGNATURE', 'ENTRY_MALFORMED', 'BODY_NOT_CANONICAL'].includes(err.code))
      // entries passed as objects are taken unverified only when this very store checked them
      const good = await w.store.get(made.refs[0].feed, made.refs[0].seq)
      assert.ok(good !== undefined)
      const badSig = new Uint8Array(good.bytes)
      badSig[badSig.length - 5] ^= 1
      const posing = { ...good, bytes: badSig }
      await assert.rejects(fresh.store.adoptCheckpoint(made.cp.bytes, made, [posing]), (err: Error & { code: string }) => ['BAD_SIGNATURE', 'ENTRY_MALFORMED', 'BODY_NOT_CANONICAL'].includes(err.code))
      assert.deepEqual(fresh.store.heads(), [])
      assert.deepEqual(await entriesOf(fresh.store), [])
    } finally {
      await fresh.close()
      rmSync(fresh.dir, { recursive: true, force: true })
    }
  } finally {
    await j.close()
    await w.close()
    rmSync(j.dir, { recursive: true, force: true })
    rmSync(w.dir, { recursive: true, force: true })
  }
})

test('pruning drops what the checkpoint lets go and is older than the window, keeps retained entries, and the store still verifies and exports', async () => {
  const { w, x, xs } = await fixture()
  try {
    const self = w.store.feed as string
    // window: entries stamped before T0 + 5 go, so X's 0..4 but its retained 2; the writer's own entries are recent
    assert.equal(await w.store.prune(T0 + 5), 4)
    assert.deepEqual(w.store.base(x), ref(x, xs[4]))
    assert.equal(w.store.base(self), undefined)
    assert.deepEqual((await w.store.get(x, 2))?.hash, xs[2].hash)
    assert.equal(await w.store.get(x, 3), undefined)
    assert.deepEqual((await w.store.get(x, 5))?.hash, xs[5].hash)
    assert.deepEqual(await entriesOf(w.store, { kind: 'status' }), [`${self.slice(-4)}/0`, `${x.slice(-4)}/6`, `${x.slice(-4)}/7`].sort())
    assert.equal((await w.store.range(x, 3, 7)).length, 0)
    assert.deepEqual((await w.store.range(x, 5, 7)).map(s => s.entry.seq), [5, 6, 7])
    const v = await w.store.verifyAll()
    assert.equal(v.ok, true, v.ok ? '' : `${v.error.code} ${v.error.message}`)
    assert.equal((await verifyText(await exported(w.store))).ok, true)
    // entries after the cover always stay; below it, all but the retained go once old enough
    assert.equal((await w.store.ingest([xs[8].bytes, xs[9].bytes])).stored.length, 2)
    assert.equal(await w.store.prune(Number.MAX_SAFE_INTEGER), 3) // X's 6, 7 (5 is kept) and the writer's 0 (1 is kept); nothing above the cover
    assert.deepEqual(w.store.base(x), ref(x, xs[7]))
    assert.deepEqual((await w.store.range(x, 8, 9)).map(s => s.entry.seq), [8, 9])
    assert.equal((await w.store.verifyAll()).ok, true)
    assert.equal((await verifyText(await exported(w.store))).ok, true)
    assert.equal(await w.store.prune(Number.MAX_SAFE_INTEGER), 0)
  } finally {
    await w.close()
    rmSync(w.dir, { recursive: true, force: true })
  }
})

test('a crash between the batches of a prune leaves a store that verifies, and the next prune finishes the job', async () => {
  const { w, x } = await fixture()
  assert.ok(w.store.checkpoint() !== undefined)
  const self = w.store.feed as string
  await w.store.close()
  let batches = 0
  const real = auditSublevel(w.db)
  // the power is cut after the first feed's batch: the second never reaches the disk
  const cut = new Proxy(real, {
    get (t, p) {
      if (p === 'batch') {
        return async (...args: unknown[]) => {
          if (++batches === 2) throw new Error('power cut')
          return await (t.batch as (...a: unknown[]) => Promise<void>)(...args)
        }
      }
      const v = Reflect.get(t, p, t)
      return typeof v === 'function' ? v.bind(t) : v
    }
  }) as AuditDb
  const dir = w.dir
  try {
    const crashing = await AuditStore.open({ db: cut, kinds: createNodeKindRegistry() })
    await assert.rejects(crashing.prune(Number.MAX_SAFE_INTEGER), /power cut/)
    await crashing.close()
    await w.db.close()
    const db = new Level<string, Uint8Array>(dir)
    await db.open()
    const back = await AuditStore.open({ db: auditSublevel(db), kinds: createNodeKindRegistry() })
    try {
      assert.equal([back.base(x), back.base(self)].filter(b => b !== undefined).length, 1)
      assert.equal((await back.verifyAll()).ok, true)
      assert.ok(await back.prune(Number.MAX_SAFE_INTEGER) > 0)
      assert.ok(back.base(x) !== undefined && back.base(self) !== undefined)
      assert.equal((await back.verifyAll()).ok, true)
    } finally {
      await back.close()
      await db.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an archive one entry behind on a covered feed refuses the checkpoint rather than drop its chain; a host holding everything only records it', async () => {
  const w = await openStore({ kinds: createNodeKindRegistry() })
  const arc = await openStore({ kinds: createNodeKindRegistry() })
  const full = await openStore({ kinds: createNodeKindRegistry() })
  try {
    const xKey = await generateKeyPair('Ed25519')
    const x = peerIdFromPrivateKey(xKey).toString()
    const xs = chain(xKey, 50)
    await w.store.ingest(xs.map(e => e.bytes))
    await arc.store.ingest(xs.slice(0, 49).map(e => e.bytes))
    await full.store.ingest(xs.map(e => e.bytes))
    const own = await w.store.append('status', { n: 0 })
    await arc.store.ingest([own.bytes])
    await full.store.ingest([own.bytes])
    const made = await writeCheckpoint(w, 1, [])
    await assert.rejects(arc.store.adoptCheckpoint(made.cp.bytes, made, [], { archive: true }), (err: AuditError) => err.code === 'CHECKPOINT_REFUSED' && /archive keeps its history/.test(err.message))
    assert.equal(arc.store.checkpoint(), undefined)
    assert.equal((await arc.store.range(x, 0, 48)).length, 49)
    assert.equal(arc.store.base(x), undefined)
    await full.store.adoptCheckpoint(made.cp.bytes, made, [], { archive: true })
    assert.equal(full.store.checkpoint()?.number, 1)
    assert.equal((await full.store.range(x, 0, 49)).length, 50)
    assert.equal(full.store.base(x), undefined)
    assert.equal((await full.store.verifyAll()).ok, true)
  } finally {
    for (const s of [w, arc, full]) await s.close()
  }
})

test('a checkpoint at seq 0 of its signer\'s feed is adoptable by a host that holds nothing of that feed', async () => {
  const w = await openStore({ kinds: createNodeKindRegistry() })
  const j = await openStore({ kinds: createNodeKindRegistry() })
  try {
    const made = await writeCheckpoint(w, 1, [])
    assert.equal(made.cp.entry.seq, 0)
    await j.store.adoptCheckpoint(made.cp.bytes, made, [])
    assert.equal(j.store.checkpoint()?.number, 1)
    assert.equal(j.store.head(w.store.feed as string)?.seq, 0)
    assert.equal((await j.store.verifyAll()).ok, true)
  } finally {
    for (const s of [w, j]) await s.close()
  }
})

test('a detached entry a newer checkpoint no longer retains is dropped with its index keys, and the store verifies', async () => {
  const w = await openStore({ kinds: createNodeKindRegistry() })
  try {
    const xKey = await generateKeyPair('Ed25519')
    const x = peerIdFromPrivateKey(xKey).toString()
    const xs = chain(xKey, 10, [2, 8])
    await w.store.ingest(xs.slice(0, 6).map(e => e.bytes))
    await w.store.append('status', { n: 0 })
    const first = await writeCheckpoint(w, 1, [ref(x, xs[2])])
    await w.store.adoptCheckpoint(first.cp.bytes, first)
    await w.store.prune(Date.now() + 1e9)
    assert.equal((await w.store.get(x, 2))?.entry.seq, 2)
    await w.store.ingest(xs.slice(6).map(e => e.bytes))
    const second = await writeCheckpoint(w, 2, [ref(x, xs[8])])
    await w.store.adoptCheckpoint(second.cp.bytes, second)
    assert.equal(await w.store.get(x, 2), undefined)
    assert.deepEqual((await entriesOf(w.store, { kind: 'keep' })).filter(e => e.startsWith(x.slice(-4))), [`${x.slice(-4)}/8`])
    await w.store.prune(Date.now() + 1e9)
    let detached = 0
    for await (const _ of w.store.retainedBytes()) detached++
    assert.equal(detached, 1)
    const v = await w.store.verifyAll()
    assert.equal(v.ok, true, JSON.stringify(v.ok ? v : v.error.message))
  } finally {
    await w.close()
  }
})

test('a checkpoint whose record would pass the cap a store reads back is refused before anything is written, naming the cap', async () => {
  const w = await openStore({ kinds: createNodeKindRegistry() })
  try {
    const made = await writeCheckpoint(w, 1, [])
    const one: Head = { feed: w.store.feed as string, seq: Number.MAX_SAFE_INTEGER, hash: new Uint8Array(32) }
    const refs = Array.from({ length: Math.ceil(MAX_CHECKPOINT_RECORD_BYTES / 80) }, () => one)
    await assert.rejects(w.store.adoptCheckpoint(made.cp.bytes, { cover: made.cover, refs }), (err: AuditError) => err.code === 'CHECKPOINT_REFUSED' && err.message.includes(`${MAX_CHECKPOINT_RECORD_BYTES}-byte cap`))
    assert.equal(w.store.checkpoint(), undefined)
  } finally {
    await w.close()
  }
})
