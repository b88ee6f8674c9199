// A room's membership changes as this host writes them: each is one audit entry that names its
// epoch and kid and carries the sealed keys the change calls for (see state.ts for how every
// host folds them). Who may write a change is the service's check; this decides what it says.
import { randomBytes } from 'node:crypto'
import { MAX_KEYS_PER_ENTRY, ROOM_CREATE, ROOM_ID_NONCE_BYTES, ROOM_MEMBER, ROOM_REKEY, memberId, roomIdFor, type HistoryMode, type RoomMember, type SealedKey } from './codec.js'
import type { EpochKeys } from './epoch-keys.js'
import { RoomError } from './errors.js'
import { memberHosts, type Room } from './state.js'
import type { RoomLog } from './types.js'

export interface RoomChangesComponents {
  /** this host: the creator of the rooms it creates */
  me: string
  store: Pick<RoomLog, 'append'>
  keys: Pick<EpochKeys, 'open' | 'sealTo' | 'fresh'>
  /** a mesh member whose X-Wing key is known: a key can be sealed to it */
  reachable: (host: string) => boolean
}

export class RoomChanges {
  private readonly c: RoomChangesComponents

  constructor (components: RoomChangesComponents) {
    this.c = components
  }

  /** Writes a new room's room-create, its epoch 0 key sealed to every member host; returns its id. */
  async create (opts: { name: string, members: RoomMember[], history?: HistoryMode }): Promise<string> {
    const hosts = [...new Set(opts.members.map(m => m.host))].sort()
    const nonce = new Uint8Array(randomBytes(ROOM_ID_NONCE_BYTES))
    const room = roomIdFor(this.c.me, nonce)
    const { kid, keys } = await this.c.keys.fresh(room, 0, hosts)
    await this.append(ROOM_CREATE, { room, name: opts.name, history: opts.history ?? 'joined', members: opts.members, nonce, epoch: 0, kid, keys })
    return room
  }

  /**
   * Adds a member that is not one yet. In a room whose history is per join, a host that is new
   * to the room gets a new epoch (sealed to every member host), so nothing sent before it joined
   * opens with its key; in a shared-history room it gets the current key and the earlier ones
   * this host holds.
   */
  async add (room: Room, m: RoomMember): Promise<void> {
    const current = room.epochs.get(room.epoch)!
    const hostIn = memberHosts(room).includes(m.host) && current.keys.has(m.host)
    let body: { epoch: number, kid: Uint8Array, keys: SealedKey[] }
    const currentKey = hostIn || room.history !== 'shared' ? undefined : await this.c.keys.open(room, room.epoch)
    if (hostIn) {
      body = { epoch: room.epoch, kid: current.kid, keys: [] }
    } else if (currentKey !== undefined) {
      const keys = await this.c.keys.sealTo(room.id, room.epoch, currentKey, [m.host])
      for (let e = room.epoch - 1; e >= 0 && keys.length < MAX_KEYS_PER_ENTRY; e--) {
        const k = await this.c.keys.open(room, e)
        if (k !== undefined) keys.push(...await this.c.keys.sealTo(room.id, e, k, [m.host]))
      }
      body = { epoch: room.epoch, kid: current.kid, keys }
    } else {
      const hosts = [...new Set([...memberHosts(room).filter(h => this.c.reachable(h)), m.host])].sort()
      body = { epoch: room.epoch + 1, ...await this.c.keys.fresh(room.id, room.epoch + 1, hosts) }
    }
    await this.append(ROOM_MEMBER, { room: room.id, op: 'add', member: m, ...body })
  }

  /** Removes a member; if its host has no agent left in the room, a new epoch excludes the host. */
  async remove (room: Room, m: RoomMember): Promise<void> {
    if (!room.members.some(x => memberId(x) === memberId(m))) throw new RoomError('ROOM_NOT_MEMBER', `${memberId(m)} is not a member of room ${room.id}`)
    const remaining = room.members.filter(x => memberId(x) !== memberId(m))
    const hosts = [...new Set(remaining.map(x => x.host))].filter(h => this.c.reachable(h)).sort()
    const body = hosts.includes(m.host)
      ? { epoch: room.epoch, kid: room.epochs.get(room.epoch)!.kid, keys: [] }
      : { epoch: room.epoch + 1, ...await this.c.keys.fresh(room.id, room.epoch + 1, hosts) }
    await this.append(ROOM_MEMBER, { room: room.id, op: 'remove', member: m, ...body })
  }

  /** Starts a new epoch whose key is sealed to the current member hosts that are mesh members. */
  async rekey (room: Room): Promise<void> {
    const hosts = memberHosts(room).filter(h => this.c.reachable(h))
    await this.append(ROOM_REKEY, { room: room.id, epoch: room.epoch + 1, ...await this.c.keys.fresh(room.id, room.epoch + 1, hosts) })
  }

  private async append (kind: string, body: Record<string, unknown>): Promise<void> {
    try {
      await this.c.store.append(kind, body)
    } catch (err) {
      if ((err as { code?: string }).code === 'BODY_INVALID') throw new RoomError('ROOM_BAD_REQUEST', (err as Error).message)
      throw err
    }
  }
}
