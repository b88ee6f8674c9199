// The `invite` entry an admin writes when it issues an invite: what the invite grants, never its
// secret (the proof key stays in the inviter's invite book). One schema, checked on append and on
// every entry received, like every other kind.
import { checkTags } from '../../crypto/invite.js'
import { PairingError } from './errors.js'

export interface InviteEntryBody { invite: string, role: 'admin' | 'host', tags: string[], uses: number, expiresAt: number }

const INVITE_ID_RE = /^[0-9a-f]{32}$/
/** seconds since the epoch: an invite's expiry is written in seconds, as the code carries it */
const MAX_EPOCH_SECONDS = 2 ** 40

function invalid (message: string): never {
  throw new PairingError('INVITE_ENTRY_INVALID', `invite entry: ${message}`)
}

export function parseInviteEntry (body: unknown): InviteEntryBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) invalid('body must be a map')
  const b = body as Record<string, unknown>
  for (const k of Object.keys(b)) if (!['invite', 'role', 'tags', 'uses', 'expiresAt'].includes(k)) invalid(`unknown field "${k}"`)
  if (typeof b.invite !== 'string' || !INVITE_ID_RE.test(b.invite)) invalid('invite must be an invite id (32 hex characters)')
  if (b.role !== 'admin' && b.role !== 'host') invalid('role must be "admin" or "host"')
  checkTags(b.tags, invalid)
  if (!Number.isSafeInteger(b.uses) || (b.uses as number) < 1) invalid('uses must be a whole number >= 1')
  if (!Number.isSafeInteger(b.expiresAt) || (b.expiresAt as number) < 0 || (b.expiresAt as number) > MAX_EPOCH_SECONDS) invalid('expiresAt must be seconds since the epoch')
  return b as unknown as InviteEntryBody
}

export const inviteEntrySchemas = { invite: parseInviteEntry }
