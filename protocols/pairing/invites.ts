// The inviter's book of invites. It stores the public key that checks each invite's proofs
// (never the secret, nor anything that can sign), the expiry, the uses left and a revocation;
// a use is consumed in one serialised read-modify-write so two joiners racing for a
// single-use code cannot both get in. Revoked and expired records are kept, so `invite list`
// shows them and a joiner is told why its code no longer works. Records of the earlier format
// (the hash that keyed an HMAC proof) are read as legacy: listed, revocable, never accepted.
import { decodeCanonical, encodeCanonical } from '../canonical.js'
import { Mutex } from '../mutex.js'
import { PairingError } from './errors.js'

interface InviteRecordBase {
  id: string
  meshId: string
  role: 'host' | 'admin'
  tags: string[]
  /** unix seconds */
  expiresAt: number
  usesLeft: number
  createdAt: number
  /** unix seconds; absent while the invite is open */
  revokedAt?: number
}

export interface OpenInviteRecord extends InviteRecordBase {
  /** the Ed25519 public key derived from the secret: verifies proofs, cannot make one */
  proofKey: Uint8Array
}

/**
 * Written by a build whose pairing proof was an HMAC keyed by a stored hash of the secret: no
 * proof this build accepts can match it. The hash is not kept (it was the pairing key).
 */
export interface LegacyInviteRecord extends InviteRecordBase { legacy: true }

export type InviteRecord = OpenInviteRecord | LegacyInviteRecord

/** The part of a level (sub)level the book needs: string keys, byte values. */
export interface InviteDb {
  get: (key: string) => Promise<Uint8Array | undefined>
  put: (key: string, value: Uint8Array) => Promise<void>
  values: () => AsyncIterable<Uint8Array>
}

const MAX_RECORD_BYTES = 4096
const BASE_FIELDS = ['createdAt', 'expiresAt', 'id', 'meshId', 'role', 'tags', 'usesLeft']

/** The field that tells the three layouts apart: current, legacy as rewritten, legacy as first written. */
function layout (r: object): 'proofKey' | 'legacy' | 'secretHash' | undefined {
  const keys = Object.keys(r).filter((k) => k !== 'revokedAt')
  const extra = keys.filter((k) => !BASE_FIELDS.includes(k))
  if (keys.length !== BASE_FIELDS.length + 1 || extra.length !== 1) return undefined
  const [k] = extra
  return k === 'proofKey' || k === 'legacy' || k === 'secretHash' ? k : undefined
}

const is32Bytes = (v: unknown): boolean => v instanceof Uint8Array && v.length === 32

function decodeRecord (bytes: Uint8Array): InviteRecord {
  let r: Partial<InviteRecord>
  try {
    r = decodeCanonical(bytes, MAX_RECORD_BYTES) as Partial<InviteRecord>
  } catch (err) {
    throw new PairingError('INVITE_STORE_CORRUPT', `stored invite record is corrupt: ${(err as Error).message}`)
  }
  const kind = typeof r === 'object' && r !== null ? layout(r) : undefined
  const raw = r as Record<string, unknown>
  const ok = kind !== undefined &&
    typeof r.id === 'string' && typeof r.meshId === 'string' &&
    (kind === 'legacy' ? raw.legacy === true : is32Bytes(raw[kind])) &&
    (r.role === 'host' || r.role === 'admin') && Array.isArray(r.tags) && r.tags.every((t) => typeof t === 'string') &&
    Number.isSafeInteger(r.expiresAt) && Number.isSafeInteger(r.usesLeft) && Number.isSafeInteger(r.createdAt) &&
    (r.revokedAt === undefined || Number.isSafeInteger(r.revokedAt))
  if (!ok) throw new PairingError('INVITE_STORE_CORRUPT', 'stored invite record is corrupt')
  if (kind === 'proofKey') return r as OpenInviteRecord
  const { secretHash: _, ...rest } = raw
  return { ...rest, legacy: true } as LegacyInviteRecord
}

export class InviteBook {
  private readonly lock = new Mutex()

  constructor (private readonly db: InviteDb) {}

  async add (record: InviteRecord): Promise<void> {
    await this.lock.run(async () => { await this.db.put(record.id, encodeCanonical(record)) })
  }

  async get (id: string): Promise<InviteRecord | undefined> {
    const bytes = await this.db.get(id)
    return bytes === undefined ? undefined : decodeRecord(bytes)
  }

  async list (): Promise<InviteRecord[]> {
    const out: InviteRecord[] = []
    for await (const v of this.db.values()) out.push(decodeRecord(v))
    return out
  }

  /**
   * Checks and spends one use of an invite. `check` runs inside the critical section and
   * throws to refuse (e.g. a bad proof), so a refused attempt never spends a use.
   */
  async consume (id: string, nowSeconds: number, check: (record: OpenInviteRecord) => void): Promise<OpenInviteRecord> {
    return this.lock.run(async () => {
      const record = await this.get(id)
      if (record === undefined) throw new PairingError('INVITE_UNKNOWN', 'no such invite (wrong code)')
      if (record.revokedAt !== undefined) throw new PairingError('INVITE_REVOKED', `the invite was revoked at ${new Date(record.revokedAt * 1000).toISOString()}`)
      if (nowSeconds >= record.expiresAt) throw new PairingError('INVITE_EXPIRED', `the invite expired at ${new Date(record.expiresAt * 1000).toISOString()}`)
      if ('legacy' in record) throw new PairingError('INVITE_REVOKED', 'the invite was issued by an earlier version and can no longer be used: ask for a new one')
      if (record.usesLeft <= 0) throw new PairingError('INVITE_USED_UP', 'the invite has been used up')
      check(record)
      const spent = { ...record, usesLeft: record.usesLeft - 1 }
      await this.db.put(id, encodeCanonical(spent))
      return spent
    })
  }

  /** Revokes an invite for good; undefined when there is no such invite. Revoking twice keeps the first time. */
  async revoke (id: string, nowSeconds: number): Promise<InviteRecord | undefined> {
    return this.lock.run(async () => {
      const record = await this.get(id)
      if (record === undefined) return undefined
      if (record.revokedAt !== undefined) return record
      const revoked = { ...record, revokedAt: nowSeconds }
      await this.db.put(id, encodeCanonical(revoked))
      return revoked
    })
  }

  /** Gives back a use taken by `consume` when the admit it paid for could not be written. */
  async refund (id: string): Promise<void> {
    await this.lock.run(async () => {
      const record = await this.get(id)
      if (record !== undefined) await this.db.put(id, encodeCanonical({ ...record, usesLeft: record.usesLeft + 1 }))
    })
  }
}
