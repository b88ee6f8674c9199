// Public surface of checkpoints, pure: the entry schema (to register with the audit codec), which
// covered entries every host keeps, which checkpoints count, and building and judging one. The
// store, the join and the writer that use them live in protocols/audit and node/.
export { CheckpointError, isCheckpointError, type CheckpointErrorCode } from './errors.js'
export { CHECKPOINT_KIND, checkpointBody, checkpointSchemas, validateCheckpoint, type CheckpointBody } from './codec.js'
export { retainedRefs } from './retain.js'
export { isStale, newestCheckpoint, type CheckpointRef, type StandingAt } from './count.js'
export { buildCheckpoint, checkCheckpoint, type CheckContext, type CheckpointRefusal } from './check.js'
