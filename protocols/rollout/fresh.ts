// Freshness: a host back after a long absence never applies a stale desired state.
//
// A release with `freshForMs` is judged by each host it targets once, the first time that host
// decides on it (after the agent's catch-up, so a host that was away holds the log first; even
// while a pin, an ordering edge or its wave's gate holds it, so a long wait is not a staleness): stale
// when `now − release.ts > freshForMs`, `now` being the host's own wall clock then. The verdict is
// written at once as the host's own `release-seen {release, stale}` entry, before anything else
// for the release, and only the host's first verdict counts. So the judgement is made once and
// kept durably by the store (a restart, or a window that runs out while the host waits for its
// wave, never turns a fresh verdict stale), and it is a fact every host reads (DESIGN §8: the
// consequence of a local judgement is an entry): a stale host is out of its wave's gate, neither
// pending nor failed, and `release status` lists it.
//
// Clocks. The release's ts is its signer's claim; an admin is trusted to state when it signed. The
// host's clock is read once. Ahead: it refuses releases it held in time (fail safe: it keeps its
// generation, shows as stale, and an admin publishes again). Behind by D: the audit store refuses
// entries stamped more than CLOCK_SKEW_MS ahead of it, so it holds the release only once its clock
// reads at least ts − CLOCK_SKEW_MS, and the window it applies is at most freshForMs + D; a host
// whose clock is far behind holds no recent entry at all. No host compares another host's clock.
//
// The floor: an admin's `release-floor {number}` refuses every release numbered below it, on
// every host (the highest counted floor wins; counted as of the entry, like a release).
import type { Entry } from '../audit/types.js'
import type { HoldRecord, MembershipView, ReleaseFloorBody, ReleaseSeenBody } from './types.js'

export interface FreshState {
  /** "host release" → the host's first (lowest-seq) verdict */
  readonly seen: Map<string, HoldRecord<ReleaseSeenBody>>
  readonly floors: Array<HoldRecord<ReleaseFloorBody>>
  /** moves on every stale verdict filed: a stale host leaves its wave's gate */
  staleRevision: number
}

export const FRESH_KINDS: readonly string[] = ['release-seen', 'release-floor']

export function emptyFresh (): FreshState {
  return { seen: new Map(), floors: [], staleRevision: 0 }
}

/** Files a verdict or a floor (body already schema-checked). */
export function foldFresh (f: FreshState, e: Entry): void {
  const rec = { feed: e.feed, seq: e.seq, ts: e.ts }
  if (e.kind === 'release-floor') {
    if (!f.floors.some(x => x.feed === e.feed && x.seq === e.seq)) f.floors.push({ ...rec, body: e.body as ReleaseFloorBody })
    return
  }
  const body = e.body as ReleaseSeenBody
  const key = `${e.feed} ${body.release}`
  const prev = f.seen.get(key)
  if (prev !== undefined && prev.seq <= e.seq) return
  f.seen.set(key, { ...rec, body })
  if (body.stale || prev?.body.stale === true) f.staleRevision++
}

/** The host's counted verdict on a release: its first, written while it was a member. */
export function verdictOf (f: FreshState, m: MembershipView, release: string, host: string): HoldRecord<ReleaseSeenBody> | undefined {
  const v = f.seen.get(`${host} ${release}`)
  return v !== undefined && m.standingAt(v.feed, v.seq, v.ts).member ? v : undefined
}

export function isStale (f: FreshState, m: MembershipView, release: string, host: string): boolean {
  return f.seen.size > 0 && verdictOf(f, m, release, host)?.body.stale === true
}

/** Whether a host first deciding now on a release signed at `signedTs` finds it stale. */
export function staleNow (freshForMs: number, signedTs: number, now: number): boolean {
  return now - signedTs > freshForMs
}

/** The counted floor with the highest number (lowest (feed, seq) on a tie), or undefined. */
export function releaseFloor (f: FreshState, m: MembershipView): HoldRecord<ReleaseFloorBody> | undefined {
  let best: HoldRecord<ReleaseFloorBody> | undefined
  for (const x of f.floors) {
    if (best !== undefined && (x.body.number < best.body.number || (x.body.number === best.body.number && (x.feed > best.feed || (x.feed === best.feed && x.seq > best.seq))))) continue
    if (m.standingAt(x.feed, x.seq, x.ts).admin) best = x
  }
  return best
}
