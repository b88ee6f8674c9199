// A data dir's database and the audit store on it, opened the same way by the daemon, by the
// commands that run with no daemon, and by the simulator's hosts.
import { Level } from 'level'
import type { HostIdentity } from '../crypto/identity.js'
import { AuditStore, auditSublevel, createKindRegistry, type KindRegistry } from '../protocols/audit/index.js'
import { membershipSchemas } from '../protocols/membership/index.js'
import { rolloutSchemas } from '../protocols/rollout/index.js'
import { roomSchemas } from '../protocols/rooms/index.js'

/** Every kind of entry this build interprets, registered once for the store to validate. */
export function createNodeKindRegistry (): KindRegistry {
  const kinds = createKindRegistry()
  kinds.registerParsers(membershipSchemas)
  kinds.registerParsers(rolloutSchemas)
  kinds.registerParsers(roomSchemas)
  return kinds
}

/** The level db of a data dir, open; its sublevels hold the log, membership records, rooms and invites. */
export async function openDb (path: string): Promise<Level<string, Uint8Array>> {
  const db = new Level<string, Uint8Array>(path, { valueEncoding: 'view' })
  await db.open()
  return db
}

export async function openAuditStore (db: Level<string, Uint8Array>, identity: HostIdentity): Promise<AuditStore> {
  return AuditStore.open({ db: auditSublevel(db), privateKey: identity.privateKey, kinds: createNodeKindRegistry() })
}
