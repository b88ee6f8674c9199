// Frames of a room or epoch this host has not seen start yet (the log entry may still be on its
// way) wait here, bounded in number and age, until the room changes.
const MAX_PENDING = 1024
const PENDING_MS = 60_000

export class PendingFrames {
  private readonly now: () => number
  private readonly byRoom = new Map<string, Array<{ bytes: Uint8Array, at: number }>>()
  private count = 0

  constructor (now: () => number) {
    this.now = now
  }

  hold (room: string, bytes: Uint8Array): void {
    const now = this.now()
    const list = (this.byRoom.get(room) ?? []).filter(p => now - p.at < PENDING_MS)
    this.count -= (this.byRoom.get(room)?.length ?? 0) - list.length
    if (this.count >= MAX_PENDING) return
    list.push({ bytes, at: now })
    this.count++
    this.byRoom.set(room, list)
  }

  /** Hands the room's frames that have not expired to `take`, one at a time, and forgets them. */
  async retry (room: string, take: (bytes: Uint8Array) => Promise<void>): Promise<void> {
    const list = this.byRoom.get(room)
    if (list === undefined) return
    this.byRoom.delete(room)
    this.count -= list.length
    for (const p of list) {
      if (this.now() - p.at >= PENDING_MS) continue
      await take(p.bytes)
    }
  }
}
