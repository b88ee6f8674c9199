// Small records the node keeps beside the audit log: which mesh it belongs to (known before
// the log holds the genesis, for a host that just joined) and where members were last seen.
import type { AbstractLevel } from 'abstract-level'
import { NodeError } from './errors.js'

export interface MeshMeta {
  meshId: string
  name: string
  founder: string
  /** the inviter a joiner trusts until its copy of the log shows it as a member */
  trusted: string[]
}

/** Who revoked a member, when (ms, the revoke entry's ts) and why. */
export interface Revocation { by: string, at: number, reason?: string }

type MetaDb = AbstractLevel<any, string, string>

export class MetaStore {
  private readonly db: MetaDb

  constructor (root: AbstractLevel<any, any, any>) {
    this.db = root.sublevel<string, string>('meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as MetaDb
  }

  async mesh (): Promise<MeshMeta | undefined> {
    const text = await this.db.get('mesh')
    if (text === undefined) return undefined
    const m = JSON.parse(text) as Partial<MeshMeta>
    if (typeof m.meshId !== 'string' || typeof m.founder !== 'string' || typeof m.name !== 'string' || !Array.isArray(m.trusted)) {
      throw new NodeError('CONFIG_INVALID', 'the stored mesh record is corrupt')
    }
    return m as MeshMeta
  }

  async setMesh (meta: MeshMeta): Promise<void> {
    await this.db.put('mesh', JSON.stringify(meta))
  }

  /** This host's name (`init --name`, `join --name`): what its pairing request asks to be admitted under. */
  async hostName (): Promise<string | undefined> {
    return await this.db.get('host-name') ?? undefined
  }

  async setHostName (name: string): Promise<void> {
    await this.db.put('host-name', name)
  }

  /** A revoke of this host a member showed it (signed, checked) that its log could not take in. */
  async revocation (): Promise<Revocation | undefined> {
    const text = await this.db.get('revocation')
    if (text === undefined) return undefined
    const r = JSON.parse(text) as Partial<Revocation>
    if (typeof r.by !== 'string' || typeof r.at !== 'number') throw new NodeError('CONFIG_INVALID', 'the stored revocation record is corrupt')
    return { by: r.by, at: r.at, ...(typeof r.reason === 'string' ? { reason: r.reason } : {}) }
  }

  async setRevocation (r: Revocation): Promise<void> {
    await this.db.put('revocation', JSON.stringify(r))
  }

  /**
   * Last known dialable addresses of members, newest first, so a restarted host can find the
   * mesh again. A record is one LevelDB put (atomic); a record that does not parse is skipped.
   */
  async addresses (): Promise<Map<string, string[]>> {
    const rows: Array<{ peer: string } & KnownAddresses> = []
    for await (const [key, value] of this.db.iterator({ gt: ADDR, lt: `${ADDR}\xff` })) {
      const r = parseKnown(value)
      if (r !== undefined) rows.push({ peer: key.slice(ADDR.length), ...r })
    }
    rows.sort((a, b) => b.seenAt - a.seenAt)
    return new Map(rows.map((r) => [r.peer, r.addrs]))
  }

  /**
   * Records where `peer` listens (at most MAX_ADDRS_PER_PEER addresses); beyond
   * MAX_KNOWN_PEERS the peers seen longest ago are forgotten in the same batch.
   */
  async setAddresses (peer: string, addrs: string[], seenAt = Date.now()): Promise<void> {
    const known = await this.addresses()
    known.delete(peer)
    const evict = [...known.keys()].slice(MAX_KNOWN_PEERS - 1)
    const record: KnownAddresses = { addrs: addrs.slice(0, MAX_ADDRS_PER_PEER), seenAt }
    await this.db.batch([
      { type: 'put', key: `${ADDR}${peer}`, value: JSON.stringify(record) },
      ...evict.map((p) => ({ type: 'del' as const, key: `${ADDR}${p}` }))
    ])
  }

  async dropAddresses (peer: string): Promise<void> {
    await this.db.del(`${ADDR}${peer}`)
  }
}

const ADDR = 'addr!'
/** Enough members to find the mesh again: gossip reaches the rest through any of them. */
export const MAX_KNOWN_PEERS = 64
export const MAX_ADDRS_PER_PEER = 8

interface KnownAddresses { addrs: string[], seenAt: number }

function parseKnown (text: string): KnownAddresses | undefined {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return undefined
  }
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((a) => typeof a === 'string')
  // Earlier versions stored the bare list.
  if (strings(v)) return { addrs: v, seenAt: 0 }
  const r = v as Partial<KnownAddresses> | null
  return r !== null && typeof r === 'object' && strings(r.addrs) && typeof r.seenAt === 'number' ? { addrs: r.addrs, seenAt: r.seenAt } : undefined
}
