// `--inject`: after the run settled, hostile writers break each rollout-safety rule once, so the
// run shows that safety.ts names every one from the trail the Monitor recorded. The admin's
// entries go through the daemon's functions as in admin.ts; the hostile ones are apply-start
// entries that a member signs into its own feed with its real store (valid, signed, but written
// against the rules): a host in flight beside another past a budget of 1, a host starting before
// the db host its wave waits for is healthy, a pinned host starting, and a host starting a path
// an admin quarantined.
import { setTimeout as sleep } from 'node:timers/promises'
import { pinHost, quarantinePath } from '../../node/deploy/releases.js'
import type { SimHost } from '../harness/sim-host.js'
import { PATH_PIN } from './admin.js'
import { HOLD_GRACE_MS } from './safety.js'

const HOLD_WAIT_MS = 30_000

/** The four violations, by live hosts: `live` must hold the founder and at least one other host. */
export async function injectViolations (founder: SimHost, live: SimHost[], release: string, path: string, otherPath: string, say: (line: string) => void): Promise<void> {
  const b = live.find((h) => h !== founder)
  if (b === undefined) throw new Error('--inject needs a live host besides the founder')
  const desk = founder.agent.desk()
  const start = async (h: SimHost, rel: string, p: string, attempt: string): Promise<void> => {
    await h.store.append('apply-start', { release: rel, path: p, wave: 0, attempt })
  }
  /** until `h` holds the founder's newest entry, then past the hold grace */
  const heldBy = async (h: SimHost): Promise<void> => {
    const seq = founder.store.heads().find((x) => x.feed === founder.peerId)?.seq ?? 0
    const end = Date.now() + HOLD_WAIT_MS
    while ((h.store.heads().find((x) => x.feed === founder.peerId)?.seq ?? -1) < seq && Date.now() < end) await sleep(100)
    await sleep(2 * HOLD_GRACE_MS)
  }
  // b carries db; the founder does not: a release of both, whose one wave waits for db, at most 1 in flight
  if (!b.view.tagsOf(b.peerId).includes('db')) await founder.membership.grant(b.peerId, { tags: ['web', 'db'] })
  const targets = [founder, b].map((h) => ({ host: h.peerId, path, sources: ['peers'] }))
  const r = await founder.agent.publish({ targets, waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 }, after: { tag: 'db' } }], maxFailures: 0, budget: { maxInFlight: 1 } })
  await start(founder, r.id, path, 'hostile-edge')
  await start(b, r.id, path, 'hostile-budget')
  say(`injected: ${r.id} started by h0 (untagged) and the db host at once, with a budget of 1`)
  await pinHost(desk, { host: b.peerId, path: PATH_PIN, reason: 'chaos --inject' })
  await heldBy(b)
  await start(b, release, path, 'hostile-pin')
  await quarantinePath(desk, { path: otherPath, reason: 'chaos --inject' })
  await heldBy(b)
  await start(b, release, otherPath, 'hostile-quarantine')
  say('injected: the pinned host started, and started a quarantined path')
}
