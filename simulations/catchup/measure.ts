// The measured part of catching up and joining: a real AuditStore on a real LevelDB in a temp
// dir, with the node's kind registry, ingesting the real signed entries of workload.ts as the
// puller hands them over (per feed, batches of at most MAX_BATCH_ENTRIES, `concurrency` pulls in
// flight), and adopting a checkpoint as a joiner does. Membership checks (authorCheck,
// checkCheckpoint's standing) are not run: they read folds the store does not hold here.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { AuditStore } from '../../protocols/audit/store.js'
import { auditSublevel } from '../../protocols/audit/layout.js'
import { MAX_BATCH_ENTRIES } from '../../protocols/audit/wire.js'
import type { StoredEntry } from '../../protocols/audit/types.js'
import { createNodeKindRegistry } from '../../node/store.js'
import type { Checkpoint } from './workload.js'

export class MeasuredStore {
  private constructor (private readonly dir: string, private readonly db: Level<string, Uint8Array>, readonly store: AuditStore) {}

  static async open (): Promise<MeasuredStore> {
    const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-sim-catchup-'))
    const db = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' })
    await db.open()
    const store = await AuditStore.open({ db: auditSublevel(db), kinds: createNodeKindRegistry() })
    return new MeasuredStore(dir, db, store)
  }

  /** Adopts `cp` with its retained entries; returns the milliseconds it took. */
  async adopt (cp: Checkpoint, withRetained: boolean): Promise<number> {
    const t = performance.now()
    await this.store.adoptCheckpoint(cp.entry.bytes, { cover: cp.cover, refs: cp.refs }, withRetained ? cp.retained.map(s => s.bytes) : [])
    return performance.now() - t
  }

  /** Ingests `entries` as pulls deliver them; returns the milliseconds it took. Throws on any refusal. */
  async ingest (entries: StoredEntry[], concurrency: number): Promise<number> {
    const byFeed = new Map<string, Uint8Array[]>()
    for (const s of entries) {
      let l = byFeed.get(s.entry.feed)
      if (l === undefined) byFeed.set(s.entry.feed, l = [])
      l.push(s.bytes)
    }
    const t = performance.now()
    // one feed's batches in order: a pull worker takes a feed's range and ingests it batch by batch
    const feeds = [...byFeed.values()].map(l => Array.from({ length: Math.ceil(l.length / MAX_BATCH_ENTRIES) }, (_, i) => l.slice(i * MAX_BATCH_ENTRIES, (i + 1) * MAX_BATCH_ENTRIES)))
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < feeds.length) {
        for (const batch of feeds[next++]) {
          const r = await this.store.ingest(batch)
          if (r.error !== undefined) throw new Error(`catch-up ingest refused an entry: ${r.error.code} ${r.error.message}`)
        }
      }
    }))
    return performance.now() - t
  }

  async close (): Promise<void> {
    await this.store.close()
    await this.db.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
