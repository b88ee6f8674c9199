// When a host writes a witness entry: a pure state machine (no timers, `now` passed in) so the
// daemon and the scale simulator run the same rule. A witness commits to the heads this host
// holds of other feeds, so it is worth writing only when those heads moved in a way that
// matters:
// - an entry of a kind that decides something (membership, releases and their controls,
//   checkpoints) or a fork makes one due `eventDelayMs` after the first such event, so a burst
//   (a release and the admits around it) is covered by one witness;
// - any other entry of another feed (deploy outcomes, room changes …) makes one due at the
//   host's next slow slot (every `intervalMs`, shifted by its own `offsetMs` so a fleet does not
//   witness in the same second);
// - witness entries, own or others', and this host's own entries never do: others' witnesses
//   moving their heads would otherwise make every witness cause N more, forever.
import { sha256 } from '../canonical.js'
import { WITNESS_KIND } from './witness-body.js'

export const DEFAULT_WITNESS_INTERVAL_MS = 24 * 60 * 60_000
export const DEFAULT_WITNESS_EVENT_DELAY_MS = 30_000

/**
 * The kinds that make a witness due soon. protocols/audit sits below the folders that own them
 * (membership, rollout, checkpoint import it), so they are named here;
 * test/audit/witness-schedule.test.ts checks each against its folder's schema table.
 */
export const DEFAULT_WITNESS_EVENT_KINDS: ReadonlySet<string> = new Set([
  'genesis', 'admit', 'grant', 'revoke', // protocols/membership
  'release', 'release-control', // protocols/rollout
  'checkpoint' // protocols/checkpoint
])

export interface WitnessPolicy {
  /** slow cadence for entries of other kinds (default 24 h) */
  intervalMs: number
  /** this host's slot within the interval, in [0, intervalMs): see witnessOffset */
  offsetMs: number
  /** delay from the first event that matters to the witness that covers it (default 30 s) */
  eventDelayMs: number
  eventKinds: ReadonlySet<string>
  /** this host's feed: its own entries are not in what it witnesses */
  self?: string
}

/** A host's slot within the interval, from its feed id: spread evenly over a fleet, stable across restarts. */
export function witnessOffset (feed: string, intervalMs: number): number {
  const d = sha256(new TextEncoder().encode(feed))
  return new DataView(d.buffer, d.byteOffset, 8).getUint32(0) % intervalMs
}

export function witnessPolicy (self: string, opts: Partial<WitnessPolicy> = {}): WitnessPolicy {
  const intervalMs = opts.intervalMs ?? DEFAULT_WITNESS_INTERVAL_MS
  return {
    intervalMs,
    offsetMs: opts.offsetMs ?? witnessOffset(self, intervalMs),
    eventDelayMs: opts.eventDelayMs ?? DEFAULT_WITNESS_EVENT_DELAY_MS,
    eventKinds: opts.eventKinds ?? DEFAULT_WITNESS_EVENT_KINDS,
    self
  }
}

export class WitnessSchedule {
  private readonly p: WitnessPolicy
  /** the first event since the last witness */
  private eventAt: number | undefined
  /** the first other entry since the last witness */
  private dirtyAt: number | undefined

  // nothing is pending at start: the caller replays what its last witness did not cover
  constructor (p: WitnessPolicy, _now: number) {
    if (!(p.intervalMs > 0) || !(p.offsetMs >= 0 && p.offsetMs < p.intervalMs) || !(p.eventDelayMs >= 0)) {
      throw new RangeError('witness policy: need intervalMs > 0, 0 <= offsetMs < intervalMs, eventDelayMs >= 0')
    }
    this.p = p
  }

  onEntry (e: { feed: string, kind: string }, now: number): void {
    if (e.kind === WITNESS_KIND || e.feed === this.p.self) return
    if (this.p.eventKinds.has(e.kind)) this.eventAt ??= now
    else this.dirtyAt ??= now
  }

  /** A feed found forked (it leaves the witnessed heads); also what a restart that cannot tell what is unwitnessed calls. */
  onFork (now: number): void {
    this.eventAt ??= now
  }

  due (now: number): boolean {
    const at = this.nextAt()
    return at !== undefined && now >= at
  }

  /** When the next witness is due (undefined: none is pending). */
  nextAt (): number | undefined {
    const event = this.eventAt === undefined ? undefined : this.eventAt + this.p.eventDelayMs
    const slow = this.dirtyAt === undefined ? undefined : this.slotFrom(this.dirtyAt)
    if (event === undefined) return slow
    return slow === undefined ? event : Math.min(event, slow)
  }

  /** A witness was written (or found needless) at `now`: it covers everything seen before. */
  done (_now: number): void {
    this.eventAt = undefined
    this.dirtyAt = undefined
  }

  /** The first slot at or after t: slots are offsetMs + k * intervalMs on the wall clock. */
  private slotFrom (t: number): number {
    const { intervalMs, offsetMs } = this.p
    return offsetMs + Math.ceil((t - offsetMs) / intervalMs) * intervalMs
  }
}
