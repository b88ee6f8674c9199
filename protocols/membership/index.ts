// Public surface of the membership view: the body schemas (to register with the audit codec)
// and the pure fold from audit entries to the member set.
export { MembershipError } from './errors.js'
export { HOST_NAME_RE, HOST_NAME_RULE, isHostName } from './host-name.js'
export {
  membershipSchemas, validateAdmit, validateGenesis, validateGrant, validateRevoke,
  type AdmitBody, type GenesisBody, type GrantBody, type MembershipBodies, type MembershipKind, type RevokeBody, type Role
} from './codec.js'
export {
  applyEntry, computeView, createMembershipState, isAdmin, isMember, standingAt, viewAsOf, viewOf,
  type MemberInfo, type MemberView, type MembershipConfig, type MembershipState, type RevokedInfo, type Standing
} from './view.js'
