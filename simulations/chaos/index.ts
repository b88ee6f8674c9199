// `npm run sim -- chaos [--runs 20] [--hosts 10] [--seed N] [--quick] [--inject]`: many seeded runs of real
// hosts (in-process libp2p, the daemon's sync, membership and deploy agent, an executor that
// applies in zero time) rolling out a release while faults hit them (faults.ts): clock offsets
// up to ±5 min, kills at a phase of an apply with a restart over the same store, hosts that go
// silent for good, a partition that heals, failing applies and soaks, an overlapping release —
// and, as an admin writes them (admin.ts), per-release in-flight budgets, an ordering edge on a
// tag, a pin of one host and a path quarantined after it failed on activation.
// After every run the invariants (invariants.ts, and safety.ts for budgets, edges, pins and
// quarantine) are checked, and that its releases settled (settle.ts: one that waits only on hosts
// killed for good, in a wave with no waitOfflineMs, is counted apart from stuck ones); the seed of
// a failing run is printed so that `--seed N` replays it.
// `--inject` then has hostile writers break each safety rule once (inject.ts): every run must fail.
import { setTimeout as sleep } from 'node:timers/promises'
import { createSimMesh, type SimHost } from '../harness/sim-host.js'
import { ZeroTimeExecutor } from '../harness/zero-executor.js'
import type { Executor } from '../../node/deploy/index.js'
import { OVERDUE_FALLBACK_MS, type Wave } from '../../protocols/rollout/index.js'
import type { Result } from '../figures.js'
import { CrashExecutor } from './crash-executor.js'
import { drawFaults, faultCount, type FaultPlan } from './faults.js'
import { Monitor, checkHalts, checkOutcomes, divergedDecisions, type Violation } from './invariants.js'
import { unsettledReleases } from './settle.js'
import { PATH_BOOT, PATH_Q, scheduleHolds, tagDb, withSafety, type AdminRun } from './admin.js'
import { checkSafety, safetyContext } from './safety.js'
import { injectViolations } from './inject.js'

const PATH_1 = '/nix/store/0c8ayrdb1p1vcjrxh2kxi6wxjwl0q8r6-fleetmesh-chaos-one'
const PATH_2 = '/nix/store/1d9bzsfc2q2wdkskj3lyj7xkxm1r9s7a-fleetmesh-chaos-two'
const APPLY_DEADLINE_MS = 5000
const WAIT_OFFLINE_MS = 2000
/**
 * How long a run may take to settle after its faults before its releases count as stuck: an
 * overdue entry is written at the latest three fallbacks after its timeout, when the hosts first
 * in line to write it are the silent ones.
 */
const SETTLE_MS = 4 * OVERDUE_FALLBACK_MS + 30_000
/** simulated hosts do not look for peers themselves: after faults every live host dials the others this often */
const RELINK_MS = 5000

/** `waiting`: releases that wait only on hosts killed for good (settle.ts); `stuck`: the others not settled */
interface RunResult { seed: number, faults: number, violations: Violation[], stuck: string[], waiting: string[], diverged: Violation[] }

