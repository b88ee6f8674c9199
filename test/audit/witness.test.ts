// Issue 17 item 2, with real stores: witness entries of constant size whose vectors stay with
// the witness, written on events that matter and on a slow cadence, never because of other
// hosts' witnesses; the schedule's days run on a test clock, replication is the stores' real
// ingest.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createNodeKindRegistry } from '../../node/store.js'
import { auditSublevel } from '../../protocols/audit/layout.js'
import { encodeCanonical, entryHash } from '../../protocols/audit/codec.js'
import { headsRoot } from '../../protocols/audit/heads-root.js'
import { Witness, findWitnessConflicts, type WitnessClock } from '../../protocols/audit/witness.js'
import { checkWitnessedVector, validateWitnessBody, type WitnessBodyV2 } from '../../protocols/audit/witness-body.js'
import { DEFAULT_WITNESS_EVENT_DELAY_MS, DEFAULT_WITNESS_INTERVAL_MS } from '../../protocols/audit/witness-schedule.js'
import type { Entry, StoredEntry } from '../../protocols/audit/types.js'
import { craft, craftChain, openStore, type TestStore } from './helpers.js'
import { PATH_A, releaseBody } from '../rollout/helpers.js'

const DAY = 24 * 60 * 60_000

/** Wall clock and timers under the test's control: advancing runs each timer due, in order, to its end. */
class TestClock implements WitnessClock {
  private readonly timers = new Map<number, { at: number, fn: () => unknown }>()
  private id = 0
  constructor (public t: number) {}
  now = (): number => this.t
  setTimeout = (fn: () => unknown, ms: number): unknown => {
    this.timers.set(++this.id, { at: this.t + ms, fn })
    return this.id
  }

  clearTimeout = (handle: unknown): void => { this.timers.delete(handle as number) }
  next (): number | undefined {
    return Math.min(...[...this.timers.values()].map(t => t.at), Infinity)
  }

  /** Runs the timers due by `to` (each awaited, as the tick it starts may append), then sets the time to `to`. */
  async advanceTo (to: number): Promise<number> {
    let fired = 0
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at)[0]
      if (due === undefined) break
      this.timers.delete(due[0])
      this.t = Math.max(this.t, due[1].at)
      await due[1].fn()
      fired++
    }
    this.t = Math.max(this.t, to)
    return fired
  }
}

/** What the sync does, without the network: every store ingests what another holds beyond its heads. */
async function replicate (stores: TestStore[]): Promise<void> {
  for (let changed = true; changed;) {
    changed = false
    for (const from of stores) {
      for (const to of stores) {
        if (from === to) continue
        for (const h of from.store.heads()) {
          const have = to.store.head(h.feed)?.seq ?? -1
          if (h.seq <= have) continue
          const r = await to.store.ingest((await from.store.range(h.feed, have + 1, h.seq)).map(e => e.bytes))
          assert.equal(r.error, undefined)
          changed = true
        }
      }
    }
  }
}

async function ownWitnesses (s: TestStore): Promise<StoredEntry[]> {
  const out: StoredEntry[] = []
  for await (const e of s.store.log({ kind: 'witness' })) if (e.entry.feed === s.store.feed) out.push(e)
  return out
}

interface Host { s: TestStore, witness: Witness }

async function hosts (n: number, clock: TestClock): Promise<Host[]> {
  const out: Host[] = []
  for (let i = 0; i < n; i++) {
    const s = await openStore({ kinds: createNodeKindRegistry() })
    out.push({ s, witness: new Witness({ store: s.store, db: auditSublevel(s.db), clock }) })
  }
  return out
}

async function closeAll (hs: Host[]): Promise<void> {
  for (const h of hs) {
    await h.witness.stop()
    await h.s.close()
    rmSync(h.s.dir, { recursive: true, force: true })
  }
}

