// This host's epoch keys: opened from the sealed copies in the log once per (room, epoch, kid)
// and checked against the kid, and fresh ones sealed to the member hosts of a new epoch.
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { EPOCH_KEY_BYTES, openEpochKey, sealEpochKey } from '../../crypto/seal.js'
import { keyId, MAX_ROOM_HOSTS, type SealedKey } from './codec.js'
import { RoomError } from './errors.js'
import type { Room } from './state.js'
import type { RoomLogger } from './types.js'

export interface EpochKeysComponents {
  /** this host's peer id, the recipient its keys were sealed to */
  me: string
  xwingSeed: Uint8Array
  /** the X-Wing public key of a host that is a mesh member, else undefined */
  recipientKey: (host: string) => Uint8Array | undefined
  log?: RoomLogger
}

const cacheId = (room: string, epoch: number, kid: Uint8Array): string => `${room}/${epoch}/${Buffer.from(kid).toString('hex')}`

export class EpochKeys {
  private readonly c: EpochKeysComponents
  private readonly keys = new Map<string, Promise<Uint8Array | undefined>>()

  constructor (components: EpochKeysComponents) {
    this.c = components
  }

  /** This host's key of one epoch, opened once and checked against the epoch's kid. */
  async open (room: Room, epoch: number): Promise<Uint8Array | undefined> {
    const e = room.epochs.get(epoch)
    const sealed = e?.keys.get(this.c.me)
    if (e === undefined || sealed === undefined) return undefined
    const id = cacheId(room.id, epoch, e.kid)
    let p = this.keys.get(id)
    if (p === undefined) {
      p = (async () => {
        try {
          const key = await openEpochKey({ seed: this.c.xwingSeed, peerId: this.c.me, roomId: room.id, epoch, sealed })
          if (timingSafeEqual(keyId(room.id, epoch, key), e.kid)) return key
          this.c.log?.warn({ room: room.id, epoch }, 'rooms: a sealed epoch key does not match its epoch\'s key id')
        } catch (err) {
          this.c.log?.warn({ room: room.id, epoch, err: (err as Error).message }, 'rooms: cannot open a sealed epoch key')
        }
        return undefined
      })()
      this.keys.set(id, p)
    }
    return p
  }

  /** `key` sealed to each of `hosts`; every one must be a mesh member with a known X-Wing key. */
  async sealTo (roomId: string, epoch: number, key: Uint8Array, hosts: string[]): Promise<SealedKey[]> {
    if (hosts.length > MAX_ROOM_HOSTS) throw new RoomError('ROOM_TOO_MANY_HOSTS', `a room has at most ${MAX_ROOM_HOSTS} member hosts`)
    return Promise.all(hosts.map(async (host) => {
      const pub = this.c.recipientKey(host)
      if (pub === undefined) throw new RoomError('ROOM_HOST_UNKNOWN', `${host} is not a mesh member with a known X-Wing key`)
      return { host, epoch, sealed: await sealEpochKey({ recipientPublicKey: pub, recipientPeerId: host, roomId, epoch, key }) }
    }))
  }

  /** A fresh epoch key sealed to `hosts`; the key is remembered if this host is one of them. */
  async fresh (roomId: string, epoch: number, hosts: string[]): Promise<{ kid: Uint8Array, keys: SealedKey[] }> {
    const key = new Uint8Array(randomBytes(EPOCH_KEY_BYTES))
    const kid = keyId(roomId, epoch, key)
    const keys = await this.sealTo(roomId, epoch, key, hosts)
    if (hosts.includes(this.c.me)) this.keys.set(cacheId(roomId, epoch, kid), Promise.resolve(key))
    return { kid, keys }
  }
}
