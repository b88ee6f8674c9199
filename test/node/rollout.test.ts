// Fleet-wide rollouts with real daemon processes, real libp2p and real Nix: every host decides
// from the replicated log alone. Timing claims are checked from the audit log's own timestamps
// (all hosts share this machine's clock), never from the test's wall clock. Four hosts are the
// fewest that give two admins and three waves, the last of more than one host; the log and the
// release states are polled over the control API, the CLI is run where its own output counts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import { withOfflineStore } from '../../node/offline.js'
import { runCli } from '../../simulations/harness/processes.js'
import { ControlClient } from '../../node/client.js'
import { releaseEntries, releaseStatus } from '../../simulations/harness/queries.js'
import type { ReleaseBody, ReleaseStatus, Flag } from '../../protocols/rollout/index.js'

const GATE_SOAK_MS = 1000
const WAIT_MS = 120_000

interface Outcome { feed: string, ts: number, kind: string, release: string, path: string, wave?: number, healthyAt?: number, attempt?: string }

async function outcomes (host: FleetHost, release: string): Promise<Outcome[]> {
  return (await releaseEntries(host, release, ['apply-start', 'apply-ok', 'apply-failed', 'rollback', 'soaked']))
    .map((e) => ({ feed: e.feed, ts: e.ts, kind: e.kind, ...(e.body as { release: string, path: string, wave?: number, healthyAt?: number, attempt?: string }) }))
}

const status = releaseStatus

async function publish (host: FleetHost, args: string[]): Promise<ReleaseBody> {
  return host.json<ReleaseBody>(['release', 'publish', ...args])
}

/** `release status ID --watch` to its end: its exit code (README: 0 only on DONE, 6 HALTED, 7 ABORTED). */
async function watchCode (host: FleetHost, id: string): Promise<number> {
  const r = await runCli(['--data-dir', host.dataDir, 'release', 'status', id, '--watch'], { timeoutMs: 10 * 60_000 })
  return r.code
}