/** Runs the fleet's schedules to `until`, replicating after every timer; returns the witness entries written meanwhile per host. */
async function run (hs: Host[], clock: TestClock, until: number): Promise<number[]> {
  const before = await Promise.all(hs.map(async h => (await ownWitnesses(h.s)).length))
  for (;;) {
    await replicate(hs.map(h => h.s))
    const next = clock.next()
    if (next === undefined || next > until) break
    await clock.advanceTo(next)
  }
  await clock.advanceTo(until)
  await replicate(hs.map(h => h.s))
  return await Promise.all(hs.map(async (h, i) => (await ownWitnesses(h.s)).length - before[i]))
}

const admit = (peer: string): unknown => ({ peer, role: 'host', tags: [] })

test('three idle hosts write no witness entry after the first round, however long they run; a release or an admit makes each other host witness once', { timeout: 300_000 }, async () => {
  const clock = new TestClock(Date.now())
  const hs = await hosts(3, clock)
  const [a, b, c] = hs
  try {
    for (const h of hs) await h.witness.start()
    await a.s.store.append('genesis', { mesh: 'm', name: 'test', founder: a.s.store.feed })
    await a.s.store.append('admit', admit(b.s.store.feed as string))
    await a.s.store.append('admit', admit(c.s.store.feed as string))
    // the first round: B and C witness the founder's entries; A's own entries are not in what it witnesses
    assert.deepEqual(await run(hs, clock, clock.t + DAY), [0, 1, 1])
    // ninety idle days: the witness entries of the first round move B's and C's heads, and make nothing due
    assert.deepEqual(await run(hs, clock, clock.t + 90 * DAY), [0, 0, 0])
    assert.equal(clock.next(), Infinity)

    await a.s.store.append('release', releaseBody())
    assert.deepEqual(await run(hs, clock, clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS), [0, 1, 1])
    assert.deepEqual(await run(hs, clock, clock.t + 30 * DAY), [0, 0, 0])

    // C admits a new host: A and B witness it, once each
    const d = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await c.s.store.append('admit', admit(d))
    assert.deepEqual(await run(hs, clock, clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS), [1, 1, 0])
    assert.deepEqual(await run(hs, clock, clock.t + 30 * DAY), [0, 0, 0])

    // a deploy outcome is witnessed by the others at their next slow slot, not sooner, and once
    const start = clock.t
    await b.s.store.append('apply-ok', { release: 'r1', path: PATH_A, healthyAt: 1 })
    assert.deepEqual(await run(hs, clock, start + DEFAULT_WITNESS_EVENT_DELAY_MS), [0, 0, 0])
    assert.deepEqual(await run(hs, clock, start + DEFAULT_WITNESS_INTERVAL_MS), [1, 0, 1])
    assert.deepEqual(await run(hs, clock, clock.t + 30 * DAY), [0, 0, 0])
  } finally {
    await closeAll(hs)
  }
})

test('a version 2 witness is the same size whatever the number of heads, and its vector is served by seq', { timeout: 120_000 }, async () => {
  const clock = new TestClock(Date.now())
  const [w] = await hosts(1, clock)
  try {
    const sizes: number[] = []
    for (const n of [3, 300]) {
      for (let i = 0; i < n; i++) await w.s.store.ingest(craftChain(await generateKeyPair('Ed25519'), 2).map(e => e.bytes))
      const entry = await w.witness.witnessNow()
      assert.ok(entry !== undefined)
      const body = entry.entry.body as WitnessBodyV2
      assert.ok(validateWitnessBody(body))
      sizes.push(encodeCanonical(body).length)
      const vector = await w.witness.witnessedVector(entry.entry.seq)
      assert.ok(vector !== undefined)
      const others = w.s.store.heads().filter(h => h.feed !== w.s.store.feed)
      assert.equal(vector.length, others.length)
      assert.equal(body.count, others.length)
      assert.deepEqual(headsRoot(vector), body.root)
      assert.deepEqual(new Set(vector.map(h => `${h.feed}:${h.seq}`)), new Set(others.map(h => `${h.feed}:${h.seq}`)))
    }
    // 32 bytes of root and a count, whatever the heads (the count's CBOR width aside)
    assert.ok(sizes.every(n => n <= 56), `${sizes.join(', ')}`)
    assert.ok(sizes[1] - sizes[0] <= 2)
    // nothing moved: no second witness of the same heads
    assert.equal(await w.witness.witnessNow(), undefined)
    // not a witness entry, and no entry at all: nothing to serve
    await w.s.store.append('status', { n: 1 })
    assert.equal(await w.witness.witnessedVector(w.s.store.head(w.s.store.feed as string)?.seq as number), undefined)
    assert.equal(await w.witness.witnessedVector(1000), undefined)
  } finally {
    await closeAll([w])
  }
})

