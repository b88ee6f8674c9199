// Public surface of the rollout decisions: body schemas for the audit codec, the fold, the
// plan, and the pure decision and status functions shared by the daemon, the CLI and the
// simulator.
export { RolloutError, isRolloutError } from './errors.js'
export type { RolloutErrorCode } from './errors.js'
export { rolloutSchemas, rolloutParsers, parseRelease, parseReleaseControl, parseApplyStart, parseApplyOk, parseApplyFailed, parseRollback, parseHealth, parseStorePath } from './schema.js'
export type { RolloutKind } from './schema.js'
export { planRelease, assignmentKey } from './plan.js'
export type { Plan } from './plan.js'
export { emptyState, applyEntry, isRolloutKind } from './state.js'
export type { RolloutState, ReleaseCandidate, ControlRecord, Flag } from './state.js'
export { decide, releaseStatus, effectiveRelease, controlState, flagged, outranks, planOf, soakWatchOf } from './decide.js'
export type { SoakWatch, ReleaseStatus, WaveStatus, OverallState, ControlState } from './decide.js'
export type * from './types.js'
