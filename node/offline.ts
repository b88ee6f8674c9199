// A data dir's store opened by a command rather than by its daemon: `audit verify/export/log`
// with no daemon running and `init --mesh`. LevelDB admits one process at a time, so while a
// daemon runs the CLI goes through its API instead.
import { Level } from 'level'
import { loadIdentity, type HostIdentity } from '../crypto/identity.js'
import type { AuditStore } from '../protocols/audit/index.js'
import { dataPaths } from './config.js'
import { NodeError } from './errors.js'
import { openAuditStore } from './store.js'
import { MetaStore } from './meta.js'

export interface OfflineStore { identity: HostIdentity, db: Level<string, Uint8Array>, store: AuditStore, meta: MetaStore }

export async function withOfflineStore<T> (dataDir: string, fn: (s: OfflineStore) => Promise<T>): Promise<T> {
  const paths = dataPaths(dataDir)
  const identity = await loadIdentity(paths.identity)
  const db = new Level<string, Uint8Array>(paths.db, { valueEncoding: 'view' })
  try {
    await db.open()
  } catch (err) {
    throw new NodeError('DATA_DIR_LOCKED', `cannot open ${paths.db}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`)
  }
  try {
    const store = await openAuditStore(db, identity)
    try {
      return await fn({ identity, db, store, meta: new MetaStore(db) })
    } finally {
      await store.close()
    }
  } finally {
    await db.close()
  }
}
