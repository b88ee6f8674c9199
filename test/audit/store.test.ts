import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { entryHash, ZERO_HASH } from '../../protocols/audit/codec.js'
import { exportJsonl } from '../../protocols/audit/jsonl.js'
import { verifyJsonl } from '../../protocols/audit/verify-log.js'
import type { StoredEntry } from '../../protocols/audit/types.js'
import { craft, craftChain, openStore, tempDir, until } from './helpers.js'

test('append: contiguous seqs under concurrency, heads, get, range, log by kind and time, events', async () => {
  const s = await openStore()
  try {
    const seen: StoredEntry[] = []
    s.store.on('entry', (e) => seen.push(e))
    const all = await Promise.all(Array.from({ length: 300 }, async (_, i) => s.store.append(i % 3 === 0 ? 'health' : 'status', { i })))
    assert.deepEqual(all.map(e => e.entry.seq), Array.from({ length: 300 }, (_, i) => i))
    assert.deepEqual(all.map(e => (e.entry.body as { i: number }).i), Array.from({ length: 300 }, (_, i) => i))
    assert.equal(seen.length, 300)
    const head = s.store.head(s.store.feed as string)
    assert.equal(head?.seq, 299)
    assert.deepEqual(head?.hash, all[299].hash)
    assert.deepEqual((await s.store.get(s.store.feed as string, 10))?.entry, all[10].entry)
    assert.deepEqual((await s.store.range(s.store.feed as string, 5, 7)).map(e => e.entry.seq), [5, 6, 7])
    const health: number[] = []
    for await (const e of s.store.log({ kind: 'health' })) health.push(e.entry.seq)
    assert.equal(health.length, 100)
    assert.ok(health.every(seq => seq % 3 === 0))
    const latest: number[] = []
    for await (const e of s.store.log({ reverse: true, limit: 2 })) latest.push(e.entry.seq)
    assert.equal(latest.length, 2)
    assert.ok(latest[0] >= latest[1])
    await assert.rejects(s.store.append('status', { f: 1.5 }), { code: 'BODY_NOT_CANONICAL' })
    await assert.rejects(s.store.append('witness', { heads: 1 }), { code: 'BODY_INVALID' })
    assert.deepEqual(await s.store.verifyAll(), { ok: true, entries: 300, feeds: 1 })
  } finally {
    await s.close()
    rmSync(s.dir, { recursive: true, force: true })
  }
})

test('ingest: stores the verified prefix, counts duplicates, names the first refused entry', async () => {
  const s = await openStore()
  const author = await generateKeyPair('Ed25519')
  const chain = craftChain(author, 10)
  try {
    const forged = new Uint8Array(chain[6].bytes)
    forged[forged.length - 40] ^= 1 // inside prev: signature no longer covers it
    const r = await s.store.ingest([...chain.slice(0, 6).map(c => c.bytes), forged, chain[7].bytes])
    assert.equal(r.stored.length, 6)
    assert.equal(r.errorIndex, 6)
    assert.equal(r.error?.code, 'BAD_SIGNATURE')
    const gap = await s.store.ingest([chain[8].bytes])
    assert.equal(gap.error?.code, 'SEQ_GAP')
    assert.equal(gap.stored.length, 0)
    const again = await s.store.ingest(chain.map(c => c.entry))
    assert.equal(again.duplicates, 6)
    assert.equal(again.stored.length, 4)
    assert.equal(again.error, undefined)
    const badPrev = craft(author, { seq: 10, prev: ZERO_HASH })
    assert.equal((await s.store.ingest([badPrev.bytes])).error?.code, 'BAD_PREV')
    assert.equal(s.store.head(peerIdFromPrivateKey(author).toString())?.seq, 9)
    assert.equal((await s.store.verifyAll()).ok, true)
  } finally {
    await s.close()
    rmSync(s.dir, { recursive: true, force: true })
  }
})

