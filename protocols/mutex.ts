// One lock for every read-modify-write section of this layer (the audit store's batches, room
// history counters, invite uses): libp2p's own queue with one job at a time, in call order.
import { Queue } from '@libp2p/utils'

export class Mutex {
  private readonly queue = new Queue<unknown>({ concurrency: 1 })

  /** Runs `fn` after every job queued before it has settled; a failing job does not block the next. */
  async run<T> (fn: () => Promise<T>): Promise<T> {
    return await (this.queue.add(fn) as Promise<T>)
  }
}
