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

  /** Last known dialable addresses of each peer, so a restarted host can find the mesh again. */
  async addresses (): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>()
    for await (const [key, value] of this.db.iterator({ gt: 'addr!', lt: 'addr!\xff' })) {
      const addrs = JSON.parse(value) as unknown
      if (Array.isArray(addrs) && addrs.every((a) => typeof a === 'string')) out.set(key.slice(5), addrs)
    }
    return out
  }

  async setAddresses (peer: string, addrs: string[]): Promise<void> {
    await this.db.put(`addr!${peer}`, JSON.stringify(addrs))
  }
}
