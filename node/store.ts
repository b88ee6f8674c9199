// A data dir's database and the audit store on it, opened the same way by the daemon, by the
// commands that run with no daemon, and by the simulator's hosts.
import { Level } from 'level'
import type { HostIdentity } from '../crypto/identity.js'
import { AuditStore, auditSublevel, createKindRegistry, type KindRegistry } from '../protocols/audit/index.js'
import type { Membership } from './membership.js'
import { membershipSchemas } from '../protocols/membership/index.js'
import { localDeploySchemas, rolloutSchemas } from '../protocols/rollout/index.js'
import { inviteEntrySchemas } from '../protocols/pairing/index.js'
import { roomSchemas } from '../protocols/rooms/index.js'
import { checkpointSchemas } from '../protocols/checkpoint/index.js'
import { driftSchemas } from '../protocols/drift/index.js'
import { agentSchemas } from '../protocols/agents/index.js'

/** Every kind of entry this build interprets, registered once for the store to validate. */
export function createNodeKindRegistry (): KindRegistry {
  const kinds = createKindRegistry()
  kinds.registerParsers(membershipSchemas)
  kinds.registerParsers(rolloutSchemas)
  kinds.registerParsers(roomSchemas)
  kinds.registerParsers(checkpointSchemas())
  kinds.registerParsers(driftSchemas)
  kinds.registerParsers(agentSchemas)
  kinds.registerParsers(localDeploySchemas)
  kinds.registerParsers(inviteEntrySchemas)
  return kinds
}

/** The level db of a data dir, open; its sublevels hold the log, membership records, rooms and invites. */
export async function openDb (path: string): Promise<Level<string, Uint8Array>> {
  const db = new Level<string, Uint8Array>(path, { valueEncoding: 'view' })
  await db.open()
  return db
}

/** What the feed check reads of a host's membership. */
export type MemberFeeds = Pick<Membership, 'view' | 'mesh' | 'isMember'>

/**
 * The feeds a host stores and pulls (DESIGN §8): those that are or were members (a revoked
 * member's feed still holds the entries that counted), the founder's, whose genesis roots the
 * log, and while this host is joining its inviter's. A joining host learns the rest from the
 * very entries it stores: the genesis and the founder's admits make admins members, whose
 * feeds then pass, and so on down to its own admit. Nothing passes before a mesh is adopted.
 */
export function isOrWasMember (m: MemberFeeds, feed: string): boolean {
  const view = m.view()
  if (view === undefined) return false
  return view.members.has(feed) || view.revoked.has(feed) || feed === m.mesh()?.founder || m.isMember(feed)
}

/**
 * The audit store of a data dir. With `members` (the daemon), received entries of feeds that
 * are not and never were members are refused (AUTHOR_REJECTED); it is a getter because the
 * membership view is itself folded from this store.
 */
export async function openAuditStore (db: Level<string, Uint8Array>, identity: HostIdentity, members?: () => MemberFeeds | undefined): Promise<AuditStore> {
  const authorCheck = members === undefined
    ? undefined
    : (entry: { feed: string }) => {
        const m = members()
        return m !== undefined && isOrWasMember(m, entry.feed)
      }
  return AuditStore.open({ db: auditSublevel(db), privateKey: identity.privateKey, kinds: createNodeKindRegistry(), authorCheck })
}
