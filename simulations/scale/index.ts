// `npm run sim -- scale --hosts 10000 [--loss 0.05] [--churn 0.1] [--fail-canary | --hang-canary] [--skew-ms N] [--idle 1h] [--quick]`
//
// A discrete-event simulation of one release rolling out over a fleet: a priority queue of
// events on a simulated clock (events.ts, no timers), the gossipsub overlay of network.ts, the
// replicated log of log.ts, and on every host the deploy agent's own decision path (host.ts):
// the protocols/rollout fold and decisions the daemon runs, its local timers, its gate soak
// attested by `soaked`, its outcome entries. Hosts decide at their heartbeat (the agent's tick)
// when something new arrived, when a local timer ran out, or when their soak ended; an apply
// takes simulated time, then apply-ok (or apply-failed + rollback) goes into the gossip, and a
// host that soaked its gate's soakMs on its own clock writes `soaked`. Churned hosts go down (the
// daemon stops: its timers and soak start from zero when it is back) and catch up by the
// head-vector exchange on connect (a range pull from one connected peer) before they decide.
//
// Cost: every entry crosses every mesh edge, so a run is O(entries × hosts × D) ≈ 2·10⁹
// transmissions at 10,000 hosts; see network.ts (bucket-queue spread) and inbox.ts (deliveries
// into one typed slab) for what keeps each one at a few nanoseconds, and log.ts for the fold
// shortcut that keeps each host's fold to what its decisions read.
import { setImmediate as yieldToMicrotasks } from 'node:timers/promises'
import { DEFAULT_APPLY_DEADLINE_MS, planRelease, PlanCache } from '../../protocols/rollout/index.js'
import type { MembershipView, ReleaseBody } from '../../protocols/rollout/index.js'
import { Ev, EventQueue } from './events.js'
import { figures, Tally, type ScaleResult } from './figures.js'
import { ScaleHost, type HostWorld } from './host.js'
import { Inboxes } from './inbox.js'
import { FleetLog } from './log.js'
import { idleFigures } from './idle.js'
import { Network, mulberry32 } from './network.js'
import { parseArgs, type ScaleOptions } from './options.js'
import { gossipsubDefaults } from './params.js'

export { parseArgs } from './options.js'
export type { ScaleOptions } from './options.js'
export type { ScaleResult } from './figures.js'

const PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-fleet'
const PUBLISH_AT = 2_000
/** the wall-clock time (ms since the epoch) at simulated time 0 */
const WALL_EPOCH = Date.UTC(2026, 0, 1)
const LATENCY_MEDIAN_MS = 20
const LATENCY_SIGMA = 0.5
/**
 * A shortcut run (log.ts) is refused when an apply went this close to the apply deadline without
 * an outcome: more than any delivery or catch-up takes, so no host's deadline timer can have run out.
 */
const DEADLINE_MARGIN_MS = 60_000

/** Membership of the simulated fleet: host 0 is the admin, every host is a member, nothing changes. */
function fleetMembership (ids: string[]): MembershipView {
  const set = new Set(ids)
  return {
    revision: 0,
    isAdmin: p => p === ids[0],
    isMember: p => set.has(p),
    standingAt: p => ({ member: set.has(p), admin: p === ids[0] }),
    // the release carries no basis: its plan follows this (never changing) view
    asOf: () => undefined,
    tagsOf: () => ['fleet'],
    members: () => ids
  }
}

function releaseOf (opts: ScaleOptions): ReleaseBody {
  const gate = (healthy: number): { healthy: number, soakMs: number } => ({ healthy, soakMs: opts.soakMs })
  return {
    id: 'sim-release',
    number: 1,
    targets: [{ tag: 'fleet', path: PATH, sources: ['peers'] }],
    waves: [{ count: 1, gate: gate(100) }, { percent: 25, gate: gate(90) }, { percent: 100, gate: gate(90) }],
    maxFailures: Math.max(1, Math.floor(opts.hosts / 100)),
    autoRevert: true,
    ...(opts.applyDeadlineMs !== undefined ? { applyDeadlineMs: opts.applyDeadlineMs } : {})
  }
}

