// One chaos run's faults, drawn from its seed so that `--seed N` replays the run: per-host clock
// offsets, kills at a phase of an apply (the host restarts over the same store), hosts that go
// silent for good, a partition that heals, a failing host, a health failure inside a soak, and a
// second release that overlaps the first.
import { CLOCK_SKEW_MS } from '../../protocols/audit/store.js'
import { mulberry32 } from '../scale/network.js'
import { PHASES, type Phase } from './crash-executor.js'

export const MAX_SKEW_MS = 5 * 60_000
/**
 * How far apart two hosts' clocks may be: a store refuses (until its clock catches up) entries
 * stamped more than CLOCK_SKEW_MS ahead of its own clock, so a wider spread would stall
 * replication by design; half a minute is left for the time entries take to travel.
 */
const SPREAD_MS = CLOCK_SKEW_MS - 30_000

export interface FaultPlan {
  seed: number
  /** host index → its wall clock's offset (ms) */
  offsets: number[]
  /** host index → the phase of its next apply at which it is killed (then restarted) */
  kills: Map<number, Phase>
  /** host → ms after publishing at which it is killed, never to restart */
  silent: Map<number, number>
  /** how long a killed host stays down before it restarts (ms) */
  downMs: number
  /** hosts whose apply fails */
  failing: Set<number>
  /** hosts whose health fails during the gate soak */
  soakFailing: Set<number>
  /** ms after publishing at which half the fleet is cut off, and for how long; undefined: none */
  partition?: { atMs: number, forMs: number }
  /** ms after the first release at which an overlapping one (some hosts, another path) is published */
  overlapAtMs?: number
  maxFailures: number
}

/** Every fault count the plan injects. */
export function faultCount (p: FaultPlan): number {
  return p.offsets.filter((o) => o !== 0).length + p.kills.size + p.silent.size + p.failing.size + p.soakFailing.size + (p.partition !== undefined ? 1 : 0) + (p.overlapAtMs !== undefined ? 1 : 0)
}

/** Host 0 (the founder, who publishes) is never faulted but for its clock. */
export function drawFaults (seed: number, hosts: number): FaultPlan {
  const rand = mulberry32(seed)
  const pick = (): number => 1 + Math.floor(rand() * (hosts - 1))
  // every offset within ±MAX_SKEW_MS of true time, all of them within SPREAD_MS of each other
  const base = -MAX_SKEW_MS + rand() * (2 * MAX_SKEW_MS - SPREAD_MS)
  const offsets = Array.from({ length: hosts }, () => Math.round(base + rand() * SPREAD_MS))
  const kills = new Map<number, Phase>()
  for (let i = 0; i < Math.max(1, Math.floor(hosts / 4)); i++) kills.set(pick(), PHASES[Math.floor(rand() * PHASES.length)])
  const silent = new Map<number, number>()
  if (rand() < 0.6) silent.set(pick(), Math.floor(rand() * 2000))
  const failing = new Set<number>()
  if (rand() < 0.4) failing.add(pick())
  const soakFailing = new Set<number>()
  if (rand() < 0.3) soakFailing.add(pick())
  for (const h of silent.keys()) { kills.delete(h); failing.delete(h); soakFailing.delete(h) }
  return {
    seed,
    offsets,
    kills,
    silent,
    failing,
    soakFailing,
    downMs: 300 + Math.floor(rand() * 1200),
    partition: rand() < 0.5 ? { atMs: Math.floor(rand() * 3000), forMs: 2000 + Math.floor(rand() * 4000) } : undefined,
    overlapAtMs: rand() < 0.5 ? Math.floor(rand() * 4000) : undefined,
    maxFailures: rand() < 0.5 ? 0 : 1
  }
}
