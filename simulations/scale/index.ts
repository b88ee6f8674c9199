// `npm run sim -- scale --hosts 10000 [--loss 0.05] [--churn 0.1] [--fail-canary] [--quick]`
//
// A discrete-event simulation of one release rolling out over a fleet: a priority queue of
// events on a simulated clock (no timers), the gossipsub overlay of network.ts, and on every
// host the very protocols/rollout fold and decision code the daemon runs, fed with the entries
// that host has received. Hosts decide at their heartbeat when something new arrived (or a soak
// ended), apply for a simulated time, publish apply-start / apply-ok (or apply-failed +
// rollback) into the gossip, and so on. Hosts that return from offline catch up by the
// head-vector exchange on connect (a range pull from one connected peer).
//
// Every entry still reaches every host (all members replicate the whole log) and is counted;
// each host FOLDS only the entries that can change its own decision — releases, controls,
// failures, health, its own outcomes, and the apply-ok of hosts in EARLIER waves (decide.ts
// reads nothing else: an earlier wave's apply-start only counts through waitOfflineMs, so it
// is folded only for waves that set it). `--fold-all` folds everything; `acts_digest` hashes
// every apply/revert decision with its host and time, and a test checks both runs give the
// same digest.
//
// Cost: every entry crosses every mesh edge, so a run is O(entries × hosts × D) ≈ 1.3·10⁹
// transmissions at 10,000 hosts; see network.ts (bucket-queue spread) and inbox.ts (deliveries
// into one typed slab) for what keeps each one at a few nanoseconds.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { applyEntry, decide, emptyState, planRelease, PlanCache } from '../../protocols/rollout/index.js'
import type { MembershipView, ReleaseBody, RolloutState } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { Network, mulberry32 } from './network.js'
import { Inboxes } from './inbox.js'
import { gossipsubDefaults } from './params.js'
import { pushGossipCurve, timeToReach } from './model.js'
import { linePlot } from '../harness/svg.js'

export interface ScaleOptions {
  hosts: number
  loss: number
  churn: number
  failCanary: boolean
  seed: number
  peers: number
  applyMs: number
  soakMs: number
  limitMs: number
  foldAll: boolean
  svg?: string
}

const DEFAULTS: ScaleOptions = { hosts: 10_000, loss: 0, churn: 0, failCanary: false, seed: 1, peers: 24, applyMs: 20_000, soakMs: 30_000, limitMs: 3_600_000, foldAll: false, svg: 'out/sim-scale.svg' }

const PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-fleet'
const PUBLISH_AT = 2_000
const LATENCY_MEDIAN_MS = 20
const LATENCY_SIGMA = 0.5

/** `--quick`: the same scenario and figures on 200 hosts, plotted beside the README's plot, not over it. */
const QUICK: Partial<ScaleOptions> = { hosts: 200, svg: 'out/sim-scale-quick.svg' }

export function parseArgs (args: string[]): ScaleOptions {
  const o = { ...DEFAULTS, ...(args.includes('--quick') ? QUICK : {}) }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const num = (): number => {
      const v = Number(args[++i])
      if (!Number.isFinite(v)) throw new Error(`${a} needs a number`)
      return v
    }
    switch (a) {
      case '--hosts': o.hosts = num(); break
      case '--loss': o.loss = num(); break
      case '--churn': o.churn = num(); break
      case '--seed': o.seed = num(); break
      case '--peers': o.peers = num(); break
      case '--apply-ms': o.applyMs = num(); break
      case '--soak-ms': o.soakMs = num(); break
      case '--limit-ms': o.limitMs = num(); break
      case '--fail-canary': o.failCanary = true; break
      case '--fold-all': o.foldAll = true; break
      case '--svg': o.svg = args[++i]; break
      case '--no-svg': o.svg = undefined; break
      case '--quick': break
      default: throw new Error(`unknown option ${a}`)
    }
  }
  if (!Number.isInteger(o.hosts) || o.hosts < 10) throw new Error('--hosts must be an integer ≥ 10')
  if (o.loss < 0 || o.loss >= 1 || o.churn < 0 || o.churn > 1) throw new Error('--loss and --churn are fractions')
  return o
}

const enum Ev { Heartbeat, ApplyDone, Offline, Online, SyncDone }

