// The replicated log over the simulated gossip: every entry a host appends is spread to every
// online host (network.ts) and delivered into its inbox (inbox.ts); a host reads what has arrived
// at its heartbeat, and a host back from offline pulls what a peer holds beyond its own head
// vector. Every entry reaches every host (all members replicate the whole log) and is counted.
//
// Each host FOLDS only the entries that can change its decision: releases, controls, failures,
// health, overdue entries, its own outcomes, and the apply-ok and `soaked` of hosts in EARLIER
// waves (a wave's gate reads those attestations; no wave sets waitOfflineMs, so whether a host
// wrote apply-start matters only to the apply deadline's timers, see below). `--fold-all` folds
// everything, and a test checks both runs give the same acts digest.
// The shortcut is exact while no apply-deadline timer can run out: a host's deadline timer
// counts the starts and outcomes of every wave, which a host folding only earlier waves does not
// see; a timer can only run out on some host after an apply went `applyDeadlineMs` without an
// outcome, and the simulator refuses a shortcut run in which one did (index.ts).
import { applyEntry, type RolloutState } from '../../protocols/rollout/index.js'
import type { Entry, StoredEntry } from '../../protocols/audit/types.js'
import type { Inboxes } from './inbox.js'
import type { Network } from './network.js'

/** What the log needs of a host: its fold, the messages it has read, and whether it must decide again. */
export interface Reader {
  readonly state: RolloutState
  /** bit m: message m has been read */
  have: Uint8Array
  dirty: boolean
  lastArrival: number
}

/** How an entry matters to the fold shortcut. */
const MsgClass = { Other: 0, Attestation: 1, Start: 2 } as const
type MsgClass = typeof MsgClass[keyof typeof MsgClass]

const CLASS_OF: Record<string, MsgClass> = { 'apply-start': MsgClass.Start, 'apply-ok': MsgClass.Attestation, soaked: MsgClass.Attestation }

export class FleetLog {
  readonly messages: Entry[] = []
  /** when the newest entry was appended */
  lastAppend = 0
  folds = 0
  /** per message: its author, and when it was appended */
  readonly from: number[] = []
  readonly at: number[] = []
  private readonly cls: MsgClass[] = []
  private readonly seqs: Int32Array

  constructor (
    private readonly net: Network,
    private readonly inbox: Inboxes,
    private readonly readers: Reader[],
    private readonly ids: string[],
    /** each host's wave in the release (-1: none) */
    private readonly waveOf: Int32Array,
    private readonly foldAll: boolean
  ) {
    this.seqs = new Int32Array(ids.length)
  }

  /**
   * Host h appends an entry at t stamped `ts` (its wall clock) and it spreads; returns the
   * arrival times at the other hosts, sorted, when `track`.
   */
  append (h: number, t: number, ts: number, kind: string, body: unknown, track = false): { stored: StoredEntry, arrivals: number[] } {
    const entry: Entry = { feed: this.ids[h], seq: this.seqs[h]++, prev: new Uint8Array(32), ts: Math.round(ts), kind, body, sig: new Uint8Array(64) }
    const m = this.messages.length
    this.messages.push(entry)
    this.from.push(h)
    this.at.push(t)
    this.cls.push(CLASS_OF[kind] ?? MsgClass.Other)
    this.lastAppend = t
    this.receive(h, m, t)
    this.inbox.published(m, t)
    this.net.spread(h, t)
    const { reached, arrival } = this.net
    const arrivals: number[] = []
    for (let i = 0; i < this.net.reachedCount; i++) {
      const v = reached[i]
      this.inbox.deliver(v, m, arrival[v])
      if (track) arrivals.push(arrival[v])
    }
    return { stored: { entry, bytes: new Uint8Array(0), hash: new Uint8Array(32) }, arrivals: arrivals.sort((a, b) => a - b) }
  }

  /** Reads every message delivered to host h that has arrived by `now`. */
  drain (h: number, now: number): void {
    if (this.inbox.nextArrival[h] > now) return
    const due = this.inbox.takeDue(h, now)
    const { dueMsg, dueAt } = this.inbox
    for (let i = 0; i < due; i++) this.receive(h, dueMsg[i], dueAt[i])
  }

  /** Host h pulls at t what peer p holds beyond h's head vector; returns how many messages. */
  pull (h: number, p: number, t: number): number {
    let pulled = 0
    const mine = this.readers[h].have
    const theirs = this.readers[p].have
    for (let i = 0; i < theirs.length; i++) {
      // missing bits, a byte at a time
      const missing = theirs[i] & ~(i < mine.length ? mine[i] : 0)
      if (missing === 0) continue
      for (let b = 0; b < 8; b++) {
        if ((missing & (1 << b)) !== 0) { this.receive(h, 8 * i + b, t); pulled++ }
      }
    }
    return pulled
  }

  private relevant (h: number, m: number): boolean {
    const c = this.cls[m]
    if (this.foldAll || c === MsgClass.Other) return true
    const from = this.from[m]
    return from === h || (c === MsgClass.Attestation && this.waveOf[from] < this.waveOf[h])
  }

  private markHave (r: Reader, m: number): boolean {
    if (m >= r.have.length * 8) {
      const grown = new Uint8Array(Math.max(64, r.have.length * 2, (m >> 3) + 1))
      grown.set(r.have)
      r.have = grown
    }
    if ((r.have[m >> 3] & (1 << (m & 7))) !== 0) return false
    r.have[m >> 3] |= 1 << (m & 7)
    return true
  }

  private receive (h: number, m: number, at: number): void {
    const r = this.readers[h]
    if (!this.markHave(r, m)) return
    r.lastArrival = Math.max(r.lastArrival, at)
    if (this.relevant(h, m)) {
      applyEntry(r.state, this.messages[m])
      this.folds++
      r.dirty = true
    }
  }
}
