// Transient failures are retried, not counted (finding 7): a release with the default `peers`
// source and no failure budget (`--max-failures 0`) whose publisher went offline before any
// host could fetch the generation. Every fetch fails (no connected member holds the path, and it
// is not in this machine's store yet), nothing is activated, so the hosts try again with backoff
// instead of halting the release; once the generation exists, the next try applies it and the
// release completes with one apply-start and one apply-ok per host.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { buildGeneration, ensureNix } from '../fixtures/nix/fixtures.js'
import { runNix } from '../../nixos/nix.js'
import { auditLog, releaseEntries, releaseStatus } from '../../simulations/harness/queries.js'
import type { EntryRow } from '../../node/routes.js'
import type { ReleaseBody } from '../../protocols/rollout/index.js'

const WAIT_MS = 180_000
const GENERATION_NIX = fileURLToPath(new URL('../fixtures/nix/generation.nix', import.meta.url))

/** The store path buildGeneration(version, 'good') will have, without building it. */
async function futurePath (version: string): Promise<string> {
  await ensureNix()
  const drv = (await runNix('nix-instantiate', [GENERATION_NIX, '--argstr', 'version', version, '--argstr', 'mode', 'good', '--argstr', 'nodeBin', process.execPath])).stdout.trim()
  return (await runNix('nix-store', ['--query', '--outputs', drv])).stdout.trim()
}

async function entries (host: FleetHost, kind: string, release: string): Promise<EntryRow[]> {
  return releaseEntries(host, release, [kind])
}

test('fetch failures with the publisher offline are retried and never halt a --max-failures 0 release', { timeout: 15 * 60_000 }, async () => {
  const fleet = await Fleet.create({
    hosts: [
      { name: 'a', role: 'admin' },
      { name: 'b', tags: ['web'] },
      { name: 'c', tags: ['web'] }
    ],
    soakMs: 300
  })
  const version = `retry-${Date.now()}`
  const status = releaseStatus
  try {
    const [path] = await Promise.all([futurePath(version), fleet.pairAll()])
    // --force: nobody holds the path yet (it is built later), which publish's own check refuses
    const r = await fleet.founder.json<ReleaseBody>(['release', 'publish', '--force', '--tag', 'web', '--path', path, '--waves', '1,100%', '--max-failures', '0', '--source', 'peers', '--apply-deadline', '20m'])
    assert.equal(r.applyDeadlineMs, 20 * 60_000, 'release publish --apply-deadline sets the release\'s apply deadline')
    const b = fleet.host('b')
    const c = fleet.host('c')
    const holds = async (h: FleetHost): Promise<boolean> => (await auditLog(h, { kind: 'release' })).some((e) => (e.body as { id?: string }).id === r.id)
    await fleet.waitFor('both hosts to hold the release', async () => await holds(b) && await holds(c), WAIT_MS)
    await fleet.stop('a')

    await fleet.waitFor('the canary to fail a fetch and retry', async () => [b, c].some((h) => h.process?.stderr.includes('transient apply failure') === true), WAIT_MS)
    const canary = [b, c].find((h) => h.process?.stderr.includes('transient apply failure') === true)!
    // It keeps trying: no failure is logged, the release does not halt.
    for (const h of [b, c]) {
      assert.deepEqual(await entries(h, 'apply-failed', r.id), [], `${h.name}: no apply-failed while retries remain`)
      assert.equal((await status(h, r.id)).state, 'rolling', `${h.name} sees ${r.id} still rolling`)
    }

    // The generation becomes available (as a substituter or a peer would make it): the next try takes it.
    assert.equal(await buildGeneration(version, 'good'), path)
    await fleet.start('a')
    await fleet.waitFor(`${r.id} to be done`, async () => (await status(fleet.founder, r.id)).state === 'done', WAIT_MS)
    for (const h of fleet.hosts) {
      await fleet.waitFor(`${h.name} to hold every outcome`, async () => (await entries(h, 'apply-ok', r.id)).length === 2, WAIT_MS)
      assert.deepEqual(await entries(h, 'apply-failed', r.id), [], `${h.name}: no failure was ever logged`)
      const starts = await entries(h, 'apply-start', r.id)
      const oks = await entries(h, 'apply-ok', r.id)
      for (const host of [b, c]) {
        const s = starts.filter((e) => e.feed === host.peerId)
        const o = oks.filter((e) => e.feed === host.peerId)
        assert.equal(s.length, 1, `${h.name}: ${host.name} started once`)
        assert.equal((o[0].body as { attempt?: string }).attempt, (s[0].body as { attempt?: string }).attempt, `${h.name}: ${host.name}'s retries are one attempt`)
      }
    }
    assert.match(canary.process?.stderr ?? '', /transient apply failure/)
    for (const h of [b, c]) assert.equal(await h.activeVersion(), version)
  } finally {
    await fleet.close()
  }
})
