// Public surface of the rollout decisions: body schemas for the audit codec, the fold, the
// plan, and the pure decision and status functions shared by the daemon, the CLI and the
// simulator.
export { RolloutError, isRolloutError } from './errors.js'
export type { RolloutErrorCode } from './errors.js'
export { rolloutSchemas, parseRelease, parseReleaseControl, parseApplyStart, parseApplyOk, parseApplyFailed, parseRollback, parseHealth, parseStorePath } from './schema.js'
export type { RolloutKind } from './schema.js'
export { planRelease, assignmentKey, PlanCache } from './plan.js'
export type { Plan } from './plan.js'
export { emptyState, applyEntry, isRolloutKind } from './state.js'
export type { RolloutState } from './state.js'
export { effectiveRelease, controlState, flagged, outranks } from './authority.js'
export type { ControlState } from './authority.js'
export { decide, planOf, soakWatchOf } from './decide.js'
export type { SoakWatch } from './decide.js'
export { releaseStatus } from './status.js'
export type { ReleaseStatus, WaveStatus, OverallState } from './status.js'
export type * from './types.js'
