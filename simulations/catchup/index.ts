// `npm run sim -- catchup --hosts 1000 --offline 7d [--history 365d] [--releases-per-day 1]
//   [--outcomes-per-release 3] [--churn-per-day 2] [--mbps 100] [--rtt-ms 50] [--seed N] [--quick]`
//
// How long a host takes to be current again after `offline` away (catchup_ms), and a new host to
// join a fleet with `history` behind it from the newest checkpoint (join_ms). The history is
// workload.ts's real signed entries. Each figure is the sum, without overlap, of
//   - the network, modelled: `rttMs` a round trip, `mbps` of bandwidth, pulls `maxConcurrentPulls`
//     (8, the puller's default) at a time, every message counted at its encoded size
//     (../scale/wire-cost.ts); digest rounds by protocols/audit/reconcile.ts between the stale
//     and the current head vectors;
//   - verifying and storing, measured: measure.ts's real AuditStore ingest of every missing
//     entry (catch-up), or adoptCheckpoint with its retained entries plus the ingest of every
//     entry after its cover (join).
// join_replay_ms_estimated prices a join without checkpoints: every entry of the history at the
// catch-up's measured per-entry rate, plus its transfer (computed, not ingested).
import { Reconciliation, SortedHeads, answerDigest, type DigestQuery } from '../../protocols/audit/reconcile.js'
import type { Head, StoredEntry } from '../../protocols/audit/types.js'
import { exchangeBytes, pullBytes } from '../scale/wire-cost.js'
import { duration } from '../scale/options.js'
import { MeasuredStore } from './measure.js'
import { DAY_MS, History, type Checkpoint, type Workload } from './workload.js'

const MAX_CONCURRENT_PULLS = 8
const BATCH = 512

export interface CatchupOptions extends Workload { offlineMs: number, mbps: number, rttMs: number }