test('equivocation: two valid entries at one seq are both kept as proof and the feed stops there', async () => {
  const dir = tempDir()
  let s = await openStore({ dir })
  const author = await generateKeyPair('Ed25519')
  const feed = peerIdFromPrivateKey(author).toString()
  const chain = craftChain(author, 5)
  const fork = craft(author, { seq: 3, prev: entryHash(chain[2].bytes), body: { other: 'history' } })
  try {
    const proofs: unknown[] = []
    s.store.on('equivocation', (p) => proofs.push(p))
    assert.equal((await s.store.ingest(chain.map(c => c.bytes))).stored.length, 5)
    const r = await s.store.ingest([fork.bytes])
    assert.equal(r.error?.code, 'EQUIVOCATION')
    assert.equal(r.equivocations.length, 1)
    assert.deepEqual(r.equivocations[0].a, chain[3].bytes)
    assert.deepEqual(r.equivocations[0].b, fork.bytes)
    assert.equal(proofs.length, 1)
    assert.equal(s.store.forkedFeeds().get(feed), 3)
    const next = craft(author, { seq: 5, prev: entryHash(chain[4].bytes) })
    assert.equal((await s.store.ingest([next.bytes])).error?.code, 'EQUIVOCATION')
    await s.close()
    s = await openStore({ dir })
    assert.equal(s.store.forkedFeeds().get(feed), 3)
    const stored = await s.store.equivocations()
    assert.equal(stored.length, 1)
    assert.equal(stored[0].seq, 3)
    assert.deepEqual(stored[0].b, fork.bytes)
  } finally {
    await s.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('verifyAll names an entry whose stored value was edited inside the LevelDB directory', async () => {
  const dir = tempDir()
  let s = await openStore({ dir })
  const key = s.key
  for (let i = 0; i < 50; i++) await s.store.append('status', { note: `entry number ${i}` })
  const feed = s.store.feed as string
  await s.close()
  try {
    const raw = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' })
    await raw.open()
    const keys: string[] = []
    for await (const k of raw.keys()) if (k.includes(`e!${feed}!`)) keys.push(k)
    assert.equal(keys.length, 50)
    const target = keys.find(k => k.endsWith('0000000000000017')) as string
    const value = new Uint8Array(await raw.get(target) as Uint8Array)
    const at = Buffer.from(value).indexOf('entry number 17')
    value[at + 13] = '9'.charCodeAt(0) // "entry number 97": same length, still canonical CBOR
    await raw.put(target, value)
    await raw.close()
    s = await openStore({ dir, key })
    const r = await s.store.verifyAll()
    assert.equal(r.ok, false)
    assert.equal(!r.ok && r.seq, 17)
    assert.equal(!r.ok && r.feed, feed)
    assert.equal(!r.ok && r.error.code, 'BAD_SIGNATURE')
  } finally {
    await s.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('JSON lines export verifies; a tampered line is named', async () => {
  const s = await openStore()
  const author = await generateKeyPair('Ed25519')
  try {
    await s.store.ingest(craftChain(author, 20).map(c => c.bytes))
    for (let i = 0; i < 10; i++) await s.store.append('health', { i })
    const out = new PassThrough()
    const chunks: Buffer[] = []
    out.on('data', (c: Buffer) => chunks.push(c))
    assert.equal(await exportJsonl(s.store, out), 30)
    out.end()
    const text = Buffer.concat(chunks).toString()
    const ok = await verifyJsonl(PassThrough.from([text]))
    assert.deepEqual(ok, { ok: true, entries: 30, feeds: 2 })
    const lines = text.trim().split('\n')
    const line = JSON.parse(lines[12])
    const bytes = Buffer.from(line.cbor, 'base64')
    bytes[bytes.length - 1] ^= 1
    lines[12] = JSON.stringify({ ...line, cbor: bytes.toString('base64') })
    const bad = await verifyJsonl(PassThrough.from([lines.join('\n')]))
    assert.equal(bad.ok, false)
    assert.equal(!bad.ok && bad.seq, line.seq)
    assert.equal(bad.entries, 12)
    const dropped = await verifyJsonl(PassThrough.from([[...lines.slice(0, 3), ...lines.slice(4)].join('\n')]))
    assert.equal(!dropped.ok && dropped.error.code, 'SEQ_GAP')
  } finally {
    await s.close()
    rmSync(s.dir, { recursive: true, force: true })
  }
})

test('a process killed with SIGKILL mid-burst leaves every feed verifying, head at its last complete entry', { timeout: 120_000 }, async () => {
  const dir = tempDir()
  const seed = Buffer.alloc(32, 7).toString('hex')
  const script = fileURLToPath(new URL('./fixtures/append-burst.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir, seed], { stdio: ['ignore', 'pipe', 'inherit'] })
  let reported = 0
  child.stdout.on('data', (d: Buffer) => { reported = Math.max(reported, ...d.toString().trim().split('\n').map(Number)) })
  try {
    await until(() => reported >= 3000, 'the child to append 3000 entries')
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('exit', resolve))
    const s = await openStore({ dir, key: await generateKeyPairFromSeed('Ed25519', Buffer.from(seed, 'hex')) })
    try {
      const head = s.store.head(s.store.feed as string)
      assert.ok(head !== undefined && head.seq + 1 >= reported, `head ${head?.seq} behind ${reported} acknowledged appends`)
      const v = await s.store.verifyAll()
      assert.equal(v.ok, true)
      assert.equal(v.entries, (head?.seq ?? 0) + 1)
      const next = await s.store.append('status', { after: 'crash' })
      assert.equal(next.entry.seq, (head?.seq ?? 0) + 1)
    } finally {
      await s.close()
    }
  } finally {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})

test('STORE_CORRUPT for records moved, dropped or mangled on disk; STORE_CLOSED, NO_SIGNING_KEY and AUTHOR_REJECTED', async () => {
  const dir = tempDir()
  let s = await openStore({ dir })
  const key = s.key
  for (let i = 0; i < 10; i++) await s.store.append('status', { i })
  const feed = s.store.feed as string
  await s.close()
  await assert.rejects(s.store.append('status', {}), { code: 'STORE_CLOSED' })
  const edit = async (fn: (raw: Level<string, Uint8Array>, k: (seq: number) => string) => Promise<void>): Promise<void> => {
    const raw = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' })
    await raw.open()
    await fn(raw, (seq) => `!audit!e!${feed}!${seq.toString().padStart(16, '0')}`)
    await raw.close()
  }
  try {
    // entry 4's key now holds entry 3
    await edit(async (raw, k) => { await raw.put(k(4), await raw.get(k(3)) as Uint8Array) })
    s = await openStore({ dir, key })
    let r = await s.store.verifyAll()
    assert.equal(!r.ok && r.error.code, 'STORE_CORRUPT')
    assert.equal(!r.ok && r.seq, 4)
    await s.close()
    // the last entry vanished but the head still names it
    await edit(async (raw, k) => { await raw.del(k(9)) })
    s = await openStore({ dir, key })
    r = await s.store.verifyAll()
    assert.equal(r.ok, false)
    await s.close()
    await edit(async (raw) => { await raw.put(`!audit!h!${feed}`, new Uint8Array([0xa1, 0x61])) })
    await assert.rejects(openStore({ dir, key }), { code: 'STORE_CORRUPT' })
    const keyless = new Level<string, Uint8Array>(tempDir())
    const { AuditStore } = await import('../../protocols/audit/store.js')
    const { auditSublevel } = await import('../../protocols/audit/layout.js')
    const ro = await AuditStore.open({ db: auditSublevel(keyless), authorCheck: () => false })
    await assert.rejects(ro.append('status', {}), { code: 'NO_SIGNING_KEY' })
    const refused = await ro.ingest(craftChain(await generateKeyPair('Ed25519'), 2).map(c => c.bytes))
    assert.equal(refused.error?.code, 'AUTHOR_REJECTED')
    assert.equal(refused.stored.length, 0)
    await ro.close()
    await keyless.close()
    rmSync(keyless.location, { recursive: true, force: true })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
