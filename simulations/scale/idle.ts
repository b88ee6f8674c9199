// `--idle DURATION`: what the log itself costs, for the rollout just simulated and for an idle
// stretch after it, per host: bytes on the wire and bytes its store grows by (sync-fleet.ts runs
// the real witness schedules, reconciliation and encoders).
//
// Rollout: every entry the rollout wrote is signed again with its author's real key (real
// sizes), and every host's WitnessSchedule sees every other host's entries at their publication:
// the release makes each host witness eventDelayMs later, the outcomes dirty its slow slot. Each
// entry costs each other host the gossip copies and IHAVEs measured over sample announcements on
// the same mesh, and its pull. The witnesses of this stretch commit to a vector of the fleet's
// size (the heads are not tracked per host while the rollout runs), which costs what the
// host's own does. The rollout's digest repairs are not simulated (the idle figures price them).
//
// Idle: from the rollout's end every host holds every head; heads are tracked per host; each
// host repairs every repairMs with a random connected peer, writes its witness when its schedule
// says (its slow slot, dirtied by the rollout's outcomes: spread over the day), announces it and
// is pulled. The log grows only by those witnesses, so a day's growth is the window's × the day's
// share it covers: slots are uniform over the day.
import { Ev, EventQueue } from './events.js'
import { mulberry32, type Network } from './network.js'
import type { FleetLog } from './log.js'
import type { ScaleOptions } from './options.js'
import type { GossipParams } from './params.js'
import { SyncFleet } from './sync-fleet.js'
import { signedFeeds } from '../harness/signed-feeds.js'
import { witnessBody } from '../../protocols/audit/witness-body.js'
import { encodeVector } from '../../protocols/audit/witness-vectors.js'
import type { StoredEntry } from '../../protocols/audit/types.js'

const DAY_MS = 86_400_000
/** announcements spread to measure the gossip copies and IHAVEs per receiving host */
const GOSSIP_SAMPLES = 32

export interface IdleInput {
  opts: ScaleOptions
  gossip: GossipParams
  net: Network
  log: FleetLog
  /** simulated time the rollout ended */
  end: number
  /** simulated time → wall clock */
  wall: (t: number) => number
}

export async function idleFigures (f: IdleInput): Promise<Record<string, number>> {
  const wallStart = performance.now()
  const { opts, net, log } = f
  const N = opts.hosts
  const feeds = await signedFeeds(opts.seed, N)
  // a stream of its own: the rollout's draws are done, and the idle phase's follow from the seed
  const rand = mulberry32(opts.seed ^ 0x1d1e)
  const fleet = new SyncFleet(feeds, net, f.gossip, f.wall, rand)
  const sample = fleet.sampleGossip(GOSSIP_SAMPLES, f.end)

  // ---- the rollout
  const settled = { body: witnessBody(feeds.slice(1).map(x => ({ feed: x.feed, seq: 3, hash: new Uint8Array(32) }))), recordBytes: 0 }
  settled.recordBytes = encodeVector(feeds.slice(1).map(x => ({ feed: x.feed, seq: 3, hash: new Uint8Array(32) }))).length
  let rolloutWire = 0
  let rolloutStored = 0
  const count = (s: StoredEntry): void => {
    const c = fleet.perReceiver(s, sample)
    rolloutWire += (N - 1) * (c.gossip + c.ihave + c.pull)
    rolloutStored += N * c.stored
  }
  for (let h = 0; h < N; h++) {
    const own = fleet.feeds[h]
    const schedule = fleet.schedules[h]
    let next = fleet.dueAt(h)
    for (let m = 0; m < log.messages.length; m++) {
      const t = log.at[m]
      while (next !== undefined && next <= t) {
        count(fleet.witness(h, next, settled))
        next = fleet.dueAt(h)
      }
      const e = log.messages[m]
      if (log.from[m] === h) count(own.append(f.wall(t), e.kind, e.body as object))
      else schedule.onEntry({ feed: feeds[log.from[m]].feed, kind: e.kind }, f.wall(t))
      next = fleet.dueAt(h)
    }
    while (next !== undefined && next <= f.end) {
      count(fleet.witness(h, next, settled))
      next = fleet.dueAt(h)
    }
  }
  const rolloutWitnesses = fleet.witnesses
  rolloutStored += fleet.stored

  // ---- idle
  fleet.settle()
  fleet.stored = 0
  const idleMs = opts.idleMs as number
  const stop = f.end + idleMs
  const q = new EventQueue()
  const queued = new Float64Array(N).fill(Number.NaN)
  const queueWitness = (h: number): void => {
    const at = fleet.dueAt(h)
    if (at === undefined || at >= stop || queued[h] === at) return
    queued[h] = at
    q.push(Math.max(at, f.end), Ev.Witness, h)
  }
  for (let h = 0; h < N; h++) {
    q.push(f.end + rand() * opts.repairMs, Ev.Repair, h)
    queueWitness(h)
  }
  const announced: StoredEntry[] = []
  while (q.size > 0) {
    q.pop()
    const t = q.time
    const h = q.who
    if (t >= stop) break
    switch (q.kind) {
      case Ev.Repair:
        fleet.repair(h)
        q.push(t + opts.repairMs, Ev.Repair, h)
        break
      case Ev.Witness: {
        if (!fleet.schedules[h].due(f.wall(t))) break
        const s = fleet.witness(h, t)
        const id = announced.push(s) - 1
        fleet.observe(h, s.entry, t)
        fleet.announce(h, s, t, (time, v) => { q.push(time, Ev.Pulled, v, id) })
        for (let k = 0; k < N; k++) queueWitness(k)
        break
      }
      case Ev.Pulled:
        fleet.pulled(h, announced[q.with])
        break
    }
  }
  const tr = fleet.traffic
  const perHostPerS = (bytes: number): number => Math.round(bytes / N / (idleMs / 1000))
  return {
    idle_ms: idleMs,
    idle_bytes_per_s_per_host: perHostPerS(tr.total),
    idle_gossip_bytes_per_s_per_host: perHostPerS(tr.gossip + tr.ihave),
    idle_repair_bytes_per_s_per_host: perHostPerS(tr.repairs),
    idle_pull_bytes_per_s_per_host: perHostPerS(tr.pulls),
    idle_witnesses: fleet.witnesses - rolloutWitnesses,
    repair_rounds_mean: Number((tr.repairRounds / Math.max(1, tr.repairExchanges)).toFixed(3)),
    gossip_copies_per_host: Number(sample.copies.toFixed(2)),
    log_bytes_per_day_per_host: Math.round(fleet.stored / N * DAY_MS / idleMs),
    rollout_bytes_per_host: Math.round(rolloutWire / N),
    rollout_log_bytes_per_host: Math.round(rolloutStored / N),
    rollout_witnesses: rolloutWitnesses,
    idle_wall_ms: Math.round(performance.now() - wallStart)
  }
}
