// Per-peer budgets for everything a peer can make this host do (DESIGN §8: "everything a peer
// sends is bounded"): a size cap per input and two token buckets per peer, one counting inputs
// and one counting bytes, refilled on this host's own monotonic clock. The table of peers is
// bounded: past `maxPeers` the least recently seen peer is forgotten, so a flood of fresh peer
// ids costs a fixed amount of memory. A forgotten peer comes back with full buckets, so callers
// check who may talk at all (membership) before they spend a budget on it.
// @libp2p/utils has a RateLimiter, but it reads Date.now, keeps a timer per key and has no size
// dimension or bound on keys; this one is a pure function of the injected clock.

export interface BudgetLimits {
  /** largest single input, in bytes; a larger one is refused whatever the buckets hold */
  maxBytes: number
  /** inputs a peer may send at once, and inputs refilled per second */
  burst: number
  perSecond: number
  /** bytes a peer may send at once, and bytes refilled per second (default: no byte bucket) */
  burstBytes?: number
  bytesPerSecond?: number
}

export type BudgetReason = 'size' | 'rate'

/** Why a peer's input was refused; handed to `onExceeded` (the caller maps it to a penalty). */
export class BudgetExceeded extends Error {
  override readonly name = 'BudgetExceeded'
  constructor (readonly peer: string, readonly reason: BudgetReason, readonly bytes: number, message: string) {
    super(message)
  }
}

export interface BudgetOptions {
  limits: BudgetLimits
  /** what the budget is for, in error messages ("heads announcement", "room frame", …) */
  label: string
  /** peers tracked at once (default 1024) */
  maxPeers?: number
  /** milliseconds on a monotonic clock (default performance.now) */
  now?: () => number
  /** called for every refused input: the node penalises, scores down or hangs up */
  onExceeded?: (err: BudgetExceeded) => void
}

interface Bucket { inputs: number, bytes: number, at: number }

export class PeerBudget {
  private readonly limits: BudgetLimits
  private readonly label: string
  private readonly maxPeers: number
  private readonly now: () => number
  private readonly onExceeded: (err: BudgetExceeded) => void
  /** in least-recently-used order: a touched peer is moved to the end */
  private readonly buckets = new Map<string, Bucket>()

  constructor (opts: BudgetOptions) {
    const l = opts.limits
    if (!(l.maxBytes > 0 && l.burst >= 1 && l.perSecond > 0)) throw new RangeError('a budget needs maxBytes > 0, burst >= 1 and perSecond > 0')
    if ((l.burstBytes === undefined) !== (l.bytesPerSecond === undefined)) throw new RangeError('burstBytes and bytesPerSecond go together')
    if (l.burstBytes !== undefined && l.burstBytes < l.maxBytes) throw new RangeError('burstBytes must admit at least one input of maxBytes')
    this.limits = l
    this.label = opts.label
    this.maxPeers = opts.maxPeers ?? 1024
    this.now = opts.now ?? (() => performance.now())
    this.onExceeded = opts.onExceeded ?? (() => {})
  }

  /**
   * Spends one input of `bytes` from `peer`'s budget. False when the input is too large or the
   * peer is over its rate; then nothing is spent (refill runs from the last grant, so
   * hammering neither earns nor costs tokens) and `onExceeded` is called.
   */
  take (peer: string, bytes = 0): boolean {
    const l = this.limits
    if (bytes > l.maxBytes) return this.refuse(peer, 'size', bytes, `${this.label} of ${bytes} bytes is over the limit of ${l.maxBytes}`)
    const now = this.now()
    const b = this.buckets.get(peer) ?? { inputs: l.burst, bytes: l.burstBytes ?? 0, at: now }
    const elapsed = Math.max(0, now - b.at) / 1000
    const inputs = Math.min(l.burst, b.inputs + elapsed * l.perSecond)
    const byteTokens = l.burstBytes === undefined ? 0 : Math.min(l.burstBytes, b.bytes + elapsed * (l.bytesPerSecond as number))
    if (inputs < 1 || (l.burstBytes !== undefined && byteTokens < bytes)) {
      this.touch(peer, b)
      return this.refuse(peer, 'rate', bytes, `${this.label}: peer is over its rate of ${l.perSecond}/s` + (l.bytesPerSecond !== undefined ? ` or ${l.bytesPerSecond} bytes/s` : ''))
    }
    this.touch(peer, { inputs: inputs - 1, bytes: byteTokens - bytes, at: now })
    return true
  }

  /** Drops what is known of `peer` (e.g. when it disconnects). */
  forget (peer: string): void {
    this.buckets.delete(peer)
  }

  /** Peers tracked now; never more than maxPeers. */
  size (): number {
    return this.buckets.size
  }

  private touch (peer: string, b: Bucket): void {
    this.buckets.delete(peer)
    this.buckets.set(peer, b)
    if (this.buckets.size > this.maxPeers) this.buckets.delete(this.buckets.keys().next().value as string)
  }

  private refuse (peer: string, reason: BudgetReason, bytes: number, message: string): false {
    this.onExceeded(new BudgetExceeded(peer, reason, bytes, message))
    return false
  }
}
