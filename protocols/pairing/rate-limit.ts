// Pairing is the one thing a stranger may do, so it is rationed per source address: a token
// bucket each, refilled over time, forgotten when full again so the table cannot grow forever.
export interface RateLimitOptions { burst: number, perMinute: number }

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly opts: RateLimitOptions = { burst: 5, perMinute: 10 }) {}

  /** Takes one token for `key` at time `now` (ms); false when the bucket is empty. */
  take (key: string, now: number): boolean {
    const refillPerMs = this.opts.perMinute / 60_000
    const b = this.buckets.get(key) ?? { tokens: this.opts.burst, at: now }
    const tokens = Math.min(this.opts.burst, b.tokens + (now - b.at) * refillPerMs)
    // A refusal leaves the bucket as it was: its refill is computed from the last grant, so
    // hammering neither earns nor costs anything and no rounding accumulates.
    if (tokens < 1) return false
    this.buckets.set(key, { tokens: tokens - 1, at: now })
    if (this.buckets.size > 10_000) this.prune(now)
    return true
  }

  private prune (now: number): void {
    const refillPerMs = this.opts.perMinute / 60_000
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) * refillPerMs >= this.opts.burst) this.buckets.delete(k)
    }
  }
}
