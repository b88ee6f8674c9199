// Pairing is the one thing a stranger may do, so attempts are rationed on the shared per-peer
// budget (protocols/budget.ts): per source address, and overall, because one host can own many
// addresses (an IPv6 /64) and the per-address table forgets its oldest entries. What a single
// attempt may send is bounded by the codec (MAX_PAIRING_MESSAGE_BYTES per message).
import { PeerBudget, type BudgetExceeded } from '../budget.js'
import { MAX_PAIRING_MESSAGE_BYTES } from './codec.js'

export interface AttemptRate { burst: number, perMinute: number }
export interface PairingLimits { perAddress: AttemptRate, overall: AttemptRate }

export const DEFAULT_PAIRING_LIMITS: PairingLimits = {
  perAddress: { burst: 5, perMinute: 10 },
  overall: { burst: 30, perMinute: 60 }
}

const OVERALL = '*'

export class PairingBudget {
  private readonly byAddress: PeerBudget
  private readonly overall: PeerBudget

  constructor (limits: PairingLimits = DEFAULT_PAIRING_LIMITS, opts: { now?: () => number, onExceeded?: (err: BudgetExceeded) => void } = {}) {
    const budget = (rate: AttemptRate, label: string, maxPeers: number): PeerBudget => new PeerBudget({
      limits: { maxBytes: MAX_PAIRING_MESSAGE_BYTES, burst: rate.burst, perSecond: rate.perMinute / 60 },
      label,
      maxPeers,
      now: opts.now,
      onExceeded: opts.onExceeded
    })
    this.byAddress = budget(limits.perAddress, 'pairing attempts from one address', 10_000)
    this.overall = budget(limits.overall, 'pairing attempts', 1)
  }

  /** Spends one attempt from `address`; false when it or the host as a whole is over its rate. */
  take (address: string): boolean {
    return this.byAddress.take(address) && this.overall.take(OVERALL)
  }
}
