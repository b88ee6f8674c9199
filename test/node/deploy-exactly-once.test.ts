// Exactly one outcome per attempt, across kill -9 of real daemons at the agent's crash windows:
// after its apply-start is in the log but before the engine journalled anything; after the
// engine's terminal journal write but before the outcome entry; after the outcome entry but
// before the journal heard it was reported. Each host is killed in its window by a preload
// (test/deploy/kill-at.ts) around the store's own append, restarted, and then every host of the
// fleet must hold exactly one apply-start and one outcome for it, naming the same attempt.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import type { EntryRow } from '../../node/routes.js'
import type { ReleaseBody, ReleaseStatus } from '../../protocols/rollout/index.js'
import type { KillPoint, KillSpec } from '../deploy/kill-at.js'

const WAIT_MS = 180_000
const KILL_AT = fileURLToPath(new URL('../deploy/kill-at.ts', import.meta.url))

async function outcomes (host: FleetHost, release: string): Promise<EntryRow[]> {
  const rows: EntryRow[] = []
  for (const kind of ['apply-start', 'apply-ok', 'apply-failed', 'rollback']) {
    const r = await host.cli(['audit', 'log', '--kind', kind, '--json'])
    assert.equal(r.code, 0, `${host.name}: audit log --kind ${kind}: ${r.stderr}`)
    rows.push(...r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EntryRow)
      .filter((e) => (e.body as { release?: string }).release === release))
  }
  return rows
}

test('a host killed in any of the agent\'s crash windows reports its attempt exactly once', { timeout: 20 * 60_000 }, async () => {
  const windows: Record<string, KillPoint> = { b: 'after-apply-start', c: 'before-outcome', d: 'after-outcome' }
  const names = ['a', 'b', 'c', 'd']
  const fleet = await Fleet.create({
    hosts: [
      { name: 'a', role: 'admin' },
      { name: 'b', tags: ['web'] },
      { name: 'c', tags: ['web'] },
      { name: 'd', tags: ['web'] }
    ],
    soakMs: 300,
    // Every daemon loads the preload; it kills only the victims' `start` processes, each once.
    env: { NODE_OPTIONS: `--import tsx --import ${KILL_AT}` }
  })
  // The data dirs are known only now, before any host starts; the daemons inherit this.
  const specs = Object.entries(windows).map(([name, at]): KillSpec => ({ dataDir: fleet.host(name).dataDir, at }))
  process.env.FLEETMESH_TEST_KILL = JSON.stringify(specs)
  const version = `exactly-once-${Date.now()}`
  try {
    const [path] = await Promise.all([buildGeneration(version, 'good'), fleet.pairAll()])
    const r = await fleet.founder.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--path', path, '--waves', '100%', '--gate', 'healthy=100%,soak=0s'])

    for (const name of Object.keys(windows)) {
      const h = fleet.host(name)
      await fleet.waitFor(`${name} to be killed ${windows[name]}`, async () => h.process?.child.signalCode === 'SIGKILL', WAIT_MS)
      await fleet.stop(name)
      await fleet.start(name)
    }
    await fleet.waitFor(`${r.id} to be done`, async () => (await fleet.founder.json<ReleaseStatus>(['release', 'status', r.id])).state === 'done', WAIT_MS)

    for (const viewer of names.map((n) => fleet.host(n))) {
      await fleet.waitFor(`${viewer.name} to hold every victim's outcome`, async () => {
        const log = await outcomes(viewer, r.id)
        return Object.keys(windows).every((n) => log.some((e) => e.feed === fleet.host(n).peerId && e.kind === 'apply-ok'))
      }, WAIT_MS)
      const log = await outcomes(viewer, r.id)
      for (const name of Object.keys(windows)) {
        const mine = log.filter((e) => e.feed === fleet.host(name).peerId)
        const starts = mine.filter((e) => e.kind === 'apply-start')
        const oks = mine.filter((e) => e.kind === 'apply-ok')
        assert.equal(starts.length, 1, `${viewer.name} sees ${name} (${windows[name]}) start once`)
        assert.equal(oks.length, 1, `${viewer.name} sees exactly one apply-ok of ${name} (${windows[name]})`)
        assert.deepEqual(mine.filter((e) => e.kind === 'apply-failed' || e.kind === 'rollback'), [], `${viewer.name}: ${name} reported no failure`)
        const attempt = (starts[0].body as { attempt?: string }).attempt
        assert.ok(attempt !== undefined, `${name}'s apply-start names its attempt`)
        assert.equal((oks[0].body as { attempt?: string }).attempt, attempt, `${name}'s outcome names the attempt it started`)
      }
    }
    for (const name of Object.keys(windows)) assert.equal(await fleet.host(name).activeVersion(), version, `${name} runs the release`)
  } finally {
    delete process.env.FLEETMESH_TEST_KILL
    await fleet.close()
  }
})
