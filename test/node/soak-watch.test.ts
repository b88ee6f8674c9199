// The gate soak across real processes: a canary whose service dies after its apply-ok, in the
// middle of its wave's gate soak, fails that apply: it rolls back to the generation it ran
// before, writes apply-failed and rollback for the same attempt, the failure counts against the
// budget and the release halts on every host. `release status --watch` keeps waiting through
// the soak and ends with the halted code. Nothing here races a clock: the service is broken only
// once the canary's apply-ok is in the log, and the gate soak is far longer than the test may
// run, so the soak cannot end (and open wave 1) by itself while the test looks.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { runCli, type CliResult } from '../../simulations/harness/processes.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import { releaseEntries, releaseStatus } from '../../simulations/harness/queries.js'
import type { EntryRow } from '../../node/routes.js'
import type { ReleaseBody } from '../../protocols/rollout/index.js'

const TEST_MS = 10 * 60_000
const GATE_SOAK_MS = 3 * TEST_MS
const WAIT_MS = 120_000
/** `release status --watch` ends with this on a halted release (README, `release status --help`) */
const WATCH_HALTED = 6

/** The host's entries of one kind for one release (over the control API, as `audit log --json`). */
async function entries (host: FleetHost, kind: string, release: string): Promise<EntryRow[]> {
  return releaseEntries(host, release, [kind])
}

const attemptOf = (e: EntryRow): string | undefined => (e.body as { attempt?: string }).attempt

test('a canary whose service fails during its gate soak rolls back, fails the apply and halts the release', { timeout: TEST_MS }, async () => {
  const fleet = await Fleet.create({
    hosts: [
      { name: 'a', role: 'admin', tags: ['web'] },
      { name: 'b', tags: ['web'] },
      { name: 'c', tags: ['web'] }
    ],
    soakMs: 300
  })
  const stamp = Date.now()
  const status = releaseStatus
  try {
    const [base, path] = await Promise.all([buildGeneration(`soak-base-${stamp}`, 'good'), buildGeneration(`soak-watch-${stamp}`, 'good'), fleet.pairAll()])
    // A generation every host ran healthy before, for the canary to go back to.
    const r0 = await fleet.founder.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--path', base, '--waves', '100%'])
    await fleet.waitFor(`${r0.id} to be done`, async () => (await status(fleet.founder, r0.id)).state === 'done', WAIT_MS)

    const r = await fleet.founder.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--path', path, '--waves', '1,100%', '--gate', `healthy=100%,soak=${GATE_SOAK_MS}ms`])
    let watched: CliResult | undefined
    const watch = runCli(['--data-dir', fleet.founder.dataDir, 'release', 'status', r.id, '--watch'], { timeoutMs: TEST_MS }).then((res) => { watched = res; return res })

    await fleet.waitFor(`the canary's apply-ok for ${r.id} in ${fleet.founder.name}'s log`, async () => (await entries(fleet.founder, 'apply-ok', r.id)).length > 0, WAIT_MS)
    const [ok] = await entries(fleet.founder, 'apply-ok', r.id)
    const canary = fleet.hosts.find((h) => h.peerId === ok.feed)!
    const rest = fleet.hosts.filter((h) => h !== canary)
    const attempt = attemptOf(ok)
    assert.ok(attempt !== undefined, 'apply-ok names its attempt')

    // The soak is on: the canary is healthy, wave 1 waits for its `soaked`, and the watch waits too.
    await fleet.waitFor(`${canary.name} to be soaking`, async () => (await status(fleet.founder, r.id)).state === 'rolling', WAIT_MS)
    assert.equal(watched, undefined, 'release status --watch still waits in the middle of the soak')

    const pid = Number((await readFile(join(canary.serviceDir, 'service.pid'), 'utf8')).trim())
    process.kill(pid, 'SIGKILL')

    for (const h of fleet.hosts) {
      await fleet.waitFor(`${h.name} to see ${r.id} halted`, async () => (await status(h, r.id)).state === 'halted', WAIT_MS)
    }
    const failed = (await entries(fleet.founder, 'apply-failed', r.id)).filter((e) => e.feed === canary.peerId)
    const rollbacks = (await entries(fleet.founder, 'rollback', r.id)).filter((e) => e.feed === canary.peerId)
    assert.deepEqual(failed.map(attemptOf), [attempt], 'one apply-failed, for the attempt that soaked')
    assert.ok(failed[0].seq > ok.seq, 'the failure was written after apply-ok, by the soak')
    assert.deepEqual(rollbacks.map(attemptOf), [attempt], 'one rollback, for the same attempt')
    assert.deepEqual((await entries(fleet.founder, 'soaked', r.id)), [], 'nothing soaked')
    await fleet.waitFor(`${canary.name} to run the base generation again`, async () => await canary.activeVersion() === `soak-base-${stamp}`, WAIT_MS)

    for (const h of fleet.hosts) {
      const starts = await entries(h, 'apply-start', r.id)
      assert.deepEqual(starts.map((e) => [e.feed, (e.body as { wave: number }).wave]), [[canary.peerId, 0]], `${h.name}: only the canary started ${r.id}`)
      const s = await status(h, r.id)
      assert.equal(s.failed, 1, `${h.name}: the failure counts against the budget`)
    }
    for (const h of rest) assert.equal(await h.activeVersion(), `soak-base-${stamp}`, `${h.name} never left the base generation`)
    const w = await watch
    assert.equal(w.code, WATCH_HALTED, `release status --watch exits ${WATCH_HALTED} on HALTED: ${w.stderr}`)
  } finally {
    await fleet.close()
  }
})