test('four hosts roll releases out in waves, decided by each host from the log', { timeout: 15 * 60_000 }, async (t) => {
  const fleet = await Fleet.create({
    hosts: [
      { name: 'a', role: 'admin', tags: ['web'] },
      { name: 'b', role: 'admin', tags: ['web'] },
      { name: 'c', tags: ['web'] },
      { name: 'd', tags: ['web'] }
    ],
    soakMs: 300
  })
  const waitState = async (id: string, state: string, on: FleetHost = fleet.founder): Promise<void> => {
    await fleet.waitFor(`release ${id} to be ${state}`, async () => (await status(on, id)).state === state, WAIT_MS)
  }
  const byPeer = (peer: string): FleetHost => fleet.hosts.find((h) => h.peerId === peer)!
  const stamp = Date.now()
  try {
    await fleet.pairAll()
    const [v1, bad, v2, v3, v4a, v4b, v5] = await Promise.all([
      buildGeneration(`r-v1-${stamp}`, 'good'),
      buildGeneration(`r-bad-${stamp}`, 'crash'),
      buildGeneration(`r-v2-${stamp}`, 'good'),
      buildGeneration(`r-v3-${stamp}`, 'good'),
      buildGeneration(`r-v4a-${stamp}`, 'good'),
      buildGeneration(`r-v4b-${stamp}`, 'good'),
      buildGeneration(`r-v5-${stamp}`, 'good')
    ])
    const plan = ['--tag', 'web', '--waves', '1,50%,100%', '--gate', `healthy=100%,soak=${GATE_SOAK_MS}ms`]

    await t.test('a good release progresses wave by wave, each wave only after the previous met its gate', async () => {
      const r = await publish(fleet.founder, [...plan, '--path', v1])
      assert.ok(r.basis !== undefined && Object.keys(r.basis).length > 0, 'the release carries the membership it is planned against')
      const watched = watchCode(fleet.founder, r.id)
      await waitState(r.id, 'done')
      assert.equal(await watched, 0, 'release status --watch exits 0 on DONE')
      const log = await outcomes(fleet.founder, r.id)
      const starts = log.filter((o) => o.kind === 'apply-start')
      const oks = log.filter((o) => o.kind === 'apply-ok')
      const soaked = log.filter((o) => o.kind === 'soaked')
      assert.equal(starts.length, 4)
      assert.equal(oks.length, 4)
      assert.deepEqual([0, 1, 2].map((w) => starts.filter((s) => s.wave === w).length), [1, 1, 2])
      for (const s of starts) {
        const attempt = s.attempt
        assert.ok(attempt !== undefined, 'every apply-start names its attempt')
        assert.deepEqual(oks.filter((o) => o.feed === s.feed).map((o) => o.attempt), [attempt], 'one apply-ok, for that attempt')
        assert.deepEqual(soaked.filter((o) => o.feed === s.feed).map((o) => o.attempt), [attempt], 'the host attested its own soak of that attempt')
      }
      // Each host measured its soak itself and attested it; the next wave starts only after the
      // previous wave's attestations (entry timestamps: all hosts share this machine's clock).
      for (const w of [1, 2]) {
        const firstStart = Math.min(...starts.filter((s) => s.wave === w).map((s) => s.ts))
        const prevHosts = new Set(starts.filter((s) => s.wave === w - 1).map((s) => s.feed))
        const gateMetAt = Math.max(...soaked.filter((o) => prevHosts.has(o.feed)).map((o) => o.ts))
        assert.ok(firstStart >= gateMetAt, `wave ${w} started at ${firstStart}, before wave ${w - 1} attested its soak at ${gateMetAt}`)
      }
      for (const o of oks) assert.ok(soaked.find((x) => x.feed === o.feed)!.ts - o.ts >= 0, 'soaked follows apply-ok')
      for (const h of fleet.hosts) assert.equal(await h.activeVersion(), `r-v1-${stamp}`)
    })

    await t.test('a bad canary rolls back, the release halts, and no other host ever applies it', async () => {
      const r = await publish(fleet.founder, [...plan, '--path', bad])
      await waitState(r.id, 'halted')
      // Give later waves every chance to (wrongly) start before looking.
      await new Promise((resolve) => setTimeout(resolve, 3000))
      for (const h of fleet.hosts) {
        const s = await status(h, r.id)
        assert.equal(s.state, 'halted', `${h.name} sees ${s.state}`)
      }
      const log = await outcomes(fleet.founder, r.id)
      const starters = new Set(log.filter((o) => o.kind === 'apply-start').map((o) => o.feed))
      assert.equal(starters.size, 1, 'only the canary applied the bad release')
      const canary = byPeer([...starters][0])
      assert.ok(log.some((o) => o.kind === 'rollback' && o.feed === canary.peerId))
      for (const h of fleet.hosts) assert.equal(await h.activeVersion(), `r-v1-${stamp}`, `${h.name} is back on / still on v1`)
    })

    await t.test('pause holds the next wave; resume lets it continue', async () => {
      // Paused over the control API (the CLI's `release pause` posts the same action as the
      // `release resume` run below) as soon as the canary has started: the pause has the rest of
      // its apply and its 10 s gate soak to reach every host, so what is tested is that a paused
      // release opens no wave, not how fast a CLI process starts on a loaded machine.
      const soakMs = 10_000
      const r = await publish(fleet.founder, [...plan.slice(0, -1), `healthy=100%,soak=${soakMs}ms`, '--path', v2])
      await fleet.waitFor('the canary to start', async () => (await outcomes(fleet.founder, r.id)).some((o) => o.kind === 'apply-start'), WAIT_MS)
      await (await ControlClient.forDataDir(fleet.founder.dataDir)).post(`/v1/releases/${encodeURIComponent(r.id)}/pause`)
      await fleet.waitFor('the canary to apply', async () => (await outcomes(fleet.founder, r.id)).some((o) => o.kind === 'apply-ok'), WAIT_MS)
      await fleet.waitFor('every host to see the pause', async () => {
        for (const h of fleet.hosts) if ((await status(h, r.id)).state !== 'paused') return false
        return true
      }, WAIT_MS)
      const canaryOk = (await outcomes(fleet.founder, r.id)).find((o) => o.kind === 'apply-ok')!
      // Wait until the soak is over by the log's own clock, and a little more.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, canaryOk.healthyAt! + soakMs + 3000 - Date.now())))
      const started = (await outcomes(fleet.founder, r.id)).filter((o) => o.kind === 'apply-start')
      assert.equal(started.length, 1, 'no new wave while paused')
      const resume = await fleet.founder.cli(['release', 'resume', r.id])
      assert.equal(resume.code, 0, resume.stderr)
      await waitState(r.id, 'done')
      for (const h of fleet.hosts) assert.equal(await h.activeVersion(), `r-v2-${stamp}`)
    })

    await t.test('rollback --release returns to the last release the fleet ran healthy, never to a halted one', async () => {
      // Releases so far: v1 done, bad halted, v2 done. The newest earlier release with another
      // path is the halted one; the rollback must skip it.
      const [good, halted] = (await fleet.founder.json<{ releases: ReleaseStatus[] }>(['release', 'list'])).releases
      assert.equal(halted.state, 'halted')
      assert.equal(good.state, 'done')
      const back = await fleet.founder.json<ReleaseBody>(['rollback', '--release', good.id])
      assert.deepEqual(back.targets.map((t) => t.path), [v1], 'back to v1, not to the halted release\'s path')
      await waitState(back.id, 'done')
      for (const h of fleet.hosts) assert.equal(await h.activeVersion(), `r-v1-${stamp}`)
    })

    await t.test('release status --watch keeps waiting through a soak and exits 7 on ABORTED', async () => {
      const r = await publish(fleet.founder, [...plan.slice(0, -1), 'healthy=100%,soak=10m', '--path', v5])
      const watched = watchCode(fleet.founder, r.id)
      await fleet.waitFor('the canary to soak', async () => (await outcomes(fleet.founder, r.id)).some((o) => o.kind === 'apply-ok'), WAIT_MS)
      const abort = await fleet.founder.cli(['release', 'abort', r.id])
      assert.equal(abort.code, 0, abort.stderr)
      assert.equal(await watched, 7)
    })

    await t.test('a host stopped during a rollout converges to the newest release, skipping the superseded one', async () => {
      const stopped = fleet.host('d')
      await fleet.stop('d')
      // Should the stopped host be this release's canary, the others declare it silent and go on.
      const r3 = await publish(fleet.founder, [...plan, '--wait-offline', '5s', '--path', v3])
      await fleet.waitFor('release 3 to start', async () => (await outcomes(fleet.founder, r3.id)).some((o) => o.kind === 'apply-ok'), WAIT_MS)
      const r4 = await publish(fleet.founder, [...plan, '--path', v4a])
      await fleet.start('d')
      await waitState(r4.id, 'done')
      const stoppedLog = (await outcomes(stopped, r3.id)).filter((o) => o.feed === stopped.peerId)
      assert.deepEqual(stoppedLog, [], 'd never applied the superseded release')
      assert.ok((await outcomes(stopped, r4.id)).some((o) => o.feed === stopped.peerId && o.kind === 'apply-ok'))
      for (const h of fleet.hosts) assert.equal(await h.activeVersion(), `r-v4a-${stamp}`)
    })

    await t.test('two admins publishing at once: every host settles on the same winner', async () => {
      const [ra, rb] = await Promise.all([
        publish(fleet.host('a'), [...plan, '--path', v4b]),
        publish(fleet.host('b'), [...plan, '--path', v1])
      ])
      const winnerVersion = await (async () => {
        await fleet.waitFor('one of the two to finish', async () => {
          const [sa, sb] = await Promise.all([status(fleet.founder, ra.id), status(fleet.founder, rb.id)])
          return [sa.state, sb.state].includes('done')
        }, WAIT_MS)
        return (await status(fleet.founder, ra.id)).state === 'done' ? `r-v4b-${stamp}` : `r-v1-${stamp}`
      })()
      const views = await Promise.all(fleet.hosts.map(async (h) => [(await status(h, ra.id)).state, (await status(h, rb.id)).state].join('/')))
      assert.equal(new Set(views).size, 1, `hosts disagree: ${views.join(' ')}`)
      for (const h of fleet.hosts) assert.equal(await h.activeVersion(), winnerVersion)
    })

    await t.test('a release signed by a non-admin host is ignored by every host and flagged', async () => {
      const c = fleet.host('c')
      await fleet.stop('c')
      const forged: ReleaseBody = {
        id: `forged-${stamp}`,
        number: 1000,
        targets: [{ tag: 'web', path: bad, sources: ['peers'] }],
        waves: [{ percent: 100, gate: { healthy: 0, soakMs: 0 } }],
        maxFailures: 100
      }
      // The CLI refuses a non-admin; a compromised host would write the entry itself.
      await withOfflineStore(c.dataDir, async ({ store }) => { await store.append('release', forged) })
      await fleet.start('c')
      await fleet.waitFor('every host to flag the forged release', async () => {
        for (const h of fleet.hosts) {
          const r = await h.get<{ flagged: Flag[] }>('/v1/releases')
          if (!r.flagged.some((f) => f.feed === c.peerId && f.kind === 'release')) return false
        }
        return true
      }, WAIT_MS)
      await new Promise((resolve) => setTimeout(resolve, 2000))
      assert.deepEqual((await outcomes(fleet.founder, forged.id)), [], 'no host applied it')
      const refused = await c.cli(['release', 'publish', '--tag', 'web', '--path', bad])
      assert.notEqual(refused.code, 0)
      assert.match(refused.stderr, /only admins/)
    })
  } finally {
    await fleet.close()
  }
})
