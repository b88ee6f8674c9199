// A stale room (its current key reached a host that left, or misses a member host) is rekeyed
// by a manager: at once by the one whose change came last (it knows it raced), by any other
// after `delayMs` if the room is still stale then.
import { canManage, type Room } from './state.js'
import type { RoomLogger, RoomMembershipView } from './types.js'
import { isAdminIn, isStale, roomHealth } from './views.js'

export interface RepairsComponents {
  me: string
  mesh: RoomMembershipView
  /** the room as folded now */
  room: (id: string) => Room | undefined
  /** starts a new epoch of the room */
  rekey: (id: string) => Promise<unknown>
  delayMs: number
  log?: RoomLogger
}

export class Repairs {
  private readonly c: RepairsComponents
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private running = false

  constructor (components: RepairsComponents) {
    this.c = components
  }

  start (): void {
    this.running = true
  }

  stop (): void {
    this.running = false
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  /** Schedules a rekey of `room` if it is stale and this host may manage it. */
  schedule (room: Room): void {
    if (!isStale(roomHealth(room, this.c.mesh)) || !canManage(room, this.c.me, isAdminIn(this.c.mesh)) || this.timers.has(room.id) || !this.running) return
    const delay = room.lastChangeBy === this.c.me ? 0 : this.c.delayMs
    const timer = setTimeout(() => {
      this.timers.delete(room.id)
      const now = this.c.room(room.id)
      if (now === undefined || !this.running) return
      if (!isStale(roomHealth(now, this.c.mesh))) return
      this.c.rekey(room.id).catch((err: Error) => this.c.log?.warn({ room: room.id, err: err.message }, 'rooms: repair rekey failed'))
    }, delay)
    timer.unref()
    this.timers.set(room.id, timer)
  }
}
