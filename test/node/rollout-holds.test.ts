// Pins and quarantine with real daemon processes, real libp2p and real Nix (issue 14 features 3
// and 4): a pinned host is skipped and the release completes without it; a path that failed
// after activation on the canary is refused by every host in a second release until cleared.
// Three hosts: an admin and a canary to roll out to, and the host pinned out. Waits poll the
// control API; the CLI's `pins` and `quarantine list` are read once each where they matter.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import { releaseEntries, releaseStatus } from '../../simulations/harness/queries.js'
import type { PinStatus, QuarantineStatus, ReleaseBody } from '../../protocols/rollout/index.js'

const WAIT_MS = 120_000

async function starts (host: FleetHost, release: string): Promise<string[]> {
  return (await releaseEntries(host, release, ['apply-start'])).map((e) => e.feed)
}

const pins = async (h: FleetHost): Promise<PinStatus[]> => (await h.get<{ pins: PinStatus[] }>('/v1/pins')).pins
const quarantined = async (h: FleetHost): Promise<QuarantineStatus[]> => (await h.get<{ quarantined: QuarantineStatus[] }>('/v1/quarantine')).quarantined

test('pins and quarantine on real hosts', { timeout: 15 * 60_000 }, async (t) => {
  const fleet = await Fleet.create({
    hosts: [
      { name: 'a', role: 'admin', tags: ['web'] },
      { name: 'b', tags: ['web'] },
      { name: 'c', tags: ['web'] }
    ],
    soakMs: 300
  })
  const status = releaseStatus
  const stamp = Date.now()
  try {
    await fleet.pairAll()
    const [v1, held, bad] = await Promise.all([
      buildGeneration(`h-v1-${stamp}`, 'good'),
      buildGeneration(`h-held-${stamp}`, 'good'),
      buildGeneration(`h-bad-${stamp}`, 'crash')
    ])
    const plan = ['--tag', 'web', '--waves', '1,100%', '--gate', 'healthy=100%,soak=300ms']

    await t.test('a pinned host is skipped, counted pinned, and the release completes; unpinned, it catches up', async () => {
      const c = fleet.host('c')
      const refused = await c.cli(['pin', fleet.host('b').peerId, '--path', held, '--reason', 'mine'])
      assert.notEqual(refused.code, 0, 'only admins pin')
      const pin = await fleet.founder.json<{ host: string }>(['pin', c.peerId, '--path', held, '--reason', 'db migration'])
      assert.equal(pin.host, c.peerId)
      await fleet.waitFor('every host to see the pin', async () => {
        for (const h of fleet.hosts) if ((await pins(h)).length !== 1) return false
        return true
      }, WAIT_MS)
      assert.deepEqual((await c.json<{ pins: PinStatus[] }>(['pins'])).pins.map((p) => p.host), [c.peerId], '`pins` lists the pin')
      const r = await fleet.founder.json<ReleaseBody>(['release', 'publish', ...plan, '--path', v1])
      await fleet.waitFor('the release to be done', async () => (await status(fleet.founder, r.id)).state === 'done', WAIT_MS)
      const s = await status(c, r.id)
      assert.deepEqual(s.pinnedHosts, [c.peerId], 'c sees itself pinned out of the release')
      assert.equal(s.failed, 0)
      assert.equal(s.waves.reduce((n, w) => n + w.pending, 0), 0, 'a pinned host is not pending')
      assert.ok(!(await starts(fleet.founder, r.id)).includes(c.peerId), 'c never started it')
      assert.notEqual(await c.activeVersion(), `h-v1-${stamp}`)
      for (const h of fleet.hosts.filter((x) => x !== c)) assert.equal(await h.activeVersion(), `h-v1-${stamp}`)
      const un = await fleet.founder.json<{ lifts: string[] }>(['unpin', c.peerId])
      assert.equal(un.lifts.length, 1)
      await fleet.waitFor('c to apply the release once unpinned', async () => await c.activeVersion() === `h-v1-${stamp}`, WAIT_MS)
    })

    await t.test('a path that failed after activation on the canary is refused by every host in a second release', async () => {
      const r1 = await fleet.founder.json<ReleaseBody>(['release', 'publish', ...plan, '--path', bad])
      await fleet.waitFor('the bad release to halt', async () => (await status(fleet.founder, r1.id)).state === 'halted', WAIT_MS)
      await fleet.waitFor('every host to see the path quarantined', async () => {
        for (const h of fleet.hosts) {
          const q = await quarantined(h)
          if (q.length !== 1 || q[0].path !== bad) return false
        }
        return true
      }, WAIT_MS)
      assert.deepEqual((await fleet.host('c').json<{ quarantined: QuarantineStatus[] }>(['quarantine', 'list'])).quarantined.map((q) => q.path), [bad], '`quarantine list` lists the path')
      const r2 = await fleet.founder.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--waves', '100%', '--max-failures', '4', '--path', bad])
      await fleet.waitFor('every host to show the second release held by the quarantine', async () => {
        for (const h of fleet.hosts) {
          const s = await status(h, r2.id)
          if (s.state !== 'halted' || !s.quarantinedPaths.includes(bad)) return false
        }
        return true
      }, WAIT_MS)
      // every host had its chance to (wrongly) start it
      await new Promise((resolve) => setTimeout(resolve, 3000))
      assert.deepEqual(await starts(fleet.founder, r2.id), [], 'no host applied the quarantined path')
      for (const h of fleet.hosts) assert.equal(await h.activeVersion(), `h-v1-${stamp}`)
      await fleet.founder.cli(['release', 'abort', r2.id])
      const cleared = await fleet.founder.json<{ clears: string[] }>(['quarantine', 'clear', bad])
      assert.equal(cleared.clears.length, 1)
      await fleet.waitFor('the quarantine to clear everywhere', async () => {
        for (const h of fleet.hosts) if ((await quarantined(h)).length !== 0) return false
        return true
      }, WAIT_MS)
    })
  } finally {
    await fleet.close()
  }
})