export async function run (args: string[]): Promise<ScaleResult> {
  return await simulate(parseArgs(args))
}

export async function simulate (opts: ScaleOptions): Promise<ScaleResult> {
  const wallStart = performance.now()
  const gossip = gossipsubDefaults()
  const rand = mulberry32(opts.seed)
  const N = opts.hosts
  const net = new Network({ hosts: N, peers: opts.peers, loss: opts.loss, latencyMedianMs: LATENCY_MEDIAN_MS, latencySigma: LATENCY_SIGMA }, gossip, rand)
  const ids = Array.from({ length: N }, (_, i) => `SimHost${i}`)
  const membership = fleetMembership(ids)
  const release = releaseOf(opts)
  const plan = planRelease(release, membership)
  const waveOf = new Int32Array(N).fill(-1)
  ids.forEach((id, i) => { waveOf[i] = plan.waveOf.get(id) ?? -1 })
  const canary = ids.indexOf(plan.waves[0][0])
  // wall clocks from a stream of their own, so a skew leaves every other draw of the run as it was
  const skewRand = mulberry32(opts.seed ^ 0x5ce3)
  const skew = new Float64Array(N).map(() => (2 * skewRand() - 1) * opts.skewMs)

  const q = new EventQueue()
  const tally = new Tally(N)
  let now = 0
  let applyingNow = 0
  let soakingNow = 0
  let timingNow = 0
  let offlineNow = 0
  let failure: Error | undefined
  const onlineAt = new Float64Array(N)
  const world: HostWorld = {
    membership,
    now: () => now,
    wall: h => WALL_EPOCH + now + skew[h],
    append: (h, kind, body) => {
      const firstFailure = kind === 'apply-failed' && tally.failureAt < 0
      const { stored, arrivals } = log.append(h, now, WALL_EPOCH + now + skew[h], kind, body, kind === 'release' || firstFailure)
      if (kind === 'release') tally.releaseArrivals = arrivals
      if (firstFailure) {
        tally.failureAt = now
        tally.failureArrivals = arrivals
        tally.failureOnline = net.online.reduce((a, b) => a + b, 0) - 1
      }
      if (kind === 'apply-ok') tally.applyOk[h] = now
      if (kind === 'soaked') tally.soaked++
      if (kind === 'overdue') tally.overdue++
      if (kind === 'apply-ok' || kind === 'apply-failed') tally.outcome(h, now)
      return stored
    },
    schedule: (time, e, h, arg) => { q.push(time, e, h, arg) },
    applying: h => {
      tally.applyStarted[h] = now
      // a hung canary's activation never returns: only its apply deadline can settle it
      if (opts.hangCanary && h === canary) return
      applyingNow++
      // fetch + switch + health checks: log-normal around the configured mean
      q.push(now + opts.applyMs * Math.exp(0.3 * (rand() + rand() + rand() - 1.5)), Ev.ApplyDone, h)
    },
    soaking: delta => { soakingNow += delta },
    timing: delta => { timingNow += delta },
    decided: (h, d) => { tally.decided(h, now, d) },
    fail: err => { failure ??= err }
  }
  // every host writes about three entries: size the bitsets once
  const haveBytes = (3 * N + 64) >> 3
  // Every simulated host sees the same member view: one plan per release serves them all.
  const plans = new PlanCache()
  const hosts = ids.map((id, i) => new ScaleHost(i, id, plans, haveBytes, world))
  const log = new FleetLog(net, new Inboxes(N), hosts, ids, waveOf, opts.foldAll)

  // churn: a host goes down once at a random time in the first two minutes, for 10..90 s
  for (let h = 1; h < N; h++) {
    if (opts.churn > 0 && rand() < opts.churn) {
      const off = rand() * 120_000
      q.push(off, Ev.Offline, h)
      offlineNow++ // counted from the start so the run cannot end before every host is back
      q.push(off + 10_000 + rand() * 80_000, Ev.Online, h)
    }
    q.push(net.phase[h], Ev.Heartbeat, h)
  }
  q.push(net.phase[0], Ev.Heartbeat, 0)
  let published = false
  /** hosts back from down that have not caught up yet: the agent decides only after it did */
  const catchingUp = new Uint8Array(N)

  while (q.size > 0) {
    q.pop()
    const t = q.time
    const h = q.who
    const arg = q.with
    now = t
    if (!published && t >= PUBLISH_AT) {
      published = true
      tally.releaseOnline = net.online.reduce((a, b) => a + b, 0)
      now = PUBLISH_AT
      world.append(0, 'release', release)
      now = t
    }
    if (t > opts.limitMs) break
    const s = hosts[h]
    const up = net.online[h] === 1 && catchingUp[h] === 0
    switch (q.kind) {
      case Ev.Heartbeat:
        q.push(t + gossip.heartbeatMs, Ev.Heartbeat, h)
        if (net.online[h] === 0) break
        net.graft(h)
        log.drain(h, t)
        // IHAVE to this heartbeat's gossip targets while the message cache window holds something
        if (s.lastArrival >= t - gossip.historyGossip * gossip.heartbeatMs) net.ihave[h] += net.gossipTargets(h)
        if (up && s.dirty) await s.act()
        break
      case Ev.Alarm:
        s.alarmRang(arg)
        if (up && s.dirty) await s.act()
        break
      case Ev.SoakDone:
        // the soak watch's continuation appends `soaked`: let it run at this simulated time
        if (s.soakEnded(arg)) await yieldToMicrotasks()
        break
      case Ev.ApplyDone:
        // a host that went down mid-apply reports when it is back (the engine's journal finishes it)
        if (net.online[h] === 0) { q.push(t + gossip.heartbeatMs, Ev.ApplyDone, h); break }
        applyingNow--
        await s.applied(opts.failCanary && h === canary)
        break
      case Ev.Offline:
        log.drain(h, t)
        s.stop()
        net.leave(h)
        break
      case Ev.Online: {
        net.join(h)
        offlineNow--
        onlineAt[h] = t
        s.start()
        const peers = net.connected[h].filter(p => net.online[p] === 1)
        // with 24 connections this does not happen; the agent would decide once its grace ran out
        if (peers.length === 0) break
        catchingUp[h] = 1
        // connect (TCP + hybrid Noise handshake: two round trips), exchange head vectors, pull the range
        const rtt = (): number => 2 * net.latency()
        q.push(t + 2 * rtt() + rtt(), Ev.SyncDone, h, peers[Math.floor(rand() * peers.length)])
        break
      }
      case Ev.SyncDone: {
        if (net.online[h] === 0) break
        // caught up, or its peer left meanwhile: the agent's catch-up wait ends either way
        catchingUp[h] = 0
        if (net.online[arg] === 0) break
        log.drain(arg, t)
        log.drain(h, t)
        log.pull(h, arg, t)
        net.sent[h] += 1
        net.sent[arg] += 1
        net.received += 2
        tally.catchups.push(t - onlineAt[h])
        break
      }
    }
    if (failure !== undefined) throw failure
    if (published && applyingNow === 0 && soakingNow === 0 && offlineNow === 0 && t - log.lastAppend > 10 * gossip.heartbeatMs && timingNow === 0) break
  }

  for (let i = 0; i < N; i++) if (tally.applyStarted[i] >= 0 && hosts[i].intent !== null) tally.outcome(i, now)
  const deadline = release.applyDeadlineMs ?? DEFAULT_APPLY_DEADLINE_MS
  if (!opts.foldAll && tally.maxOpenApplyMs + DEADLINE_MARGIN_MS >= deadline) {
    throw new Error(`an apply went ${Math.round(tally.maxOpenApplyMs)} ms without an outcome, near the ${deadline} ms apply deadline: the fold shortcut cannot follow deadline timers (log.ts); run with --fold-all`)
  }
  const result = figures(tally, { opts, gossip, net, waveOf, publishAt: PUBLISH_AT, latencyMedianMs: LATENCY_MEDIAN_MS, latencySigma: LATENCY_SIGMA, entries: log.messages.length, folds: log.folds, end: now, wallMs: performance.now() - wallStart })
  if (opts.idleMs !== undefined) Object.assign(result, await idleFigures({ opts, gossip, net, log, end: now, wall: t => WALL_EPOCH + t }))
  return result
}
