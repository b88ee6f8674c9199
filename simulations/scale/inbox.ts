// Every host's delivered-but-unread messages, in one slab of typed arrays: each host owns a
// region [off, off + cap) of it and fills it from the start. Every entry is delivered to every
// host, so this is written hundreds of millions of times in a 10,000-host run; a slab keeps one
// delivery at a few array writes, with no per-host objects to chase and nothing for the GC.
// A full region moves to the end of the slab with twice the room; when the slab runs out, the
// live regions are packed into a new one. Arrival times are kept as float32 offsets from the
// message's publish time (a spread lasts seconds: microsecond precision), which is what keeps
// the slab at 8 bytes a message when every host holds the last second's burst of entries.

const FIRST_CAP = 64

export class Inboxes {
  /** earliest arrival still unread per host (+∞: none) */
  readonly nextArrival: Float64Array
  /** after `takeDue`: the messages read and their arrival times, in delivery order */
  dueMsg = new Int32Array(FIRST_CAP)
  dueAt = new Float64Array(FIRST_CAP)
  private readonly off: Int32Array
  private readonly len: Int32Array
  private readonly cap: Int32Array
  private msg: Int32Array
  private at: Float32Array
  /** publish time per message index */
  private sentAt = new Float64Array(1024)
  private top: number

  constructor (readonly hosts: number) {
    this.nextArrival = new Float64Array(hosts).fill(Number.POSITIVE_INFINITY)
    this.off = new Int32Array(hosts).map((_, h) => h * FIRST_CAP)
    this.len = new Int32Array(hosts)
    this.cap = new Int32Array(hosts).fill(FIRST_CAP)
    this.top = hosts * FIRST_CAP
    this.msg = new Int32Array(this.top)
    this.at = new Float32Array(this.top)
  }

  /** Message m is being published at t (before any delivery of it). */
  published (m: number, t: number): void {
    if (m >= this.sentAt.length) {
      const grown = new Float64Array(Math.max(2 * this.sentAt.length, m + 1))
      grown.set(this.sentAt)
      this.sentAt = grown
    }
    this.sentAt[m] = t
  }

  deliver (v: number, m: number, at: number): void {
    const l = this.len[v]
    if (l === this.cap[v]) this.grow(v)
    const i = this.off[v] + l
    this.msg[i] = m
    this.at[i] = at - this.sentAt[m]
    this.len[v] = l + 1
    if (this.nextArrival[v] > at) this.nextArrival[v] = at
  }

  /** Moves host v's messages that arrived by `now` into dueMsg/dueAt; returns how many. */
  takeDue (v: number, now: number): number {
    const { msg, at, sentAt } = this
    const start = this.off[v]
    const end = start + this.len[v]
    if (this.dueMsg.length < end - start) {
      this.dueMsg = new Int32Array(2 * (end - start))
      this.dueAt = new Float64Array(2 * (end - start))
    }
    const { dueMsg, dueAt } = this
    let due = 0
    let keep = start
    let next = Number.POSITIVE_INFINITY
    for (let i = start; i < end; i++) {
      const m = msg[i]
      const a = sentAt[m] + at[i]
      if (a <= now) {
        dueMsg[due] = m
        dueAt[due++] = a
      } else {
        msg[keep] = m
        at[keep++] = at[i]
        if (a < next) next = a
      }
    }
    this.len[v] = keep - start
    this.nextArrival[v] = next
    return due
  }

  private grow (v: number): void {
    const want = 2 * this.cap[v]
    if (this.top + want > this.msg.length) this.pack(v, want)
    else {
      this.move(v, this.msg, this.at, this.top)
      this.top += want
    }
    this.cap[v] = want
  }

  private move (v: number, msg: Int32Array, at: Float32Array, to: number): void {
    const from = this.off[v]
    msg.set(this.msg.subarray(from, from + this.len[v]), to)
    at.set(this.at.subarray(from, from + this.len[v]), to)
    this.off[v] = to
  }

  /**
   * Packs every region into a fresh slab, host v's at its new capacity, with room for half the
   * hosts to double again: bursts reach every host at once, so the others follow soon.
   */
  private pack (v: number, want: number): void {
    let need = 0
    for (let h = 0; h < this.hosts; h++) need += h === v ? want : this.cap[h]
    const msg = new Int32Array(Math.ceil(1.5 * need))
    const at = new Float32Array(msg.length)
    let to = 0
    for (let h = 0; h < this.hosts; h++) {
      this.move(h, msg, at, to)
      to += h === v ? want : this.cap[h]
    }
    this.msg = msg
    this.at = at
    this.top = to
  }
}
