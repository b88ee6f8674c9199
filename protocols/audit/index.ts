// Public surface of the audit chain. Storage (store), verification (verify, pure), replication
// (sync) and witnessing are separate modules; other folders import from here only.
export type { Entry, Head, StoredEntry, EquivocationProof, AuthorCheck, BodyValidator } from './types.js'
export { AuditError, isAuditError, type AuditErrorCode } from './errors.js'
export {
  encodeEntry, decodeEntry, signingBytes, entryHash, encodeCanonical, decodeCanonical, KindRegistry,
  DEFAULT_LIMITS, DEFAULT_MAX_BODY_BYTES, ZERO_HASH, type CodecLimits
} from './codec.js'
export { createKindRegistry } from './kinds.js'
export { verifyEntry, verifyEntryBytes, feedPublicKey, type VerifyOptions, type VerifyResult, type VerifiedBytes, type Link } from './verify.js'
export { AuditStore, auditSublevel, type AuditDb, type AuditStoreOptions, type IngestResult, type VerifyAllResult, type LogQuery } from './store.js'
export { AuditSync, type AuditSyncOptions, type PullResult, type PenaltyEvent, type SyncLogger } from './sync.js'
export { SYNC_PROTOCOL, HEADS_TOPIC } from './wire.js'
export { Witness, findWitnessConflicts, WITNESS_KIND, type WitnessOptions, type WitnessConflict, type WitnessBody } from './witness.js'
export { exportJsonl, verifyJsonl, JSONL_VERSION } from './jsonl.js'
