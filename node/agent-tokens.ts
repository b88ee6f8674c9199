// Agent tokens: 32 random bytes, shown once, kept in the "room-agents" sublevel as
//   <sha256 hex of the token>   JSON {agent, expiresAt}: expiresAt in ms on this host's clock, or null
// A lookup by hash needs no secret comparison at all: knowing a stored key is knowing a preimage
// of it. Revoking an agent deletes its tokens and ends at once the streams and long polls its
// tokens hold open; an expiring token ends them at its expiry. Expiry is this host's own clock:
// the token is only ever presented to this host.
import { createHash, randomBytes } from 'node:crypto'
import type { AbstractLevel } from 'abstract-level'
import { isAgentName, RoomError } from '../protocols/rooms/index.js'
import type { Principal } from './api.js'

/** The longest a token may be issued for (a year): a longer-lived one is issued without expiry. */
export const MAX_TOKEN_TTL_MS = 365 * 24 * 3600_000
const MAX_RECORD_CHARS = 256
const MAX_TIMER_MS = 2 ** 31 - 1

export interface IssuedToken { agent: string, token: string, expiresAt: number | null }

interface Grant { hash: string, agent: string, expiresAt: number | null }

/** A long-lived request's hold on its token: `signal` aborts when the token stops being valid. */
export interface TokenWatch { signal: AbortSignal, done: () => void }

function hashOf (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

function decodeRecord (value: string): { agent: string, expiresAt: number | null } | undefined {
  // written before tokens could expire: the bare agent name
  if (!value.startsWith('{')) return isAgentName(value) ? { agent: value, expiresAt: null } : undefined
  if (value.length > MAX_RECORD_CHARS) return undefined
  let v: unknown
  try {
    v = JSON.parse(value)
  } catch {
    return undefined
  }
  const r = v as Record<string, unknown> | null
  if (r === null || typeof r !== 'object' || Object.keys(r).length !== 2 || !isAgentName(r.agent)) return undefined
  if (r.expiresAt !== null && !Number.isSafeInteger(r.expiresAt)) return undefined
  return { agent: r.agent, expiresAt: r.expiresAt as number | null }
}

export class AgentTokens {
  private readonly db: AbstractLevel<any, string, string>
  private readonly now: () => number
  /** the grant behind each agent principal the authenticator handed out */
  private readonly grants = new WeakMap<Principal, Grant>()
  /** token hash → the controllers of the requests it holds open */
  private readonly watching = new Map<string, Set<AbortController>>()
  /** hashes revoked since start: a request that resolved its token just before still ends */
  private readonly revoked = new Set<string>()

  constructor (root: AbstractLevel<any, any, any>, now: () => number = Date.now) {
    this.db = root.sublevel<string, string>('room-agents', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as AbstractLevel<any, string, string>
    this.now = now
  }

  /** A new token for `agent`, valid for `ttlMs` (at most MAX_TOKEN_TTL_MS) or until revoked. */
  async issue (agent: string, ttlMs?: number): Promise<IssuedToken> {
    if (!isAgentName(agent)) throw new RoomError('ROOM_BAD_REQUEST', 'agent must be a name of 1..32 letters, digits, ".", "_" or "-"')
    if (ttlMs !== undefined && (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS)) {
      throw new RoomError('ROOM_BAD_REQUEST', `a token's time to live is 1 ms..${MAX_TOKEN_TTL_MS / 86_400_000} days`)
    }
    const token = randomBytes(32).toString('hex')
    const expiresAt = ttlMs === undefined ? null : this.now() + ttlMs
    await this.db.put(hashOf(token), JSON.stringify({ agent, expiresAt }))
    return { agent, token, expiresAt }
  }

  /** The principal a token speaks for, or undefined (unknown, revoked, expired). */
  async resolve (token: string): Promise<Principal | undefined> {
    const hash = hashOf(token)
    const value = await this.db.get(hash)
    const record = value === undefined ? undefined : decodeRecord(value)
    if (record === undefined) return undefined
    if (record.expiresAt !== null && this.now() >= record.expiresAt) {
      await this.db.del(hash)
      return undefined
    }
    const principal: Principal = { kind: 'agent', agent: record.agent }
    this.grants.set(principal, { hash, ...record })
    return principal
  }

  /** Deletes every token of `agent` and ends the requests they hold open; returns how many. */
  async revoke (agent: string): Promise<number> {
    const hashes: string[] = []
    for await (const [hash, value] of this.db.iterator()) if (decodeRecord(value)?.agent === agent) hashes.push(hash)
    await this.db.batch(hashes.map(key => ({ type: 'del' as const, key })))
    for (const hash of hashes) {
      this.revoked.add(hash)
      for (const ac of this.watching.get(hash) ?? []) ac.abort()
    }
    return hashes.length
  }

  /**
   * For a request that stays open (a stream, a long poll): a signal that aborts when the token
   * behind `principal` is revoked or expires. The operator's never does.
   */
  watch (principal: Principal): TokenWatch {
    const ac = new AbortController()
    const grant = this.grants.get(principal)
    if (grant === undefined) return { signal: ac.signal, done: () => {} }
    if (this.revoked.has(grant.hash)) ac.abort()
    let set = this.watching.get(grant.hash)
    if (set === undefined) this.watching.set(grant.hash, set = new Set())
    set.add(ac)
    let timer: NodeJS.Timeout | undefined
    const arm = (expiresAt: number): void => {
      const left = expiresAt - this.now()
      if (left <= 0) return ac.abort()
      // setTimeout holds at most ~24.8 days: a longer wait is re-armed
      timer = setTimeout(() => { arm(expiresAt) }, Math.min(left, MAX_TIMER_MS))
      timer.unref()
    }
    if (grant.expiresAt !== null) arm(grant.expiresAt)
    return {
      signal: ac.signal,
      done: () => {
        clearTimeout(timer)
        set.delete(ac)
        if (set.size === 0 && this.watching.get(grant.hash) === set) this.watching.delete(grant.hash)
      }
    }
  }
}
