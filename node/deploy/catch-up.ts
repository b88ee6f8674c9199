// Whether this host's log is complete enough to decide on: after it starts, and again every time
// it lost every peer and comes back. Deciding on a half-pulled log could apply a release that a
// newer, not yet pulled entry aborts or supersedes; a host cut off from the mesh holds the same
// stale log as one that just booted.
import { performance } from 'node:perf_hooks'

/** What the agent needs of log replication: whether this host caught up since it (re)started waiting. */
export interface CatchUp {
  caughtUp (): string | undefined
  /** Forgets the member caught up with, so the next one is signalled again (protocols/audit sync). */
  expectCatchUp (): void
  on (event: 'caught-up', listener: (peer: string) => void): unknown
  off (event: 'caught-up', listener: (peer: string) => void): unknown
}

/** The peers this host has a connection to now. */
export interface Peers { connected: () => string[] }

export interface CatchUpGateComponents {
  self: string
  catchUp: CatchUp
  peers: Peers
  /** the current members, this host included */
  members: () => string[]
  log: { info: (msg: string) => void }
  graceMs: number
  /** monotonic milliseconds (default performance.now) */
  now?: () => number
}

/**
 * Waits, when this host knows other members, until it has caught up with one of them, or for
 * `graceMs` (a host that reaches nobody still acts after it). The wait starts at start() and
 * starts over when the host has lost every member peer and one comes back.
 */
export class CatchUpGate {
  private readonly c: CatchUpGateComponents
  private readonly now: () => number
  private since = 0
  private cut = false
  private waitingLogged = false

  constructor (c: CatchUpGateComponents) {
    this.c = c
    this.now = c.now ?? (() => performance.now())
  }

  start (): void {
    this.since = this.now()
  }

  /** Whether the log is complete enough to act on; call it before every decision. */
  ready (): boolean {
    const others = this.c.members().filter((p) => p !== this.c.self)
    if (others.length === 0) return true
    const members = new Set(others)
    const reachable = this.c.peers.connected().some((p) => members.has(p))
    if (!reachable && !this.cut) {
      // Everything learnt before the cut may be stale by the time a peer is back.
      this.cut = true
      this.c.catchUp.expectCatchUp()
      this.since = this.now()
      this.waitingLogged = false
    } else if (reachable && this.cut) {
      this.cut = false
      this.since = this.now()
    }
    if (this.c.catchUp.caughtUp() !== undefined || this.now() - this.since >= this.c.graceMs) return true
    if (!this.waitingLogged) {
      this.waitingLogged = true
      this.c.log.info('deploy: catching up with the mesh before deciding')
    }
    return false
  }
}
