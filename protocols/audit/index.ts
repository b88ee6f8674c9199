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
export { AuditSync, type AuditSyncOptions, type ServedEvent } from './sync.js'
export type { PullResult } from './puller.js'
export type { PenaltyEvent } from './penalties.js'
export type { PublishedEvent } from './announcer.js'
export { SYNC_PROTOCOL, HEADS_TOPIC, encodeRequest, encodeFrame, encodeAnnouncement, type SyncRequest, type SyncFrame } from './wire.js'
export {
  Reconciliation, SortedHeads, answerDigest, headHash, fingerprintOf, DEFAULT_FANOUT, DEFAULT_LEAF,
  type HeadIndex, type DigestQuery, type DigestReply, type DigestItem, type DigestRange, type ReconcileOptions
} from './reconcile.js'
export { Witness, findWitnessConflicts, type WitnessOptions, type WitnessConflict, type WitnessStore, type VectorSource } from './witness.js'
export { WITNESS_KIND, witnessBody, witnessVector, checkWitnessedVector, type WitnessBody, type WitnessBodyV1, type WitnessBodyV2 } from './witness-body.js'
export {
  WitnessSchedule, witnessPolicy, witnessOffset, DEFAULT_WITNESS_EVENT_KINDS, DEFAULT_WITNESS_INTERVAL_MS, DEFAULT_WITNESS_EVENT_DELAY_MS, type WitnessPolicy
} from './witness-schedule.js'
export { exportJsonl, JSONL_VERSION } from './jsonl.js'
export { CheckpointSync, type CheckpointSyncOptions } from './checkpoint-sync.js'
export { CHECKPOINT_PROTOCOL } from './checkpoint-wire.js'
export type { CheckpointRecord } from './layout.js'
export { verifyJsonl, type VerifyAllResult } from './verify-log.js'