test('a rewrite of a witnessed entry is found through a version 2 vector, held or fetched and checked against the signed root', { timeout: 120_000 }, async () => {
  const clock = new TestClock(Date.now())
  const [b, c] = await hosts(2, clock)
  const author = await generateKeyPair('Ed25519')
  const history = craftChain(author, 10)
  try {
    await b.s.store.ingest(history.map(h => h.bytes))
    const written = await b.witness.witnessNow()
    assert.ok(written !== undefined)
    // B's own check, through the vector it holds: nothing contradicts it
    assert.deepEqual(await findWitnessConflicts(b.s.store, b.witness.heldVector), [])
    // C holds a rewritten history of the author (valid signatures, different last entry) and B's witness
    const rewritten = [...history.slice(0, 9), craft(author, { seq: 9, prev: entryHash(history[8].bytes), body: { rewritten: true } })]
    await c.s.store.ingest(rewritten.map(h => h.bytes))
    await c.s.store.ingest((await b.s.store.range(b.s.store.feed as string, 0, written.entry.seq)).map(e => e.bytes))
    // without B's vector C cannot tell
    assert.deepEqual(await findWitnessConflicts(c.s.store, c.witness.heldVector), [])
    // with it (what the `witnessed` request fetches from B), the rewrite is named
    const fetched = await b.witness.witnessedVector(written.entry.seq)
    const fromB = async (s: StoredEntry) => s.entry.feed === b.s.store.feed ? fetched : undefined
    const conflicts = await findWitnessConflicts(c.s.store, fromB)
    assert.equal(conflicts.length, 1)
    assert.equal(conflicts[0].feed, peerIdFromPrivateKey(author).toString())
    assert.equal(conflicts[0].seq, 9)
    assert.deepEqual(conflicts[0].witness, { feed: b.s.store.feed, seq: written.entry.seq })
    assert.deepEqual(conflicts[0].witnessedHash, entryHash(history[9].bytes))
    // a vector that does not hash to the signed root is refused, whoever sends it
    const forged = fetched?.map(h => h.seq === 9 ? { ...h, hash: entryHash(rewritten[9].bytes) } : h) ?? []
    await assert.rejects(findWitnessConflicts(c.s.store, async () => forged), { code: 'WITNESS_VECTOR_MISMATCH' })
    assert.throws(() => checkWitnessedVector(written, (fetched ?? []).slice(1)), { code: 'WITNESS_VECTOR_MISMATCH' })
    const notWitness = (await c.s.store.range(peerIdFromPrivateKey(author).toString(), 0, 0))[0]
    assert.throws(() => checkWitnessedVector(notWitness, fetched ?? []), { code: 'WITNESS_VECTOR_MISMATCH' })
  } finally {
    await closeAll([b, c])
  }
})

