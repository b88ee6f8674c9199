// Schemas of the membership entry bodies: genesis, admit, grant, revoke. Each validator takes
// a decoded body, checks every field and refuses unknown ones (a field we do not interpret
// must not ride along under a signature), and returns the typed body.
import { PEER_ID_RE } from '../../crypto/ids.js'
import { checkTags } from '../../crypto/invite.js'
import { XWING_PUBLIC_KEY_BYTES } from '../../crypto/xwing.js'
import { MembershipError } from './errors.js'
import { HOST_NAME_RULE, isHostName } from './host-name.js'

export type Role = 'admin' | 'host'

/**
 * `xwing` (optional): the founder's X-Wing public key, as an admit carries a joiner's.
 * `host` (optional): the founder's host name (`name` is the mesh's).
 */
export interface GenesisBody { mesh: string, name: string, founder: string, xwing?: Uint8Array, host?: string }
/** `name` (optional): the joiner's host name, as it asked in its pairing request. */
export interface AdmitBody { peer: string, role: Role, tags: string[], invite?: string, xwing?: Uint8Array, name?: string }
export interface GrantBody { peer: string, role?: Role, tags?: string[] }
/** `after`: the highest seq of the revoked peer's feed the revoker had seen (-1: none). */
export interface RevokeBody { peer: string, reason?: string, after: number }

export interface MembershipBodies { genesis: GenesisBody, admit: AdmitBody, grant: GrantBody, revoke: RevokeBody }
export type MembershipKind = keyof MembershipBodies

const MAX_MESH_ID_CHARS = 128
const MAX_NAME_CHARS = 128
const MAX_REASON_CHARS = 512
// Hosts are Ed25519 libp2p keys, whose peer ids are always this 52-character base58btc form.
const INVITE_ID_RE = /^[0-9a-f]{32}$/

function invalid (kind: string, message: string): never {
  throw new MembershipError('MEMBERSHIP_BODY_INVALID', `${kind}: ${message}`)
}

function fields (kind: string, body: unknown, required: string[], optional: string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) invalid(kind, 'body must be a map')
  const b = body as Record<string, unknown>
  for (const k of Object.keys(b)) {
    if (!required.includes(k) && !optional.includes(k)) invalid(kind, `unknown field "${k}"`)
  }
  for (const k of required) if (!(k in b)) invalid(kind, `missing field "${k}"`)
  return b
}

function peer (kind: string, v: unknown, field = 'peer'): string {
  if (typeof v !== 'string' || !PEER_ID_RE.test(v)) invalid(kind, `${field} must be an Ed25519 peer id`)
  return v
}

function role (kind: string, v: unknown): Role {
  if (v !== 'admin' && v !== 'host') invalid(kind, 'role must be "admin" or "host"')
  return v
}

function text (kind: string, field: string, v: unknown, min: number, max: number): string {
  if (typeof v !== 'string' || v.length < min || v.length > max) invalid(kind, `${field} must be a string of ${min}..${max} characters`)
  return v
}

function xwingKey (kind: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== XWING_PUBLIC_KEY_BYTES) invalid(kind, `xwing must be a ${XWING_PUBLIC_KEY_BYTES}-byte X-Wing public key`)
  return v
}

function hostName (kind: string, field: string, v: unknown): string {
  if (!isHostName(v)) invalid(kind, `${field} must be a host name: ${HOST_NAME_RULE}`)
  return v
}

function tags (kind: string, v: unknown): string[] {
  checkTags(v, (message) => invalid(kind, message))
  return v
}

export function validateGenesis (body: unknown): GenesisBody {
  const b = fields('genesis', body, ['mesh', 'name', 'founder'], ['xwing', 'host'])
  const out: GenesisBody = { mesh: text('genesis', 'mesh', b.mesh, 1, MAX_MESH_ID_CHARS), name: text('genesis', 'name', b.name, 0, MAX_NAME_CHARS), founder: peer('genesis', b.founder, 'founder') }
  if ('xwing' in b) out.xwing = xwingKey('genesis', b.xwing)
  if ('host' in b) out.host = hostName('genesis', 'host', b.host)
  return out
}

export function validateAdmit (body: unknown): AdmitBody {
  const b = fields('admit', body, ['peer', 'role', 'tags'], ['invite', 'xwing', 'name'])
  const out: AdmitBody = { peer: peer('admit', b.peer), role: role('admit', b.role), tags: tags('admit', b.tags) }
  if ('invite' in b) {
    if (typeof b.invite !== 'string' || !INVITE_ID_RE.test(b.invite)) invalid('admit', 'invite must be an invite id (32 hex characters)')
    out.invite = b.invite
  }
  if ('xwing' in b) out.xwing = xwingKey('admit', b.xwing)
  if ('name' in b) out.name = hostName('admit', 'name', b.name)
  return out
}

export function validateGrant (body: unknown): GrantBody {
  const b = fields('grant', body, ['peer'], ['role', 'tags'])
  if (!('role' in b) && !('tags' in b)) invalid('grant', 'a grant changes role, tags or both')
  const out: GrantBody = { peer: peer('grant', b.peer) }
  if ('role' in b) out.role = role('grant', b.role)
  if ('tags' in b) out.tags = tags('grant', b.tags)
  return out
}

export function validateRevoke (body: unknown): RevokeBody {
  const b = fields('revoke', body, ['peer', 'after'], ['reason'])
  if (!Number.isSafeInteger(b.after) || (b.after as number) < -1) invalid('revoke', 'after must be an integer >= -1')
  const out: RevokeBody = { peer: peer('revoke', b.peer), after: b.after as number }
  if ('reason' in b) out.reason = text('revoke', 'reason', b.reason, 0, MAX_REASON_CHARS)
  return out
}

/** kind → validator returning the typed body; throws MembershipError(MEMBERSHIP_BODY_INVALID). */
export const membershipSchemas: { [K in MembershipKind]: (body: unknown) => MembershipBodies[K] } = {
  genesis: validateGenesis,
  admit: validateAdmit,
  grant: validateGrant,
  revoke: validateRevoke
}

/** Registers the four kinds with the audit codec's registry (protocols/audit KindRegistry). */
