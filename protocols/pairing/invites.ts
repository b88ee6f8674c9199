// The inviter's book of open invites. It stores the hash of each secret (never the secret),
// the expiry and the uses left; a use is consumed in one serialised read-modify-write so two
// joiners racing for a single-use code cannot both get in.
import { decodeCanonical, encodeCanonical } from '../canonical.js'
import { Mutex } from '../mutex.js'
import { PairingError } from './errors.js'

export interface InviteRecord {
  id: string
  meshId: string
  /** SHA-256 of the domain-separated secret: the HMAC key of the pairing proof */
  secretHash: Uint8Array
  role: 'host' | 'admin'
  tags: string[]
  /** unix seconds */
  expiresAt: number
  usesLeft: number
  createdAt: number
}

/** The part of a level (sub)level the book needs: string keys, byte values. */
export interface InviteDb {
  get: (key: string) => Promise<Uint8Array | undefined>
  put: (key: string, value: Uint8Array) => Promise<void>
  values: () => AsyncIterable<Uint8Array>
}

const MAX_RECORD_BYTES = 4096
const RECORD_FIELDS = ['createdAt', 'expiresAt', 'id', 'meshId', 'role', 'secretHash', 'tags', 'usesLeft']

const exactFields = (r: object): boolean => {
  const keys = Object.keys(r).sort()
  return keys.length === RECORD_FIELDS.length && keys.every((k, i) => k === RECORD_FIELDS[i])
}

function decodeRecord (bytes: Uint8Array): InviteRecord {
  let r: Partial<InviteRecord>
  try {
    r = decodeCanonical(bytes, MAX_RECORD_BYTES) as Partial<InviteRecord>
  } catch (err) {
    throw new PairingError('INVITE_STORE_CORRUPT', `stored invite record is corrupt: ${(err as Error).message}`)
  }
  const ok = typeof r === 'object' && r !== null && exactFields(r) &&
    typeof r.id === 'string' && typeof r.meshId === 'string' &&
    r.secretHash instanceof Uint8Array && r.secretHash.length === 32 &&
    (r.role === 'host' || r.role === 'admin') && Array.isArray(r.tags) && r.tags.every((t) => typeof t === 'string') &&
    Number.isSafeInteger(r.expiresAt) && Number.isSafeInteger(r.usesLeft) && Number.isSafeInteger(r.createdAt)
  if (!ok) throw new PairingError('INVITE_STORE_CORRUPT', 'stored invite record is corrupt')
  return r as InviteRecord
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
  async consume (id: string, nowSeconds: number, check: (record: InviteRecord) => void): Promise<InviteRecord> {
    return this.lock.run(async () => {
      const record = await this.get(id)
      if (record === undefined) throw new PairingError('INVITE_UNKNOWN', 'no such invite (wrong or revoked code)')
      if (nowSeconds >= record.expiresAt) throw new PairingError('INVITE_EXPIRED', `the invite expired at ${new Date(record.expiresAt * 1000).toISOString()}`)
      if (record.usesLeft <= 0) throw new PairingError('INVITE_USED_UP', 'the invite has been used up')
      check(record)
      const spent = { ...record, usesLeft: record.usesLeft - 1 }
      await this.db.put(id, encodeCanonical(spent))
      return spent
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
