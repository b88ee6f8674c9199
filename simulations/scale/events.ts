// The discrete-event clock: a binary heap of events in typed arrays (no timers, no objects per
// event). An event is (time, kind, host, arg); `arg` tells a stale event from a live one where a
// host re-arms (its alarm and soak generations) or names a peer (a sync).

export const Ev = {
  /** the host's gossipsub heartbeat, which is also its agent's tick */
  Heartbeat: 0,
  /** the host's apply finished */
  ApplyDone: 1,
  /** the host goes down (its daemon stops) */
  Offline: 2,
  /** the host is back: its daemon starts again and syncs with a peer */
  Online: 3,
  /** the range pull from peer `arg` completed */
  SyncDone: 4,
  /** a local timer of the host's agent ran out (`arg`: the alarm's generation) */
  Alarm: 5,
  /** the host's health watch over its gate soak ended (`arg`: the watch's generation) */
  SoakDone: 6,
  /** idle phase: the host's periodic digest repair with one random connected peer */
  Repair: 7,
  /** idle phase: the host's witness schedule may be due */
  Witness: 8,
  /** idle phase: the host pulled entry `arg` that an announcement named */
  Pulled: 9
} as const
export type Ev = typeof Ev[keyof typeof Ev]

/** `pop` leaves the event in the public fields. */
export class EventQueue {
  private t = new Float64Array(1024)
  private ev = new Int32Array(1024)
  private host = new Int32Array(1024)
  private arg = new Int32Array(1024)
  size = 0
  time = 0
  kind: Ev = Ev.Heartbeat
  who = 0
  with = 0

  push (time: number, e: Ev, host: number, arg = 0): void {
    if (this.size === this.t.length) this.grow()
    const { t, ev, host: hs, arg: as } = this
    let i = this.size++
    while (i > 0) {
      const p = (i - 1) >> 1
      if (t[p] <= time) break
      t[i] = t[p]; ev[i] = ev[p]; hs[i] = hs[p]; as[i] = as[p]; i = p
    }
    t[i] = time; ev[i] = e; hs[i] = host; as[i] = arg
  }

  pop (): void {
    const { t, ev, host: hs, arg: as } = this
    this.time = t[0]; this.kind = ev[0] as Ev; this.who = hs[0]; this.with = as[0]
    const n = --this.size
    const lt = t[n]; const le = ev[n]; const lh = hs[n]; const la = as[n]
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const c = l + 1 < n && t[l + 1] < t[l] ? l + 1 : l
      if (t[c] >= lt) break
      t[i] = t[c]; ev[i] = ev[c]; hs[i] = hs[c]; as[i] = as[c]; i = c
    }
    t[i] = lt; ev[i] = le; hs[i] = lh; as[i] = la
  }

  private grow (): void {
    const n = 2 * this.t.length
    const t = new Float64Array(n); t.set(this.t); this.t = t
    const ev = new Int32Array(n); ev.set(this.ev); this.ev = ev
    const h = new Int32Array(n); h.set(this.host); this.host = h
    const a = new Int32Array(n); a.set(this.arg); this.arg = a
  }
}