/** A binary heap of events in typed arrays; `pop` leaves the event in the public fields. */
class EventQueue {
  private t = new Float64Array(1024)
  private ev = new Int32Array(1024)
  private host = new Int32Array(1024)
  private arg = new Int32Array(1024)
  size = 0
  time = 0
  kind = Ev.Heartbeat
  who = 0
  with = 0

  push (time: number, e: Ev, host: number, arg = 0): void {
    if (this.size === this.t.length) this.grow()
    const { t, ev, host: hs, arg: as } = this
    let i = this.size++
    while (i > 0) {
      const p = (i - 1) >> 1
      if (t[p] <= time) break
      t[i] = t[p]; ev[i] = ev[p]; hs[i] = hs[p]; as[i] = as[p]; i = p
    }
    t[i] = time; ev[i] = e; hs[i] = host; as[i] = arg
  }

  pop (): void {
    const { t, ev, host: hs, arg: as } = this
    this.time = t[0]; this.kind = ev[0]; this.who = hs[0]; this.with = as[0]
    const n = --this.size
    const lt = t[n]; const le = ev[n]; const lh = hs[n]; const la = as[n]
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const c = l + 1 < n && t[l + 1] < t[l] ? l + 1 : l
      if (t[c] >= lt) break
      t[i] = t[c]; ev[i] = ev[c]; hs[i] = hs[c]; as[i] = as[c]; i = c
    }
    t[i] = lt; ev[i] = le; hs[i] = lh; as[i] = la
  }

  private grow (): void {
    const n = 2 * this.t.length
    const t = new Float64Array(n); t.set(this.t); this.t = t
    const ev = new Int32Array(n); ev.set(this.ev); this.ev = ev
    const h = new Int32Array(n); h.set(this.host); this.host = h
    const a = new Int32Array(n); a.set(this.arg); this.arg = a
  }
}

/** Membership of the simulated fleet: host 0 is the admin, every host is a member. */
function fleetMembership (ids: string[]): MembershipView {
  const set = new Set(ids)
  return { revision: 0, isAdmin: p => p === ids[0], isMember: p => set.has(p), tagsOf: () => ['fleet'], members: () => ids }
}

interface HostSim {
  state: RolloutState
  /** bit m: message m has been read */
  have: Uint8Array
  dirty: boolean
  /** when the last decision said to look again (a soak ending) */
  untilAt: number
  applying: boolean
  lastArrival: number
}

/** How an entry matters to the fold shortcut (see the header). */
const enum MsgClass { Other, ApplyStart, ApplyOk }

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

export interface ScaleResult extends Record<string, number | string> {}

export async function run (args: string[]): Promise<ScaleResult> {
  return simulate(parseArgs(args))
}

