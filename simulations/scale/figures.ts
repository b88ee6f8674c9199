// What a scale run counts while it runs, and the figures and plot it prints at the end.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Decision } from '../../protocols/rollout/index.js'
import { linePlot } from '../harness/svg.js'
import type { GossipParams } from './params.js'
import { pushGossipCurve, timeToReach } from './model.js'
import type { Network } from './network.js'
import type { ScaleOptions } from './options.js'

export interface ScaleResult extends Record<string, number | string> {}

const ACTS: Partial<Record<Decision['action'], number>> = { apply: 1, revert: 2, attest: 3 }

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

export class Tally {
  decisions = 0
  /** FNV-1a over (host, time, action) of every decision that acts: equal digests, equal rollouts */
  digest = 0x811c9dc5
  releaseArrivals: number[] = []
  releaseOnline = 0
  failureArrivals: number[] = []
  failureAt = -1
  failureOnline = 0
  soaked = 0
  overdue = 0
  /** the longest an apply went without an outcome (still open ones counted to the end) */
  maxOpenApplyMs = 0
  readonly catchups: number[] = []
  readonly applyStarted: Float64Array
  readonly applyOk: Float64Array

  constructor (hosts: number) {
    this.applyStarted = new Float64Array(hosts).fill(-1)
    this.applyOk = new Float64Array(hosts).fill(-1)
  }

  decided (h: number, t: number, d: Decision): void {
    this.decisions++
    const act = ACTS[d.action]
    if (act !== undefined) for (const x of [h, Math.round(t), act]) this.digest = Math.imul(this.digest ^ x, 0x01000193)
  }

  /** Host h's apply that began at applyStarted[h] got its outcome at t. */
  outcome (h: number, t: number): void {
    this.maxOpenApplyMs = Math.max(this.maxOpenApplyMs, t - this.applyStarted[h])
  }
}

export interface RunFacts {
  opts: ScaleOptions
  gossip: GossipParams
  net: Network
  waveOf: Int32Array
  publishAt: number
  latencyMedianMs: number
  latencySigma: number
  entries: number
  folds: number
  end: number
  wallMs: number
}

export function figures (tally: Tally, f: RunFacts): ScaleResult {
  const { opts, gossip, net, publishAt } = f
  const N = opts.hosts
  const arrivals = tally.releaseArrivals
  const online = tally.releaseOnline
  const at = (frac: number): number => {
    const k = Math.ceil(frac * online) - 1 // index among arrivals + the origin
    if (k <= 0) return 0
    return k - 1 < arrivals.length ? arrivals[k - 1] - publishAt : Number.NaN
  }
  const meanLat = f.latencyMedianMs * Math.exp(f.latencySigma * f.latencySigma / 2)
  const curve = pushGossipCurve(online, gossip.D, meanLat)
  const model = (frac: number): number => timeToReach(curve, online, frac)
  const laterWaveStarts = tally.applyStarted.reduce((n, s, i) => n + (s >= 0 && f.waveOf[i] > 0 ? 1 : 0), 0)
  const okTimes = [...tally.applyOk].filter(x => x >= 0)
  const catchups = [...tally.catchups].sort((a, b) => a - b)
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
    reached_online: arrivals.length + 1, // the publisher holds it at once
    online_at_publish: online,
    model50_ms: Math.round(model(0.5)),
    model99_ms: Math.round(model(0.99)),
    // one-shot push leaves about e^-D of the hosts unreached in the mean-field model: -1 = never
    model100_ms: Number.isFinite(model(1)) ? Math.round(model(1)) : -1,
    ratio: Number((at(0.99) / model(0.99)).toFixed(2)),
    applied_ok: okTimes.length,
    later_wave_starts: laterWaveStarts,
    rollout_done_ms: okTimes.length > 0 ? Math.round(Math.max(...okTimes) - publishAt) : -1,
    sim_end_ms: Math.round(f.end),
    msgs_sent_per_host: Number((net.sent.reduce((a, b) => a + b, 0) / N).toFixed(1)),
    ihave_per_host: Number((net.ihave.reduce((a, b) => a + b, 0) / N).toFixed(1)),
    msgs_received_per_host: Number((net.received / N).toFixed(1)),
    entries: f.entries,
    folds: f.folds,
    decisions: tally.decisions,
    acts_digest: (tally.digest >>> 0).toString(16),
    soaked: tally.soaked,
    overdue: tally.overdue,
    wall_ms: Math.round(f.wallMs)
  }
  if (tally.failureAt >= 0) {
    // every online host holds the failure, so every later-wave host's decision is 'halted'
    result.halt_reached = tally.failureArrivals.length
    result.halt_online = tally.failureOnline
    result.halt_all_ms = tally.failureArrivals.length > 0 ? Math.round(tally.failureArrivals[tally.failureArrivals.length - 1] - tally.failureAt) : -1
  }
  if (catchups.length > 0) {
    result.returned = catchups.length
    result.catchup_p50_ms = Math.round(percentile(catchups, 0.5))
    result.catchup_max_ms = Math.round(catchups[catchups.length - 1])
  }
  if (opts.svg !== undefined) {
    const simPts: Array<[number, number]> = [[0, 1], ...arrivals.map((a, i): [number, number] => [a - publishAt, i + 2])]
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
