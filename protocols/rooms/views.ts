// What this host reports of a room: pure functions of the fold and the mesh's member set.
import { canManage, memberHosts, type Room } from './state.js'
import type { RoomInfo, RoomMembershipView } from './types.js'

export function isAdminIn (mesh: RoomMembershipView): (peer: string) => boolean {
  return (peer) => mesh.isAdmin?.(peer) ?? false
}

/** A mesh member whose X-Wing key is known: a key can be sealed to it. */
export function reachable (mesh: RoomMembershipView, host: string): boolean {
  return mesh.isMember(host) && mesh.xwingOf(host) !== undefined
}

export interface RoomHealth {
  /** hosts holding the current key that are no member host or mesh member any more */
  leaked: string[]
  /** member hosts without the current key that could receive it */
  missing: string[]
}

export function roomHealth (room: Room, mesh: RoomMembershipView): RoomHealth {
  const hosts = new Set(memberHosts(room))
  const holders = [...(room.epochs.get(room.epoch)?.keys.keys() ?? [])]
  return {
    leaked: holders.filter(h => !hosts.has(h) || !mesh.isMember(h)),
    missing: room.missing.filter(h => reachable(mesh, h))
  }
}

/** A rekey is due. */
export function isStale (h: RoomHealth): boolean {
  return h.leaked.length > 0 || h.missing.length > 0
}

export function roomInfo (room: Room, me: string, mesh: RoomMembershipView): RoomInfo {
  return {
    id: room.id,
    name: room.name,
    creator: room.creator,
    createdAt: room.createdAt,
    history: room.history,
    epoch: room.epoch,
    members: room.members,
    member: memberHosts(room).includes(me),
    manager: canManage(room, me, isAdminIn(mesh)),
    stale: isStale(roomHealth(room, mesh))
  }
}