export function simulate (opts: ScaleOptions): ScaleResult {
  const wall = performance.now()
  const gossip = gossipsubDefaults()
  const rand = mulberry32(opts.seed)
  const N = opts.hosts
  const net = new Network({ hosts: N, peers: opts.peers, loss: opts.loss, latencyMedianMs: LATENCY_MEDIAN_MS, latencySigma: LATENCY_SIGMA }, gossip, rand)
  const ids = Array.from({ length: N }, (_, i) => `SimHost${i}`)
  const membership = fleetMembership(ids)
  const release: ReleaseBody = {
    id: 'sim-release',
    number: 1,
    targets: [{ tag: 'fleet', path: PATH, sources: ['peers'] }],
    waves: [
      { count: 1, gate: { healthy: 100, soakMs: opts.soakMs } },
      { percent: 25, gate: { healthy: 90, soakMs: opts.soakMs } },
      { percent: 100, gate: { healthy: 90, soakMs: opts.soakMs } }
    ],
    maxFailures: Math.max(1, Math.floor(N / 100)),
    autoRevert: true
  }
  const plan = planRelease(release, membership)
  const waveOf = new Int32Array(N).fill(-1)
  ids.forEach((id, i) => { waveOf[i] = plan.waveOf.get(id) ?? -1 })
  const canary = ids.indexOf(plan.waves[0][0])

  const messages: Entry[] = []
  const msgFrom: number[] = []
  const msgClass: MsgClass[] = []
  const seqs = new Int32Array(N)
  const inbox = new Inboxes(N)
  // every host writes about two entries: size the bitsets once
  const haveBytes = (2 * N + 64) >> 3
  // Every simulated host sees the same member view: one plan per release serves them all.
  const plans = new PlanCache()
  const hosts: HostSim[] = ids.map(() => ({ state: emptyState(plans), have: new Uint8Array(haveBytes), dirty: false, untilAt: Number.POSITIVE_INFINITY, applying: false, lastArrival: Number.NEGATIVE_INFINITY }))
  // apply-start counts for a gate only through its silent-host rule (waitOfflineMs)
  const startCounts = release.waves.map(w => w.waitOfflineMs !== undefined)
  const q = new EventQueue()
  let folds = 0
  let decisions = 0
  // FNV-1a over (host, time, action) of every decision that acts: equal digests, equal rollouts
  let digest = 0x811c9dc5
  let lastPublish = 0
  let applyingNow = 0
  let releaseArrivals: number[] = []
  let failureArrivals: number[] = []
  let releaseOnline = 0
  let failureAt = -1
  let failureOnline = 0
  let offlineNow = 0
  const onlineAt = new Float64Array(N)
  const applyStarted = new Float64Array(N).fill(-1)
  const applyOk = new Float64Array(N).fill(-1)
  const catchups: number[] = []
  const offlineAtPublish = new Uint8Array(N)

  function relevant (h: number, m: number): boolean {
    const c = msgClass[m]
    if (opts.foldAll || c === MsgClass.Other) return true
    const from = msgFrom[m]
    if (from === h) return true
    const w = waveOf[from]
    return w < waveOf[h] && (c === MsgClass.ApplyOk || startCounts[w])
  }
  function markHave (h: number, m: number): boolean {
    const s = hosts[h]
    if (m >= s.have.length * 8) {
      const grown = new Uint8Array(Math.max(64, s.have.length * 2, (m >> 3) + 1))
      grown.set(s.have)
      s.have = grown
    }
    if ((s.have[m >> 3] & (1 << (m & 7))) !== 0) return false
    s.have[m >> 3] |= 1 << (m & 7)
    return true
  }
  function receive (h: number, m: number, at: number): void {
    if (!markHave(h, m)) return
    const s = hosts[h]
    s.lastArrival = Math.max(s.lastArrival, at)
    if (relevant(h, m)) {
      applyEntry(s.state, messages[m])
      folds++
      s.dirty = true
    }
  }
  // reads every delivered message that has arrived by `now`
  function drain (h: number, now: number): void {
    const due = inbox.takeDue(h, now)
    const { dueMsg, dueAt } = inbox
    for (let i = 0; i < due; i++) receive(h, dueMsg[i], dueAt[i])
  }

  /** Publishes an entry of host h; returns the arrival times at the other hosts when `track`. */
  function publish (h: number, t: number, kind: string, body: unknown, track = false): number[] {
    const entry: Entry = { feed: ids[h], seq: seqs[h]++, prev: new Uint8Array(32), ts: Math.round(t), kind, body, sig: new Uint8Array(64) }
    const m = messages.length
    messages.push(entry)
    msgFrom.push(h)
    msgClass.push(kind === 'apply-ok' ? MsgClass.ApplyOk : kind === 'apply-start' ? MsgClass.ApplyStart : MsgClass.Other)
    lastPublish = t
    receive(h, m, t)
    inbox.published(m, t)
    net.spread(h, t)
    const { reached, arrival } = net
    const arrivals: number[] = []
    for (let i = 0; i < net.reachedCount; i++) {
      const v = reached[i]
      inbox.deliver(v, m, arrival[v])
      if (track) arrivals.push(arrival[v])
    }
    return arrivals.sort((a, b) => a - b)
  }

  function act (h: number, t: number): void {
    const s = hosts[h]
    s.dirty = false
    s.untilAt = Number.POSITIVE_INFINITY
    if (s.applying) return
    const d = decide(s.state, membership, ids[h], t, { trace: false })
    decisions++
    if (d.action === 'apply' || d.action === 'revert') {
      for (const x of [h, Math.round(t), d.action === 'apply' ? 1 : 2]) digest = Math.imul(digest ^ x, 0x01000193)
    }
    if (d.action === 'apply') {
      s.applying = true
      applyingNow++
      applyStarted[h] = t
      publish(h, t, 'apply-start', { release: d.release, path: d.path, wave: d.wave })
      // fetch + switch + health checks: log-normal around the configured mean
      q.push(t + opts.applyMs * Math.exp(0.3 * (rand() + rand() + rand() - 1.5)), Ev.ApplyDone, h)
    } else if (d.action === 'revert') {
      publish(h, t, 'rollback', { release: d.release, from: d.path, to: PATH.replace('fleet', 'prev'), ok: true })
    } else if (d.action === 'wait' && d.until !== undefined) {
      s.untilAt = d.until
    }
  }

  // churn: a host leaves once at a random time in the first two minutes, for 10..90 s
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

  let now = 0
  while (q.size > 0) {
    q.pop()
    const t = q.time
    const e = q.kind
    const h = q.who
    const arg = q.with
    now = t
    if (!published && t >= PUBLISH_AT) {
      published = true
      for (let i = 0; i < N; i++) offlineAtPublish[i] = net.online[i] === 1 ? 0 : 1
      releaseOnline = N - offlineAtPublish.reduce((a, b) => a + b, 0)
      releaseArrivals = publish(0, PUBLISH_AT, 'release', release, true)
    }
    if (t > opts.limitMs) break
    const s = hosts[h]
    switch (e) {
      case Ev.Heartbeat: {
        q.push(t + gossip.heartbeatMs, Ev.Heartbeat, h)
        if (net.online[h] === 0) break
        net.graft(h)
        if (inbox.nextArrival[h] <= t) drain(h, t)
        // IHAVE to this heartbeat's gossip targets while the message cache window holds something
        if (s.lastArrival >= t - gossip.historyGossip * gossip.heartbeatMs) net.ihave[h] += net.gossipTargets(h)
        if (s.dirty || s.untilAt <= t) act(h, t)
        break
      }
      case Ev.ApplyDone: {
        // a host that went down mid-apply reports when it is back (the engine's journal finishes it)
        if (net.online[h] === 0) { q.push(t + gossip.heartbeatMs, Ev.ApplyDone, h); break }
        s.applying = false
        applyingNow--
        if (opts.failCanary && h === canary) {
          failureOnline = net.online.reduce((a, b) => a + b, 0) - 1
          failureArrivals = publish(h, t, 'apply-failed', { release: release.id, path: PATH, reason: 'health check failed: unit fleet-agent.service', check: 'fleet-agent' }, true)
          failureAt = t
          publish(h, t, 'rollback', { release: release.id, from: PATH, to: PATH.replace('fleet', 'prev'), ok: true })
        } else {
          applyOk[h] = t
          publish(h, t, 'apply-ok', { release: release.id, path: PATH, healthyAt: Math.round(t) })
        }
        s.dirty = true
        break
      }
      case Ev.Offline:
        drain(h, t)
        net.leave(h)
        break
      case Ev.Online: {
        net.join(h)
        offlineNow--
        onlineAt[h] = t
        const peers = net.connected[h].filter(p => net.online[p] === 1)
        if (peers.length > 0) {
          // connect (TCP + hybrid Noise handshake: two round trips), exchange head vectors, pull the range
          const rtt = (): number => 2 * net.latency()
          q.push(t + 2 * rtt() + rtt(), Ev.SyncDone, h, peers[Math.floor(rand() * peers.length)])
        }
        break
      }
      case Ev.SyncDone: {
        if (net.online[h] === 0 || net.online[arg] === 0) break
        drain(arg, t)
        drain(h, t)
        let pulled = 0
        const mine = s.have
        const theirs = hosts[arg].have
        for (let i = 0; i < theirs.length; i++) {
          // what the peer has beyond this host's head vector: missing bits, a byte at a time
          const missing = theirs[i] & ~(i < mine.length ? mine[i] : 0)
          if (missing === 0) continue
          for (let b = 0; b < 8; b++) {
            if ((missing & (1 << b)) !== 0) { receive(h, 8 * i + b, t); pulled++ }
          }
        }
        net.sent[h] += 1
        net.sent[arg] += 1
        net.received += 2
        catchups.push(t - onlineAt[h])
        s.dirty = pulled > 0 || s.dirty
        break
      }
    }
    if (published && applyingNow === 0 && offlineNow === 0 && t - lastPublish > opts.soakMs + 10 * gossip.heartbeatMs && (failureAt >= 0 || t > PUBLISH_AT + 60_000)) break
  }

  // ---- figures ---------------------------------------------------------------------------
  const reachedOnline = releaseArrivals.length + 1 // the publisher holds it at once
  const at = (frac: number): number => {
    const k = Math.ceil(frac * releaseOnline) - 1 // index among arrivals + the origin
    if (k <= 0) return 0
    return k - 1 < releaseArrivals.length ? releaseArrivals[k - 1] - PUBLISH_AT : Number.NaN
  }
  const meanLat = LATENCY_MEDIAN_MS * Math.exp(LATENCY_SIGMA * LATENCY_SIGMA / 2)
  const curve = pushGossipCurve(releaseOnline, gossip.D, meanLat)
  const model = (f: number): number => timeToReach(curve, releaseOnline, f)
  const laterWaveStarts = ids.reduce((n, _, i) => n + (applyStarted[i] >= 0 && waveOf[i] > 0 ? 1 : 0), 0)
  const okTimes = [...applyOk].filter(x => x >= 0)
  const totalSent = net.sent.reduce((a, b) => a + b, 0)
  const totalRecv = net.received
  catchups.sort((a, b) => a - b)

  const result: ScaleResult = {
    sim: 'scale',
    hosts: N,
    loss: opts.loss,
    churn: opts.churn,
    fail_canary: opts.failCanary ? 1 : 0,
    D: gossip.D,
    Dlo: gossip.Dlo,
    Dhi: gossip.Dhi,
    Dlazy: gossip.Dlazy,
    heartbeat_ms: gossip.heartbeatMs,
    reach50_ms: Math.round(at(0.5)),
    reach99_ms: Math.round(at(0.99)),
    reach100_ms: Math.round(at(1)),
    reached_online: reachedOnline,
    online_at_publish: releaseOnline,
    model50_ms: Math.round(model(0.5)),
    model99_ms: Math.round(model(0.99)),
    // one-shot push leaves about e^-D of the hosts unreached in the mean-field model: -1 = never
    model100_ms: Number.isFinite(model(1)) ? Math.round(model(1)) : -1,
    ratio: Number((at(0.99) / model(0.99)).toFixed(2)),
    applied_ok: okTimes.length,
    later_wave_starts: laterWaveStarts,
    rollout_done_ms: okTimes.length > 0 ? Math.round(Math.max(...okTimes) - PUBLISH_AT) : -1,
    sim_end_ms: Math.round(now),
    msgs_sent_per_host: Number((totalSent / N).toFixed(1)),
    ihave_per_host: Number((net.ihave.reduce((a, b) => a + b, 0) / N).toFixed(1)),
    msgs_received_per_host: Number((totalRecv / N).toFixed(1)),
    entries: messages.length,
    folds,
    decisions,
    acts_digest: (digest >>> 0).toString(16),
    wall_ms: Math.round(performance.now() - wall)
  }
  if (failureAt >= 0) {
    // every online host holds the failure, so every later-wave host's decision is 'halted'
    result.halt_reached = failureArrivals.length
    result.halt_online = failureOnline
    result.halt_all_ms = failureArrivals.length > 0 ? Math.round(failureArrivals[failureArrivals.length - 1] - failureAt) : -1
  }
  if (catchups.length > 0) {
    result.returned = catchups.length
    result.catchup_p50_ms = Math.round(percentile(catchups, 0.5))
    result.catchup_max_ms = Math.round(catchups[catchups.length - 1])
  }
  if (opts.svg !== undefined) {
    const simPts: Array<[number, number]> = [[0, 1], ...releaseArrivals.map((a, i): [number, number] => [a - PUBLISH_AT, i + 2])]
    const modelPts = curve.map((p): [number, number] => [p.ms, p.reached])
    mkdirSync(dirname(opts.svg), { recursive: true })
    writeFileSync(opts.svg, linePlot(`release reach, ${N} hosts, D=${gossip.D}, loss ${opts.loss}, churn ${opts.churn}`, 'ms after publish', 'hosts holding the release', [
      { name: 'simulated gossipsub', color: '#1f77b4', points: simPts },
      { name: `mean-field push model (fan-out ${gossip.D}, ${meanLat.toFixed(1)} ms/hop)`, color: '#d62728', points: modelPts }
    ]))
    result.svg = opts.svg
  }
  return result
}
