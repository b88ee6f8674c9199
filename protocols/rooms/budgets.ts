// Per-peer budgets on what other hosts make rooms do (DESIGN §8: everything a peer sends is
// bounded), on the shared PeerBudget (protocols/budget.ts): the gossip frames a peer delivers on
// room topics (all rooms together), the history batches a peer answers this host's fetches
// with, and the history requests it makes of this host. A peer is a mesh member before any
// budget is spent on it (topics.ts, history-protocol.ts), so an evicted entry is no free refill
// for strangers; a peer that reconnects keeps its buckets.
//
// Penalties: every refused input calls `penalise` (by default a gossipsub behaviour penalty, as
// audit sync gives: room topics carry no topic score, so a rejected frame alone would cost the
// peer nothing). A gossip frame over budget is also rejected by the topic validator, so it is
// not forwarded; a history fetch or request over budget is refused with ROOM_OVER_BUDGET.
import { ScorePenalty } from '@libp2p/gossipsub/metrics'
import { peerScore } from '../audit/penalties.js'
import { PeerBudget, type BudgetExceeded, type BudgetLimits } from '../budget.js'
import { MAX_FRAME_BYTES, MAX_HISTORY_FRAME_BYTES, MAX_HISTORY_REQUEST_BYTES } from './codec.js'
import { RoomError } from './errors.js'

export interface RoomBudgetLimits {
  /** gossip frames one peer delivers on room topics */
  frames: BudgetLimits
  /** batches of frames one peer answers this host's history fetches with */
  historyBatches: BudgetLimits
  /** history requests one peer makes of this host */
  historyRequests: BudgetLimits
}

const MiB = 1024 * 1024

// Sized for honest traffic with a wide margin: the rooms benchmark sends a few hundred messages
// a second through one peer; a host back from downtime fetches up to every room's kept history
// (1000 frames, 16 batches a room by default) from each member peer.
export const DEFAULT_ROOM_BUDGETS: RoomBudgetLimits = {
  frames: { maxBytes: MAX_FRAME_BYTES, burst: 2000, perSecond: 1000, burstBytes: 16 * MiB, bytesPerSecond: 4 * MiB },
  historyBatches: { maxBytes: MAX_HISTORY_FRAME_BYTES, burst: 512, perSecond: 64, burstBytes: 256 * MiB, bytesPerSecond: 32 * MiB },
  historyRequests: { maxBytes: MAX_HISTORY_REQUEST_BYTES, burst: 256, perSecond: 32 }
}

export interface RoomBudgetsOptions {
  limits?: Partial<RoomBudgetLimits>
  /** called for each refused frame, history batch or request */
  penalise: (peer: string) => void
}

export class RoomBudgets {
  private readonly frames: PeerBudget
  private readonly maxFrameBytes: number
  private readonly batches: PeerBudget
  private readonly requests: PeerBudget

  constructor (opts: RoomBudgetsOptions) {
    const limits = { ...DEFAULT_ROOM_BUDGETS, ...opts.limits }
    const penalise = (e: BudgetExceeded): void => { opts.penalise(e.peer) }
    this.frames = new PeerBudget({ limits: limits.frames, label: 'room frame', onExceeded: penalise })
    this.maxFrameBytes = limits.frames.maxBytes
    this.batches = new PeerBudget({ limits: limits.historyBatches, label: 'room history batch', onExceeded: penalise })
    this.requests = new PeerBudget({ limits: limits.historyRequests, label: 'room history request', onExceeded: penalise })
  }

  /** Spends a gossip frame of `bytes` from `peer`: the error it is refused with, if it is. */
  frame (peer: string, bytes: number): RoomError | undefined {
    if (this.frames.take(peer, bytes)) return undefined
    return bytes > this.maxFrameBytes
      ? new RoomError('ROOM_FRAME_TOO_LARGE', `a room frame of ${bytes} bytes from ${peer} is over ${this.maxFrameBytes}`)
      : new RoomError('ROOM_OVER_BUDGET', `${peer} is over its room frame budget`)
  }

  /** Spends one fetched history batch of `bytes` from `peer`; throws ROOM_OVER_BUDGET past it. */
  batch (peer: string, bytes: number): void {
    if (!this.batches.take(peer, bytes)) throw new RoomError('ROOM_OVER_BUDGET', `${peer} is over its room history budget`)
  }

  /** Spends one history request from `peer`; throws ROOM_OVER_BUDGET past it. */
  request (peer: string): void {
    if (!this.requests.take(peer)) throw new RoomError('ROOM_OVER_BUDGET', `${peer} is over its room history request budget`)
  }
}

/** The default penalty: a gossipsub score penalty, as audit sync gives (skipped if the pubsub keeps no score). */
export function gossipPenalty (pubsub: object): (peer: string) => void {
  const score = peerScore(pubsub)
  return (peer) => { score?.addPenalty(peer, 1, ScorePenalty.BrokenPromise) }
}
