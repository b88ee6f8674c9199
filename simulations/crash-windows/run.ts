// Real daemons killed with SIGKILL in the deploy agent's crash windows (test/deploy/kill-at.ts,
// a preload around the store's own append): after the apply-start is in the log but before the
// engine journalled anything; after the engine's terminal journal write but before the outcome
// entry; after the outcome entry but before the journal heard it was reported. One victim host
// per window, restarted after its kill; then every host of the fleet must hold exactly one
// apply-start and one apply-ok per victim, naming the same attempt, and no failure.
// test/node/deploy-exactly-once.test.ts runs a seeded window; `npm run sim -- crash-windows` all.
import { fileURLToPath } from 'node:url'
import { Fleet, type HostSpec } from '../harness/fleet.js'
import { releaseEntries, releaseStatus } from '../harness/queries.js'
import { buildGeneration } from '../../test/fixtures/nix/fixtures.js'
import type { KillPoint, KillSpec } from '../../test/deploy/kill-at.js'
import type { ReleaseBody } from '../../protocols/rollout/index.js'

export const WINDOWS: readonly KillPoint[] = ['after-apply-start', 'before-outcome', 'after-outcome']

const WAIT_MS = 180_000
const KILL_AT = fileURLToPath(new URL('../../test/deploy/kill-at.ts', import.meta.url))
const OUTCOME_KINDS = ['apply-start', 'apply-ok', 'apply-failed', 'rollback']

export interface CrashWindowsResult {
  hosts: number
  /** (viewer, victim) pairs whose entries were checked */
  checked: number
  /** every way the exactly-once rule was broken, one sentence each */
  problems: string[]
}

/** Runs one release over a fleet of an admin and one victim per window; throws only if the run cannot finish. */
export async function crashWindows (windows: readonly KillPoint[], say: (line: string) => void = () => {}): Promise<CrashWindowsResult> {
  const victims = windows.map((at, i) => ({ name: `v${i}`, at }))
  const fleet = await Fleet.create({
    hosts: [{ name: 'a', role: 'admin' }, ...victims.map(({ name }): HostSpec => ({ name, tags: ['web'] }))],
    soakMs: 300,
    // Every daemon loads the preload; it kills only the victims' `start` processes, each once.
    env: { NODE_OPTIONS: `--import tsx --import ${KILL_AT}` }
  })
  // The data dirs are known only now, before any host starts; the daemons inherit this.
  const specs = victims.map(({ name, at }): KillSpec => ({ dataDir: fleet.host(name).dataDir, at }))
  const before = process.env.FLEETMESH_TEST_KILL
  process.env.FLEETMESH_TEST_KILL = JSON.stringify(specs)
  const version = `exactly-once-${Date.now()}`
  const problems: string[] = []
  let checked = 0
  try {
    // The victims start together: each waits for its own kill, independently of the others.
    const [path] = await Promise.all([buildGeneration(version, 'good'), fleet.pairAll()])
    const r = await fleet.founder.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--path', path, '--waves', '100%', '--gate', 'healthy=100%,soak=0s'])
    await Promise.all(victims.map(async ({ name, at }) => {
      const h = fleet.host(name)
      await fleet.waitFor(`${name} to be killed ${at}`, async () => h.process?.child.signalCode === 'SIGKILL', WAIT_MS)
      say(`${name} killed ${at}; restarting it`)
      await fleet.stop(name)
      await fleet.start(name)
    }))
    await fleet.waitFor(`${r.id} to be done`, async () => (await releaseStatus(fleet.founder, r.id)).state === 'done', WAIT_MS)

    for (const viewer of fleet.hosts) {
      await fleet.waitFor(`${viewer.name} to hold every victim's outcome`, async () => {
        const log = await releaseEntries(viewer, r.id, OUTCOME_KINDS)
        return victims.every(({ name }) => log.some((e) => e.feed === fleet.host(name).peerId && e.kind === 'apply-ok'))
      }, WAIT_MS)
      const log = await releaseEntries(viewer, r.id, OUTCOME_KINDS)
      for (const { name, at } of victims) {
        checked++
        const who = `${viewer.name} sees ${name} (killed ${at})`
        const mine = log.filter((e) => e.feed === fleet.host(name).peerId)
        const starts = mine.filter((e) => e.kind === 'apply-start')
        const oks = mine.filter((e) => e.kind === 'apply-ok')
        if (starts.length !== 1) problems.push(`${who} start ${starts.length} times`)
        if (oks.length !== 1) problems.push(`${who} write ${oks.length} apply-ok`)
        const failures = mine.filter((e) => e.kind === 'apply-failed' || e.kind === 'rollback').map((e) => e.kind)
        if (failures.length > 0) problems.push(`${who} report ${failures.join(', ')}`)
        const attempt = (starts[0]?.body as { attempt?: string } | undefined)?.attempt
        if (attempt === undefined) problems.push(`${who}: its apply-start names no attempt`)
        else if ((oks[0]?.body as { attempt?: string } | undefined)?.attempt !== attempt) problems.push(`${who}: its outcome does not name the attempt it started`)
      }
    }
    for (const { name } of victims) {
      const v = await fleet.host(name).activeVersion()
      if (v !== version) problems.push(`${name} runs ${v ?? 'nothing'}, not the release`)
    }
    return { hosts: fleet.hosts.length, checked, problems }
  } finally {
    if (before === undefined) delete process.env.FLEETMESH_TEST_KILL
    else process.env.FLEETMESH_TEST_KILL = before
    await fleet.close()
  }
}