function flag (args: string[], name: string): number | undefined {
  const i = args.indexOf(name)
  if (i < 0) return undefined
  const v = Number(args[i + 1])
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`)
  return v
}

function headsOf (h: SimHost): string {
  return h.store.heads().map((x) => `${x.feed}:${x.seq}`).sort().join(',')
}

/** One seeded run; `inject`: hostile entries break each safety rule after it settled (inject.ts). */
export async function runOnce (seed: number, n: number, inject = false): Promise<RunResult> {
  const say = (line: string): void => { process.stderr.write(`chaos ${seed}: ${line}\n`) }
  const plan: FaultPlan = drawFaults(seed, n)
  let split = false
  const sideA = new Set<string>()
  const names = new Map<string, string>()
  const name = (peer: string): string => names.get(peer) ?? peer
  // each host's "disk": its executor and journal outlive every incarnation of its agent
  const disks: Executor[] = Array.from({ length: n }, (_, i) => new ZeroTimeExecutor(() => plan.failing.has(i)))
  for (const i of plan.quarantine.failing) {
    await disks[i].run({ applyId: 'boot', release: 'boot', path: PATH_BOOT, revert: false }, [])
    await disks[i].reported('boot')
  }
  const down = new Set<number>()
  let restarting = 0
  const restarts: Array<Promise<void>> = []
  let mesh: Awaited<ReturnType<typeof createSimMesh>> | undefined
  let monitor: Monitor | undefined

  /** the first incarnation of a host carries its planned kill; the ones after a restart run to the end */
  const incarnation = (i: number, first: boolean): CrashExecutor =>
    new CrashExecutor(disks[i], first ? plan.kills.get(i) : undefined, () => { restarts.push(crash(i, !plan.silent.has(i))) }, (path) => plan.soakFailing.has(i) || (path === PATH_Q && plan.quarantine.failing.includes(i)))

  /** kill -9 of host i; it comes back over the same store unless it is to stay silent */
  async function crash (i: number, restart: boolean): Promise<void> {
    const h = (mesh as { hosts: SimHost[] }).hosts[i]
    if (down.has(i)) return
    down.add(i)
    if (restart) restarting++
    say(`h${i} killed${restart ? '' : ' for good'}`)
    await h.stop(true)
    ;(h.opts.executor as CrashExecutor).bury()
    say(`h${i} is down`)
    if (!restart) return
    await sleep(plan.downMs)
    h.opts.executor = incarnation(i, false)
    await h.start()
    say(`h${i} started`)
    await (monitor as Monitor).attach(h)
    down.delete(i)
    restarting--
    say(`h${i} restarted`)
    for (const o of mesh!.hosts.filter((x, j) => x !== h && !down.has(j)).slice(0, 3)) await h.dial(o.address())
  }

  mesh = await createSimMesh(n, {
    blocked: (self) => split ? new Set(mesh!.hosts.map((h) => h.peerId).filter((p) => sideA.has(p) !== sideA.has(self))) : new Set(),
    host: (i) => ({ now: () => Date.now() + plan.offsets[i], executor: incarnation(i, true) })
  })
  try {
    mesh.hosts.forEach((h, i) => { names.set(h.peerId, `h${i}`) })
    monitor = new Monitor('sim-mesh', mesh.founder.peerId, name)
    for (const h of mesh.hosts) await monitor.attach(h)
    mesh.hosts.forEach((h, i) => { if (i % 2 === 1) sideA.add(h.peerId) })
    const waves: Wave[] = [
      { count: 1, gate: { healthy: 100, soakMs: 1000 }, waitOfflineMs: WAIT_OFFLINE_MS },
      { percent: 50, gate: { healthy: 100, soakMs: 500 }, waitOfflineMs: WAIT_OFFLINE_MS },
      { percent: 100, gate: { healthy: 100, soakMs: 0 }, waitOfflineMs: WAIT_OFFLINE_MS }
    ]
    say(`mesh of ${n} up; faults ${JSON.stringify({ ...plan, kills: [...plan.kills], silent: [...plan.silent], failing: [...plan.failing], soakFailing: [...plan.soakFailing] })}`)
    const releases: string[] = []
    const admin: AdminRun = { founder: mesh.founder, hosts: mesh.hosts, plan, applyDeadlineMs: APPLY_DEADLINE_MS, waitOfflineMs: WAIT_OFFLINE_MS, say, releases }
    await tagDb(admin)
    releases.push((await mesh.founder.agent.publish({ targets: [{ tag: 'web', path: PATH_1, sources: ['peers'] }], ...withSafety(admin, waves), maxFailures: plan.maxFailures, applyDeadlineMs: APPLY_DEADLINE_MS })).id)
    const timers: Array<Promise<void>> = scheduleHolds(admin)
    const at = async (ms: number, f: () => Promise<void>): Promise<void> => { await sleep(ms); await f() }
    for (const [i, ms] of plan.silent) timers.push(at(ms, async () => { await crash(i, false) }))
    if (plan.partition !== undefined) {
      const { atMs, forMs } = plan.partition
      timers.push(at(atMs, async () => {
        split = true
        await Promise.all(mesh!.hosts.filter((_, j) => !down.has(j)).map(async (h) => { await h.cut() }))
        await sleep(forMs)
        split = false
        const live = mesh!.hosts.filter((_, j) => !down.has(j))
        for (const [k, h] of live.entries()) await h.dial(live[(k + 1) % live.length].address())
      }))
    }
    if (plan.overlapAtMs !== undefined) {
      // no waitOfflineMs: a host of it killed for good before it wrote holds it for good (settle.ts counts that apart)
      timers.push(at(plan.overlapAtMs, async () => {
        const picked = mesh!.hosts.slice(1, 3).map((h) => ({ host: h.peerId, path: PATH_2, sources: ['peers'] }))
        releases.push((await mesh!.founder.agent.publish({ targets: picked, waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0, applyDeadlineMs: APPLY_DEADLINE_MS, budget: { maxInFlight: plan.budget.overlap } })).id)
      }))
    }
    await Promise.all(timers)
    say('every fault injected; settling')
    const live = (): SimHost[] => mesh!.hosts.filter((_, j) => !down.has(j))
    const dead = new Set([...plan.silent.keys()].map((i) => mesh!.hosts[i].peerId))
    const converged = (): boolean => new Set(live().map(headsOf)).size === 1
    const end = Date.now() + SETTLE_MS
    let linked = 0
    while (!(restarting === 0 && converged() && unsettledReleases(live(), releases, dead).stuck.length === 0) && Date.now() < end) {
      if (Date.now() - linked > RELINK_MS) {
        // a kill can still strike during these dials: a host that went down meanwhile is skipped
        for (const h of live()) for (const o of live()) if (o !== h && live().includes(h) && live().includes(o)) await h.dial(o.address())
        linked = Date.now()
      }
      await sleep(250)
    }
    await Promise.allSettled(restarts)
    if (inject) await injectViolations(mesh.founder, live(), releases[0], PATH_1, PATH_2, say)
    const hosts = live()
    const log = monitor.entriesOf(mesh.founder.peerId)
    const violations = [
      ...monitor.violations,
      ...checkOutcomes(log, name),
      ...checkHalts(hosts, (h) => monitor!.entriesOf(h.peerId), releases, 'sim-mesh', mesh.founder.peerId, name),
      ...checkSafety(safetyContext(monitor.trail(), 'sim-mesh', mesh.founder.peerId, name))
    ]
    if (!converged()) violations.push({ invariant: 'converge', detail: `live hosts hold ${new Set(hosts.map(headsOf)).size} different logs ${SETTLE_MS} ms after the faults: ${hosts.map((h) => `${name(h.peerId)} ${monitor!.entriesOf(h.peerId).length} entries`).join(', ')}` })
    return { seed, faults: faultCount(plan), violations, ...unsettledReleases(hosts, releases, dead, name), diverged: divergedDecisions(hosts, headsOf, name) }
  } finally {
    await mesh.close()
  }
}

export async function run (args: string[]): Promise<Result> {
  const quick = args.includes('--quick')
  const inject = args.includes('--inject')
  const seed = flag(args, '--seed')
  const n = flag(args, '--hosts') ?? (quick ? 5 : 10)
  if (n < 4) throw new Error('--hosts must be at least 4')
  const runs = seed !== undefined ? 1 : flag(args, '--runs') ?? (quick ? 2 : 20)
  const first = seed ?? 1
  const started = Date.now()
  let faults = 0
  let violations = 0
  let stuck = 0
  let waiting = 0
  let diverged = 0
  const failed: number[] = []
  const waited: number[] = []
  for (let r = 0; r < runs; r++) {
    const t0 = Date.now()
    const res = await runOnce(first + r, n, inject)
    faults += res.faults
    violations += res.violations.length
    stuck += res.stuck.length
    waiting += res.waiting.length
    diverged += res.diverged.length
    const bad = res.violations.length + res.stuck.length + res.diverged.length > 0
    if (bad) failed.push(res.seed)
    if (res.waiting.length > 0) waited.push(res.seed)
    process.stderr.write(`chaos: run ${r + 1}/${runs} seed ${res.seed}: ${res.faults} faults, ${res.violations.length} violations, ${res.stuck.length} stuck, ${res.waiting.length} waiting on dead hosts, ${res.diverged.length} diverged in ${Date.now() - t0} ms${bad ? ` — replay with --seed ${res.seed}` : ''}\n`)
    for (const v of [...res.violations, ...res.diverged]) process.stderr.write(`  ${v.invariant}: ${v.detail}\n`)
    for (const id of res.stuck) process.stderr.write(`  stuck: ${id}\n`)
    for (const w of res.waiting) process.stderr.write(`  waiting: ${w}\n`)
  }
  return {
    sim: 'chaos',
    runs,
    faults,
    invariant_violations: violations,
    stuck_releases: stuck,
    waiting_on_dead_hosts: waiting,
    diverged_decisions: diverged,
    hosts: n,
    failed_seeds: failed.length > 0 ? failed.join(',') : 'none',
    waiting_seeds: waited.length > 0 ? waited.join(',') : 'none',
    wall_ms: Date.now() - started
  }
}