export function parseArgs (args: string[]): CatchupOptions {
  const quick = args.includes('--quick')
  const o: CatchupOptions = { hosts: quick ? 50 : 1000, days: quick ? 4 : 365, offlineMs: (quick ? 2 : 7) * DAY_MS, releasesPerDay: 1, outcomesPerRelease: 3, churnPerDay: 2, seed: 1, mbps: 100, rttMs: 50 }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const num = (): number => {
      const v = Number(args[++i])
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number ≥ 0`)
      return v
    }
    switch (a) {
      case '--hosts': o.hosts = num(); break
      case '--offline': o.offlineMs = duration(a, args[++i]); break
      case '--history': o.days = Math.round(duration(a, args[++i]) / DAY_MS); break
      case '--releases-per-day': o.releasesPerDay = num(); break
      case '--outcomes-per-release': o.outcomesPerRelease = num(); break
      case '--churn-per-day': o.churnPerDay = num(); break
      case '--mbps': o.mbps = num(); break
      case '--rtt-ms': o.rttMs = num(); break
      case '--seed': o.seed = num(); break
      case '--quick': break
      default: throw new Error(`unknown option ${a}`)
    }
  }
  if (!Number.isInteger(o.hosts) || o.hosts < 2) throw new Error('--hosts must be an integer ≥ 2')
  if (o.outcomesPerRelease > 3 || !Number.isInteger(o.outcomesPerRelease)) throw new Error('--outcomes-per-release is 0..3')
  if (o.offlineMs % DAY_MS !== 0 || o.offlineMs / DAY_MS < 1 || o.offlineMs / DAY_MS > o.days - 2) throw new Error('--offline is whole days, at least 1 and at most the history less 2')
  return o
}

/** Milliseconds of the modelled network for `bytes` in `exchanges` round trips, `parallel` at a time. */
function netMs (o: CatchupOptions, bytes: number, exchanges: number, parallel = 1): number {
  return Math.ceil(exchanges / parallel) * o.rttMs + bytes * 8 / (o.mbps * 1000)
}

/** Digest repair from `stale` to `current`: its rounds' modelled time. */
function digestMs (o: CatchupOptions, stale: Head[], current: Head[]): { ms: number, rounds: number } {
  const mine = new SortedHeads(stale)
  const theirs = new SortedHeads(current)
  const rec = new Reconciliation(mine)
  let bytes = 0
  let q: DigestQuery | undefined = rec.first()
  while (q !== undefined) {
    const reply = answerDigest(theirs, q)
    bytes += exchangeBytes(q, [reply])
    q = rec.next(reply)
  }
  return { ms: netMs(o, bytes, rec.rounds), rounds: rec.rounds }
}

/** Pulls of `entries`, per feed in batches: modelled time. */
function pullMs (o: CatchupOptions, entries: StoredEntry[]): number {
  const byFeed = new Map<string, StoredEntry[]>()
  for (const s of entries) byFeed.set(s.entry.feed, [...(byFeed.get(s.entry.feed) ?? []), s])
  let bytes = 0
  let exchanges = 0
  for (const l of byFeed.values()) {
    exchanges++
    bytes += pullBytes(l[0].entry.feed, l[0].entry.seq, l.map(s => s.bytes))
  }
  return netMs(o, bytes, exchanges, MAX_CONCURRENT_PULLS)
}

function headsOf (cp: Checkpoint): Head[] {
  return cp.cover
}

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const o = parseArgs(args)
  const wallStart = performance.now()
  const offlineDays = o.offlineMs / DAY_MS
  // the history ends a minute ago: no entry is stamped ahead of the stores' clocks
  const history = new History(o, Date.now() - o.days * DAY_MS - 60_000)
  const baseDay = o.days - offlineDays - 1
  let base: Checkpoint | undefined
  let newest: Checkpoint | undefined
  const missed: StoredEntry[] = []
  let lastDay: StoredEntry[] = []
  let historyBytes = 0
  history.onDay = (d, entries, cp) => {
    for (const s of entries) historyBytes += s.bytes.length
    if (d === baseDay) base = cp
    if (d > baseDay) missed.push(...entries)
    if (cp !== undefined) newest = cp
    if (d === o.days - 1) lastDay = entries
  }
  await history.run()
  if (base === undefined || newest === undefined) throw new Error('the history wrote no checkpoint')
  const current = [...new Map([...newest.cover, ...lastDay.map(s => ({ feed: s.entry.feed, seq: s.entry.seq, hash: s.hash }))].map(h => [h.feed, h])).values()]

  // catch-up: a store at the base checkpoint (not timed), then every entry since
  const away = await MeasuredStore.open()
  let catchupIngestMs: number
  try {
    await away.adopt(base, false)
    catchupIngestMs = await away.ingest(missed, MAX_CONCURRENT_PULLS)
  } finally {
    await away.close()
  }
  const catchupDigest = digestMs(o, headsOf(base), current)
  const catchupNetMs = catchupDigest.ms + pullMs(o, missed)

  // join: an empty store adopts the newest checkpoint with its retained entries, then ingests the day after it
  const joiner = await MeasuredStore.open()
  let adoptMs: number
  let joinIngestMs: number
  try {
    adoptMs = await joiner.adopt(newest, true)
    joinIngestMs = await joiner.ingest(lastDay, MAX_CONCURRENT_PULLS)
  } finally {
    await joiner.close()
  }
  const cp = newest
  const retainedBytes = cp.retained.reduce((n, s) => n + s.bytes.length, 0)
  // the checkpoint entry, its cover and refs (~100 bytes each), then the retained entries in batches
  const fetchCpMs = netMs(o, cp.entry.bytes.length + 100 * (cp.cover.length + cp.refs.length), 1) + netMs(o, retainedBytes, Math.ceil(cp.retained.length / BATCH), MAX_CONCURRENT_PULLS)
  const joinDigest = digestMs(o, cp.cover, current)
  const joinNetMs = fetchCpMs + joinDigest.ms + pullMs(o, lastDay)

  const perEntryMs = catchupIngestMs / missed.length
  const replayNetMs = netMs(o, historyBytes, Math.ceil(history.entries / BATCH), MAX_CONCURRENT_PULLS)
  return {
    sim: 'catchup',
    hosts: o.hosts,
    history_days: o.days,
    offline_days: offlineDays,
    releases_per_day: o.releasesPerDay,
    outcomes_per_release: o.outcomesPerRelease,
    churn_per_day: o.churnPerDay,
    mbps: o.mbps,
    rtt_ms: o.rttMs,
    history_entries: history.entries,
    catchup_entries: missed.length,
    catchup_digest_rounds: catchupDigest.rounds,
    catchup_net_ms: Math.round(catchupNetMs),
    catchup_ingest_ms: Math.round(catchupIngestMs),
    catchup_ms: Math.round(catchupNetMs + catchupIngestMs),
    join_retained: cp.retained.length,
    join_after_cover: lastDay.length,
    join_net_ms: Math.round(joinNetMs),
    join_adopt_ms: Math.round(adoptMs),
    join_ingest_ms: Math.round(joinIngestMs),
    join_ms: Math.round(joinNetMs + adoptMs + joinIngestMs),
    join_replay_ms_estimated: Math.round(replayNetMs + perEntryMs * history.entries),
    wall_ms: Math.round(performance.now() - wallStart)
  }
}
