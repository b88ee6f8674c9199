// Public surface of the audit chain. Storage (store, on disk as layout says), verification
// (verify, pure, per entry; verify-log, whole logs), replication (sync, composing announcer,
// puller, responder and penalties) and witnessing are separate modules; other folders import
// from here only.
export type { Entry, Head, StoredEntry, EquivocationProof, AuthorCheck, BodyValidator, SyncLogger } from './types.js'
export { AuditError, isAuditError, type AuditErrorCode } from './errors.js'
export {
  encodeEntry, decodeEntry, signingBytes, entryHash, encodeCanonical, decodeCanonical, KindRegistry,
  DEFAULT_LIMITS, DEFAULT_MAX_BODY_BYTES, ZERO_HASH, type CodecLimits
} from './codec.js'
export { createKindRegistry } from './kinds.js'
export { verifyEntry, verifyEntryBytes, feedPublicKey, type VerifyOptions, type VerifyResult, type VerifiedBytes, type Link } from './verify.js'
export { AuditStore, type AuditStoreOptions, type IngestResult, type LogQuery } from './store.js'
export { auditSublevel, type AuditDb } from './layout.js'
export { AuditSync, type AuditSyncOptions } from './sync.js'
export type { PullResult } from './puller.js'
export type { PenaltyEvent } from './penalties.js'
export type { PublishedEvent } from './announcer.js'
export { SYNC_PROTOCOL, HEADS_TOPIC } from './wire.js'
export { Witness, findWitnessConflicts, WITNESS_KIND, type WitnessOptions, type WitnessConflict, type WitnessBody } from './witness.js'
export { exportJsonl, JSONL_VERSION } from './jsonl.js'
export { verifyJsonl, type VerifyAllResult } from './verify-log.js'
