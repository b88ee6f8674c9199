// Offences of sync peers, counted twice: gossipsub's behaviour penalty via its PeerScore (which
// lowers their score for this host's mesh; skipped if the pubsub in use has none) and a local
// count. Past `banThreshold` offences the peer's connections are closed and its sync requests
// refused for `banMs`.
import { ScorePenalty } from '@libp2p/gossipsub/metrics'
import type { AuditError, AuditErrorCode } from './errors.js'
import type { SyncLogger } from './types.js'

export interface PenaltyEvent { peer: string, error: AuditError, offences: number }

/** The part of gossipsub's PeerScore used here. */
export interface PeerScore {
  addPenalty: (id: string, penalty: number, label: ScorePenalty) => void
}

export interface PenaltiesComponents {
  /** gossipsub's PeerScore, if the pubsub in use has one */
  score?: PeerScore
  /** closes this host's connections to a banned peer */
  disconnect: (peer: string) => void
  onPenalty: (event: PenaltyEvent) => void
  onBan: (peer: string) => void
  logger?: SyncLogger
  banThreshold: number
  banMs: number
}

// Codes that prove the sender broke the protocol or forged data. Others (a fork, a rejected
// author) can reach an honest relay through no fault of its own.
const PENALISED: ReadonlySet<AuditErrorCode> = new Set<AuditErrorCode>([
  'ENTRY_MALFORMED', 'ENTRY_TOO_LARGE', 'BODY_NOT_CANONICAL', 'BODY_INVALID', 'BAD_SIGNATURE', 'BAD_PREV', 'SEQ_GAP',
  'UNKNOWN_FEED_KEY', 'MESSAGE_MALFORMED', 'MESSAGE_TOO_LARGE', 'OVER_BUDGET'
])

/** The PeerScore of a pubsub: the GossipSub interface does not expose it; the implementation does. */
export function peerScore (pubsub: object): PeerScore | undefined {
  return (pubsub as Partial<{ score: PeerScore }>).score
}

export class Penalties {
  private readonly c: PenaltiesComponents
  private readonly offences = new Map<string, number>()
  private readonly banned = new Map<string, number>()

  constructor (components: PenaltiesComponents) {
    this.c = components
  }

  /** Local offence counts per peer id string. */
  counts (): Map<string, number> {
    return new Map(this.offences)
  }

  /** Whether `peer` is banned now; an expired ban is lifted here, with the peer's count. */
  isBanned (peer: string): boolean {
    const until = this.banned.get(peer)
    if (until === undefined) return false
    if (Date.now() < until) return true
    this.banned.delete(peer)
    this.offences.delete(peer)
    return false
  }

  /** Counts `error` against `peer` if it proves misbehaviour; bans past the threshold. */
  penalise (peer: string, error: AuditError): void {
    if (!PENALISED.has(error.code)) return
    const offences = (this.offences.get(peer) ?? 0) + 1
    this.offences.set(peer, offences)
    this.c.score?.addPenalty(peer, 1, ScorePenalty.BrokenPromise)
    this.c.logger?.warn({ peer, code: error.code, offences }, `audit sync: ${error.message}`)
    this.c.onPenalty({ peer, error, offences })
    if (offences >= this.c.banThreshold && !this.isBanned(peer)) {
      this.banned.set(peer, Date.now() + this.c.banMs)
      this.c.onBan(peer)
      this.c.disconnect(peer)
    }
  }
}