test('old version 1 witness bodies stay valid and their heads are still checked', { timeout: 120_000 }, async () => {
  const clock = new TestClock(Date.now())
  const [c] = await hosts(1, clock)
  const author = await generateKeyPair('Ed25519')
  const oldWitness = await generateKeyPair('Ed25519')
  const history = craftChain(author, 4)
  try {
    const feed = peerIdFromPrivateKey(author).toString()
    const v1 = craft(oldWitness, { seq: 0, prev: new Uint8Array(32), kind: 'witness', body: { heads: [[feed, 3, entryHash(history[3].bytes)]] } })
    const rewritten = [...history.slice(0, 3), craft(author, { seq: 3, prev: entryHash(history[2].bytes), body: { rewritten: true } })]
    const r = await c.s.store.ingest([...rewritten.map(h => h.bytes), v1.bytes])
    assert.equal(r.error, undefined)
    const conflicts = await findWitnessConflicts(c.s.store)
    assert.equal(conflicts.length, 1)
    assert.deepEqual(conflicts[0].witness, { feed: peerIdFromPrivateKey(oldWitness).toString(), seq: 0 })
    // the two schemas, and nothing between them
    const root = new Uint8Array(32)
    assert.ok(validateWitnessBody({ v: 2, root, count: 1 }))
    for (const bad of [{ v: 1, root, count: 1 }, { v: 2, root: root.slice(1), count: 1 }, { v: 2, root, count: 0 }, { v: 2, root, count: 1, heads: [] }, { v: 2, root }, { heads: [] }, [1]]) {
      assert.equal(validateWitnessBody(bad), false, JSON.stringify(encodeCanonical(bad)))
    }
  } finally {
    await closeAll([c])
  }
})

const genesisOf = (key: Awaited<ReturnType<typeof generateKeyPair>>, founder: string): { entry: Entry, bytes: Uint8Array } =>
  craft(key as Ed25519PrivateKey, { seq: 0, prev: new Uint8Array(32), kind: 'genesis', body: { mesh: 'm', name: 'x', founder } })

test('a restart witnesses what its last witness did not cover, once, and nothing when nothing that matters came', { timeout: 120_000 }, async () => {
  const clock = new TestClock(Date.now())
  const s = await openStore({ kinds: createNodeKindRegistry() })
  const witnessOf = (): Witness => new Witness({ store: s.store, db: auditSublevel(s.db), clock })
  const founder = await generateKeyPair('Ed25519')
  const other = await generateKeyPair('Ed25519')
  const founderFeed = peerIdFromPrivateKey(founder).toString()
  const g = genesisOf(founder, founderFeed)
  let w = witnessOf()
  const restart = async (): Promise<void> => {
    await w.stop()
    w = witnessOf()
    await w.start()
  }
  const count = async (): Promise<number> => (await ownWitnesses(s)).length
  try {
    await w.start()
    await s.store.ingest([g.bytes])
    // stopped before the event delay ran out: no witness yet
    assert.equal(await clock.advanceTo(clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS / 2), 0)
    await restart()
    await clock.advanceTo(clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS)
    assert.equal(await count(), 1)
    // restarts with nothing new, or only others' witnesses, write nothing however long they run
    await restart()
    const v2 = craft(other, { seq: 0, prev: new Uint8Array(32), kind: 'witness', body: { v: 2, root: new Uint8Array(32).fill(1), count: 1 } })
    await s.store.ingest([v2.bytes])
    await restart()
    await clock.advanceTo(clock.t + 60 * DAY)
    assert.equal(await count(), 1)
    // an admit arrives, the host stops before witnessing it: the restart finds it past the vector it holds
    const admitted = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await s.store.ingest([craft(founder, { seq: 1, prev: entryHash(g.bytes), kind: 'admit', body: admit(admitted) }).bytes])
    await w.stop()
    w = witnessOf()
    await w.start()
    await clock.advanceTo(clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS)
    assert.equal(await count(), 2)
    await clock.advanceTo(clock.t + 60 * DAY)
    assert.equal(await count(), 2)
  } finally {
    await w.stop()
    await s.close()
    rmSync(s.dir, { recursive: true, force: true })
  }
})

async function vectorKeys (db: TestStore['db']): Promise<string[]> {
  const out: string[] = []
  for await (const k of auditSublevel(db).keys({ gt: 'w!', lt: 'w!\xff' })) out.push(k)
  return out
}

