// The admin's part of a chaos run (issue 14's features), signed the way the daemon signs it: tags
// through Membership.grant (`fleetmesh grant`), releases through the agent's publish
// (node/deploy/releases.ts publishRelease, behind `fleetmesh release publish`), and pins, unpins and
// the quarantine clear through releases.ts's pinHost, unpinHost and clearQuarantine on the agent's
// desk — the functions the /v1/pins and /v1/quarantine routes call, with the same schema checks.
import { setTimeout as sleep } from 'node:timers/promises'
import { clearQuarantine, pinHost, unpinHost } from '../../node/deploy/releases.js'
import { holdsStatus, type Wave } from '../../protocols/rollout/index.js'
import type { SimHost } from '../harness/sim-host.js'
import type { FaultPlan } from './faults.js'

/** the path whose activation fails on the quarantine's hosts */
export const PATH_Q = '/nix/store/2f9bzsfc2q2wdkskj3lyj7xkxm1r9s7b-fleetmesh-chaos-bad'
/** the generation a pin holds its host on (no release names it: the pin holds the host off every release) */
export const PATH_PIN = '/nix/store/3a9bzsfc2q2wdkskj3lyj7xkxm1r9s7c-fleetmesh-chaos-pin'
/** what the quarantine's hosts run before the chaos starts, so that their failed activation rolls back to it */
export const PATH_BOOT = '/nix/store/4b9bzsfc2q2wdkskj3lyj7xkxm1r9s7d-fleetmesh-chaos-boot'
/**
 * How long the admin waits for the founder to hold the quarantine before it gives up clearing it
 * (the second release then runs the path unquarantined): it forms within seconds of its hosts
 * holding the release, but a fault can keep them from it.
 */
const CLEAR_WAIT_MS = 20_000

export interface AdminRun {
  founder: SimHost
  hosts: SimHost[]
  plan: FaultPlan
  applyDeadlineMs: number
  waitOfflineMs: number
  say: (line: string) => void
  /** ids of the releases published, for the settle and halt checks */
  releases: string[]
}

/** The db tag on the plan's db hosts, before release 1 is published (its basis then holds it). */
export async function tagDb (a: AdminRun): Promise<void> {
  for (const i of a.plan.db) await a.founder.membership.grant(a.hosts[i].peerId, { tags: ['web', 'db'] })
}

/** Release 1's waves with its last one waiting for the db hosts, and its budget. */
export function withSafety (a: AdminRun, waves: Wave[]): { waves: Wave[], budget: FaultPlan['budget']['main'] } {
  return { waves: waves.map((w, k) => k === waves.length - 1 ? { ...w, after: { tag: 'db' } } : w), budget: a.plan.budget.main }
}

/** The pin and the quarantine releases, each at its time after publishing; resolves when all are done. */
export function scheduleHolds (a: AdminRun): Array<Promise<void>> {
  const at = async (ms: number, f: () => Promise<void>): Promise<void> => { await sleep(ms); await f() }
  const desk = (): ReturnType<SimHost['agent']['desk']> => a.founder.agent.desk()
  const { pin, quarantine: q } = a.plan
  const pinned = a.hosts[pin.host].peerId
  const out = [at(pin.atMs, async () => {
    const expiresMs = pin.lift !== undefined && 'expiresMs' in pin.lift ? pin.lift.expiresMs : undefined
    await pinHost(desk(), { host: pinned, path: PATH_PIN, reason: 'chaos: held mid-run', ...(expiresMs !== undefined ? { expiresMs } : {}) })
    a.say(`h${pin.host} pinned${expiresMs !== undefined ? ` for ${expiresMs} ms` : ''}`)
  })]
  if (pin.lift !== undefined && 'unpinAtMs' in pin.lift) {
    out.push(at(pin.lift.unpinAtMs, async () => {
      await unpinHost(desk(), pinned)
      a.say(`h${pin.host} unpinned`)
    }))
  }
  const wave = (soakMs: number): Wave[] => [{ percent: 100, gate: { healthy: 100, soakMs }, waitOfflineMs: a.waitOfflineMs }]
  const targets = (hosts: number[]): Array<{ host: string, path: string, sources: string[] }> => hosts.map((i) => ({ host: a.hosts[i].peerId, path: PATH_Q, sources: ['peers'] }))
  out.push(at(q.secondAtMs, async () => {
    a.releases.push((await a.founder.agent.publish({ targets: targets(q.others), waves: wave(0), maxFailures: 0, applyDeadlineMs: a.applyDeadlineMs, budget: { maxInFlight: 1 } })).id)
  }))
  // a fleet of 4 may have no host left to fail it: the second release then runs the path unquarantined
  if (q.failing.length === 0) return out
  out.push(at(q.atMs, async () => {
    const k = q.failing.length
    a.releases.push((await a.founder.agent.publish({ targets: targets(q.failing), waves: wave(300), maxFailures: k, quarantineAfter: k, applyDeadlineMs: a.applyDeadlineMs, budget: { maxInFlight: k } })).id)
  }))
  out.push(at(q.clearAtMs, async () => {
    const end = Date.now() + CLEAR_WAIT_MS
    const held = (): boolean => holdsStatus(a.founder.agent.state, a.founder.agent.view).quarantined.some((x) => x.path === PATH_Q)
    while (!held() && Date.now() < end) await sleep(250)
    if (!held()) { a.say(`${PATH_Q} never quarantined: nothing to clear`); return }
    const r = await clearQuarantine(desk(), PATH_Q)
    a.say(`quarantine cleared (${r.clears.length} entries named)`)
  }))
  return out
}
