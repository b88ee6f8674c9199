// The public surface of nixos/: the node imports from here only.
export { NixosError, NixCommandError, ActivationError, ClosureError, type NixosErrorCode } from './errors.js'
export type { ApplyOutcome, Backend, Generation } from './types.js'
export { DEFAULT_NIX_CONFIG, assertStorePath, type NixOptions } from './nix.js'
export { NixProfileBackend, DEFAULT_PROFILE, DEFAULT_KEEP, type ProfileOptions, type ActivationOptions } from './profile.js'
export {
  verify, probe, checkName, validatePolicy, OUTPUT_LIMIT, DEFAULT_START_PERIOD_MS,
  type HealthCheck, type AgentCheck, type SystemdCheck, type HttpCheck, type CommandCheck, type HealthPolicy,
  type HealthVerdict, type CheckFailure, type ProbeResult, type ProbeReport, type VerifyOptions
} from './health.js'
export { Journal, APPLY_ID_RE, newApplyId, encodeRecord, decodeRecord, type ApplyRecord, type ApplyPhase, type ApplyHold, type JournalDb } from './journal.js'
export { bootInfo, bootChanges, monotonicMs, BOOT_ID_PATH, BOOT_LINKS, type BootInfo, type BootInfoOptions } from './boot.js'
export { DeployEngine, type DeployEvent, type EngineProbe, type ApplyRequest, type RevertRequest, type EngineOptions } from './engine.js'
export {
  closureInfo, exportClosure, importClosure, fingerprint, nixBase32, parsePathInfos, NixClosureStore,
  type PathInfo, type ImportOptions, type NixClosureStoreOptions
} from './closure.js'
export { readSystemLink, verifyClosure, MAX_MODIFIED_LISTED, type StoreVerification, type ModifiedPath } from './verify.js'
