// Commands that read the store (audit verify/export/log) also work with no daemon running:
// they open the data dir's db directly. With a daemon running they go through its API,
// since LevelDB admits one process at a time.
import { Level } from 'level'
import { loadIdentity, type HostIdentity } from '../crypto/identity.js'
import type { AuditStore } from '../protocols/audit/index.js'
import { ControlClient } from './client.js'
import { dataPaths } from './config.js'
import { NodeError } from './errors.js'
import { openAuditStore } from './mesh.js'
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

/** A client of the data dir's daemon if one answers, else undefined. */
export async function runningDaemon (dataDir: string): Promise<ControlClient | undefined> {
  try {
    const client = await ControlClient.forDataDir(dataDir)
    await client.get('/v1/status')
    return client
  } catch (err) {
    if ((err as { code?: string }).code !== 'DAEMON_NOT_RUNNING') throw err
    return undefined
  }
}

/** Runs `online` against the daemon when one answers, else `offline` on the store itself. */
export async function viaDaemonOrStore<T> (dataDir: string, online: (c: ControlClient) => Promise<T>, offline: (s: OfflineStore) => Promise<T>): Promise<T> {
  const client = await runningDaemon(dataDir)
  return client !== undefined ? online(client) : withOfflineStore(dataDir, offline)
}
