// The audit trail the safety invariants (safety.ts) read, with the one cross-feed order DESIGN §8
// allows: what an author had seen when it wrote. For every entry a host writes, the Monitor
// records the heads its store held at that moment (the feeds and seqs it had seen) and when each
// host first held each entry. From those heads `happenedBefore` is the causal order: a → b when
// b's author held a, or held an entry whose author had (transitively) seen a. Claimed timestamps
// are never compared.
import type { Entry } from '../../protocols/audit/types.js'

export const keyOf = (e: { feed: string, seq: number }): string => `${e.feed}/${e.seq}`

/** What a host's store held when that host wrote one of its own entries. */
export interface Written {
  /** feed → the highest seq its store held (its own feed included, the entry itself excluded) */
  heads: ReadonlyMap<string, number>
}

/** The converged log with what the Monitor saw as it grew. */
export interface Trail {
  entries: Entry[]
  /** the heads an entry's author held when it wrote it; undefined when not seen written (written before the Monitor followed its host) */
  written: (e: Entry) => Written | undefined
  /** when `host` first held `e` (the sim's clock, ms), undefined when it never did */
  heldSince: (host: string, e: Entry) => number | undefined
}

/** The causal order of a trail: vector clocks built from each entry's recorded heads. */
export class CausalOrder {
  private readonly byKey = new Map<string, Entry>()
  private readonly clocks = new Map<string, Map<string, number>>()

  constructor (private readonly trail: Trail) {
    for (const e of trail.entries) this.byKey.set(keyOf(e), e)
  }

  /** True when `a` is in the causal past of `b` (a ≠ b). */
  happenedBefore (a: Entry, b: Entry): boolean {
    if (a.feed === b.feed) return a.seq < b.seq
    return (this.clock(b).get(a.feed) ?? -1) >= a.seq
  }

  /** feed → highest seq in the causal past of `e`, `e` included. Iterative: feeds are long. */
  private clock (e: Entry): Map<string, number> {
    const todo: Entry[] = [e]
    while (todo.length > 0) {
      const x = todo[todo.length - 1]
      if (this.clocks.has(keyOf(x))) { todo.pop(); continue }
      const deps = this.depsOf(x).filter((d) => !this.clocks.has(keyOf(d)))
      if (deps.length > 0) { todo.push(...deps); continue }
      const vc = new Map<string, number>([[x.feed, x.seq]])
      for (const d of this.depsOf(x)) for (const [f, s] of this.clocks.get(keyOf(d)) as Map<string, number>) if ((vc.get(f) ?? -1) < s) vc.set(f, s)
      this.clocks.set(keyOf(x), vc)
      todo.pop()
    }
    return this.clocks.get(keyOf(e)) as Map<string, number>
  }

  /** The newest entry of each feed its author held when writing `e` (its own previous entry at least). */
  private depsOf (e: Entry): Entry[] {
    const heads = new Map(this.trail.written(e)?.heads ?? [])
    if (e.seq > 0 && (heads.get(e.feed) ?? -1) < e.seq - 1) heads.set(e.feed, e.seq - 1)
    const out: Entry[] = []
    for (const [f, s] of heads) {
      const d = this.byKey.get(keyOf({ feed: f, seq: Math.min(s, f === e.feed ? e.seq - 1 : s) }))
      if (d !== undefined) out.push(d)
    }
    return out
  }
}

/** Records a Trail as hosts store entries (the Monitor feeds it). */
export class TrailRecorder {
  private readonly writes = new Map<string, Written>()
  private readonly arrivals = new Map<string, Map<string, number>>()
  private readonly heads = new Map<string, Map<string, number>>()

  /**
   * `host` stored `e` at `at`; when it is the author, the heads it held are recorded as those it
   * wrote with. `wroteWith` stands in for them when the host wrote `e` before the Monitor followed
   * it again (while it restarted): what its store held before it went down, which it still held
   * then — fewer heads than it had, which only leaves entries unordered (never orders them wrongly).
   */
  stored (host: string, e: Entry, at: number, wroteWith?: ReadonlyMap<string, number>): void {
    const arrived = this.arrivals.get(host) ?? new Map<string, number>()
    this.arrivals.set(host, arrived)
    if (arrived.has(keyOf(e))) return
    arrived.set(keyOf(e), at)
    const heads = this.heads.get(host) ?? new Map<string, number>()
    this.heads.set(host, heads)
    if (e.feed === host && !this.writes.has(keyOf(e))) this.writes.set(keyOf(e), { heads: new Map(wroteWith ?? heads) })
    if ((heads.get(e.feed) ?? -1) < e.seq) heads.set(e.feed, e.seq)
  }

  /** What `host`'s store held as far as the recorder knows (before a restart: what it held when it went down). */
  headsOf (host: string): ReadonlyMap<string, number> {
    return new Map(this.heads.get(host) ?? [])
  }

  trail (entries: Entry[]): Trail {
    return {
      entries,
      written: (e) => this.writes.get(keyOf(e)),
      heldSince: (host, e) => this.arrivals.get(host)?.get(keyOf(e))
    }
  }
}
