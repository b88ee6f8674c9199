// Public surface of drift, pure: the `drift` entry schema (to register with the audit codec), the
// generation a host's own log says it runs, and what differs from it.
export { DriftError, type DriftErrorCode } from './errors.js'
export {
  DRIFT_KIND, DRIFT_STATES, DRIFT_WHATS, REPAIR_OUTCOMES, MAX_MODIFIED_PATHS, MAX_LINK_CHARS, MAX_REASON_CHARS,
  driftSchemas, parseDrift, type DriftBody, type DriftState, type DriftWhat, type RepairOutcome
} from './schema.js'
export { DESIRED_KINDS, findDrift, foldDesired, generationSaid, type Desired, type Observed } from './desired.js'
