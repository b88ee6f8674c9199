// Whether a chaos run's releases settled. A release that is neither done, halted, aborted nor
// superseded is stuck, unless all it waits for is hosts killed for good in a wave with no
// waitOfflineMs: such a wave waits for its hosts for as long as they stay away (overdue.ts
// declares silent hosts only after a wave's waitOfflineMs), which is the release's own rule, not a
// decision that failed. That case is told apart strictly, from what an operator sees: the status a
// live host serves, with hosts it is not connected to shown offline (as node/deploy/routes.ts does).
import { decide, effectiveRelease, releaseStatus, type HostState, type ReleaseBody, type ReleaseStatus } from '../../protocols/rollout/index.js'
import type { SimHost } from '../harness/sim-host.js'

const SETTLED = new Set(['done', 'halted', 'aborted', 'superseded'])
/**
 * Where a host has nothing left to do that could help its wave's gate but an admin's word: healthy,
 * failed (not retried), or out of the gate for good. Not pinned: a pin may expire on a host's timer.
 */
const FINAL_HOST = new Set<HostState>(['healthy', 'failed', 'silent', 'moved-on', 'accepted', 'stale'])

/**
 * The hosts of `dead` that release status `s` waits on, when nothing else holds it: it rolls,
 * none of its hosts applies or soaks (so no apply deadline runs), and in its first unmet wave, which
 * has no waitOfflineMs (so no overdue entry will ever take them out of its gate), every host is
 * where it stays (FINAL_HOST) but some shown offline, all of them in `dead`, enough to meet the gate
 * were they healthy. Undefined otherwise: a live host could still move the release, or should have.
 */
export function waitsOnDead (s: ReleaseStatus, body: ReleaseBody, dead: ReadonlySet<string>): string[] | undefined {
  if (s.state !== 'rolling' || s.waves.some((w) => w.applying + w.soaking > 0)) return undefined
  const j = s.waves.findIndex((w) => !w.gateMet)
  if (j < 0 || body.waves[j]?.waitOfflineMs !== undefined) return undefined
  const w = s.waves[j]
  const offline = w.hostStates.filter((x) => x.state === 'offline').map((x) => x.host)
  if (offline.length === 0 || offline.some((h) => !dead.has(h))) return undefined
  if (w.hostStates.some((x) => x.state !== 'offline' && !FINAL_HOST.has(x.state))) return undefined
  return w.healthy + offline.length >= w.need ? offline : undefined
}

export interface Unsettled {
  /** releases some live host could still move, or should have: each with what the first host showing it unsettled shows */
  stuck: string[]
  /** releases that wait only on hosts killed for good (waitsOnDead), naming them */
  waiting: string[]
}

/** The releases of `releases` that live `hosts` do not show settled; `dead`: the peers killed for good. */
export function unsettledReleases (hosts: SimHost[], releases: string[], dead: ReadonlySet<string>, name: (peer: string) => string = (p) => p): Unsettled {
  const out: Unsettled = { stuck: [], waiting: [] }
  for (const id of releases) {
    for (const h of hosts) {
      const online = (p: string): boolean => p === h.peerId || h.libp2p.getPeers().some((x) => x.toString() === p)
      const s = releaseStatus(h.rollout, h.view, id, online)
      if (SETTLED.has(s?.state ?? 'unknown')) continue
      const body = effectiveRelease(h.rollout, h.view, id)?.body
      const on = s !== undefined && body !== undefined ? waitsOnDead(s, body, dead) : undefined
      const shows = `${s?.state ?? 'unknown'}${s?.reason !== undefined ? ` (${s.reason})` : ''}`
      if (s !== undefined && on !== undefined) {
        const waves = s.waves.map((w) => `[${w.hostStates.map((x) => `${name(x.host)} ${x.state}${x.superseded === true ? ' (superseded)' : ''}`).join(', ')}]`)
        out.waiting.push(`${id} waits for ${on.map(name).join(', ')}, killed for good, which ${name(h.peerId)}'s status shows offline: ${shows}; waves ${waves.join(' ')}`)
        break
      }
      // the dead hosts' decisions too: one may be the host the release waits for
      const decisions = [...hosts.map((x) => x.peerId), ...dead].map((p) => `${name(p)}${dead.has(p) ? ' (down for good)' : ''} ${JSON.stringify(decide(h.rollout, h.view, p, Date.now(), { trace: false }))}`)
      out.stuck.push(`${id} on ${name(h.peerId)}: ${shows}; waves ${JSON.stringify(s?.waves, (k, v: unknown) => k === 'host' && typeof v === 'string' ? name(v) : v)}; decisions on its log: ${decisions.join('; ')}`)
      break
    }
  }
  return out
}
