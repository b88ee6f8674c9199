// One chaos run's faults, drawn from its seed so that `--seed N` replays the run: per-host clock
// offsets, kills at a phase of an apply (the host restarts over the same store), hosts that go
// silent for good, a partition that heals, a failing host, a health failure inside a soak, and a
// second release that overlaps the first. With them, the rollout-safety features every run
// exercises (issue 14): per-release in-flight budgets, an ordering edge on a tag, an admin's pin
// of one host, and a path that fails after activation and is quarantined while a second release
// names it for other hosts.
import { CLOCK_SKEW_MS } from '../../protocols/audit/store.js'
import { mulberry32 } from '../scale/network.js'
import type { Budget } from '../../protocols/rollout/index.js'
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
  /** release 1's budget (as a count or a percentage of its hosts), the overlapping release's count */
  budget: { main: Budget, overlap: number }
  /** hosts tagged db: release 1's last wave waits for every one of them (`after: {tag: 'db'}`) */
  db: number[]
  /** an admin pins `host` `atMs` after publishing; lifted by its own expiry, by an admin's unpin, or never */
  pin: { host: number, atMs: number, lift?: { expiresMs: number } | { unpinAtMs: number } }
  /**
   * `failing` hosts' health fails after they activate the quarantine path: a release of it to them
   * (quarantineAfter = their count) at `atMs`, a second one naming it for `others` at `secondAtMs`,
   * and an admin's clear once the founder holds the quarantine, from `clearAtMs`
   */
  quarantine: { failing: number[], atMs: number, others: number[], secondAtMs: number, clearAtMs: number }
}

/** Every fault count the plan injects. */
export function faultCount (p: FaultPlan): number {
  return p.offsets.filter((o) => o !== 0).length + p.kills.size + p.silent.size + p.failing.size + p.soakFailing.size + (p.partition !== undefined ? 1 : 0) + (p.overlapAtMs !== undefined ? 1 : 0) + p.quarantine.failing.length
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
  const downMs = 300 + Math.floor(rand() * 1200)
  const partition = rand() < 0.5 ? { atMs: Math.floor(rand() * 3000), forMs: 2000 + Math.floor(rand() * 4000) } : undefined
  const overlapAtMs = rand() < 0.5 ? Math.floor(rand() * 4000) : undefined
  const maxFailures = rand() < 0.5 ? 0 : 1
  // drawn after the faults above, so that a seed keeps the faults it had before these existed
  const ms = (from: number, span: number): number => from + Math.floor(rand() * span)
  const take = (from: number[], k: number): number[] => {
    const pool = [...from]
    return Array.from({ length: Math.min(k, pool.length) }, () => pool.splice(Math.floor(rand() * pool.length), 1)[0])
  }
  const hostsOf = (skip: (h: number) => boolean): number[] => Array.from({ length: hosts - 1 }, (_, i) => i + 1).filter((h) => !skip(h))
  const pinHost = take(hostsOf((h) => silent.has(h)), 1)[0]
  const liftDraw = rand()
  const lift = liftDraw < 0.4 ? { expiresMs: ms(500, 2500) } : liftDraw < 0.8 ? { unpinAtMs: 0 } : undefined
  const pin = { host: pinHost, atMs: ms(0, 3000), lift }
  if (lift !== undefined && 'unpinAtMs' in lift) lift.unpinAtMs = pin.atMs + ms(1000, 3000)
  // the quarantine's hosts: awake, not pinned, activating (a failing apply rolls nothing back)
  const pool = hostsOf((h) => silent.has(h) || h === pinHost || failing.has(h))
  const failingQ = take(pool, hosts >= 6 && rand() < 0.5 ? 2 : 1)
  const rest = pool.filter((h) => !failingQ.includes(h))
  const others = take(rest.length > 0 ? rest : hostsOf((h) => silent.has(h) || failingQ.includes(h)), 1 + Math.floor(rand() * 2))
  // after the overlapping release, so that its number does not take the failing hosts away from the path
  const atMs = Math.max(ms(0, 2500), overlapAtMs !== undefined ? overlapAtMs + 300 : 0)
  const secondAtMs = atMs + ms(300, 1500)
  const quarantine = { failing: failingQ, atMs, others, secondAtMs, clearAtMs: secondAtMs + ms(500, 1000) }
  // an apply-failed of a db host holds the edge for good (edges.ts): db hosts do not fail; a silent
  // one is declared by the edge's own silent timer (overdue.ts: it once deadlocked, seed 1 --hosts 5)
  const db = take(hostsOf((h) => failing.has(h) || soakFailing.has(h)), 1 + Math.floor(rand() * 2))
  // a host that never writes (silent, or pinned for good) before its turn holds a slot for good (budget.ts): budgets leave one beyond them
  const holders = (of: number[]): number => of.filter((h) => silent.has(h) || (h === pinHost && lift === undefined)).length
  const all = Array.from({ length: hosts }, (_, i) => i)
  const main = Math.max(1 + Math.floor(rand() * 3), 1 + holders(all))
  const budget = {
    main: rand() < 0.25 ? { maxInFlightPercent: Math.floor(main * 100 / hosts) } : { maxInFlight: main },
    overlap: Math.max(1 + Math.floor(rand() * 2), 1 + holders([1, 2]))
  }
  return { seed, offsets, kills, silent, failing, soakFailing, downMs, partition, overlapAtMs, maxFailures, budget, db, pin, quarantine }
}