/** A store holding others' heads whose Witness was killed by SIGKILL around the write of its first vector. */
async function crashedWitness (when: 'before' | 'after'): Promise<{ key: Ed25519PrivateKey, dir: string }> {
  const key = await generateKeyPair('Ed25519')
  const s0 = await openStore({ key })
  await s0.store.ingest(craftChain(await generateKeyPair('Ed25519'), 3).map(e => e.bytes))
  await s0.close()
  const script = fileURLToPath(new URL('./fixtures/witness-crash.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script, s0.dir, Buffer.from(key.raw).toString('hex'), when], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const [, signal] = await once(child, 'exit') as [number | null, string | null]
  assert.equal(signal, 'SIGKILL')
  assert.equal(out, 'VECTOR\n')
  return { key, dir: s0.dir }
}

for (const when of ['before', 'after'] as const) {
  test(`a crash ${when} a vector's write leaves no witness entry without its vector; a restart witnesses${when === 'after' ? ' and the orphan ages out' : ''}`, { timeout: 120_000 }, async () => {
    const { key, dir } = await crashedWitness(when)
    const clock = new TestClock(Date.now())
    const s = await openStore({ key, dir })
    const w = new Witness({ store: s.store, db: auditSublevel(s.db), clock })
    try {
      for (const e of await ownWitnesses(s)) assert.ok(await w.witnessedVector(e.entry.seq) !== undefined, 'a witness entry whose vector is lost')
      assert.equal((await ownWitnesses(s)).length, 0)
      assert.equal((await vectorKeys(s.db)).length, when === 'after' ? 1 : 0)
      // the restart cannot tell what is witnessed (no witness entry): one is due soon, with its vector
      await w.start()
      await clock.advanceTo(clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS)
      const [entry] = await ownWitnesses(s)
      assert.ok(entry !== undefined)
      const vector = await w.witnessedVector(entry.entry.seq)
      assert.ok(vector !== undefined)
      assert.deepEqual(checkWitnessedVector(entry, vector), vector)
      // an orphan names no entry and goes with the history window, as the vectors of old witnesses do
      await clock.advanceTo(clock.t + 31 * DAY)
      await s.store.ingest([genesisOf(await generateKeyPair('Ed25519'), s.store.feed as string).bytes])
      await clock.advanceTo(clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS)
      const [first, second] = await ownWitnesses(s)
      assert.ok(second !== undefined)
      assert.equal((await vectorKeys(s.db)).length, 1)
      assert.equal(await w.witnessedVector(first.entry.seq), undefined)
      assert.ok(await w.witnessedVector(second.entry.seq) !== undefined)
    } finally {
      await w.stop()
      await s.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

test('a fork makes one witness due after the event delay, and the forked feed leaves the witnessed vector', { timeout: 120_000 }, async () => {
  const clock = new TestClock(Date.now())
  const [w] = await hosts(1, clock)
  const author = await generateKeyPair('Ed25519')
  const history = craftChain(author, 3)
  try {
    await w.witness.start()
    await w.s.store.ingest([...history.map(h => h.bytes), ...craftChain(await generateKeyPair('Ed25519'), 2).map(e => e.bytes)])
    const first = await w.witness.witnessNow()
    assert.equal((first?.entry.body as WitnessBodyV2).count, 2)
    const fork = craft(author, { seq: 2, prev: entryHash(history[1].bytes), body: { other: true } })
    assert.equal((await w.s.store.ingest([fork.bytes])).equivocations.length, 1)
    assert.equal(await clock.advanceTo(clock.t + DEFAULT_WITNESS_EVENT_DELAY_MS - 1), 0)
    assert.equal(await clock.advanceTo(clock.t + 1), 1)
    const all = await ownWitnesses(w.s)
    assert.equal(all.length, 2)
    const vector = await w.witness.witnessedVector(all[1].entry.seq)
    assert.deepEqual(vector?.map(h => h.feed).includes(peerIdFromPrivateKey(author).toString()), false)
    assert.equal(vector?.length, 1)
    assert.equal(await clock.advanceTo(clock.t + 30 * DAY), 0)
  } finally {
    await closeAll([w])
  }
})
