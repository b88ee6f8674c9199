// `npm run sim -- safety [--clock-ahead-ms N]`: issue 14's proof on seven real daemons with real
// Nix, driven by the CLI commands an operator types. Hosts: admin `ops`, `db-1..3` (tag db),
// `web-1`, `web-2` (tag web) and `edge` (tag web, in its own network namespace). In order:
//   plan, edge, pin: `budget set tag:db 1`, `pin web-1`, `release plan` then `release publish`
//     of db and web paths with `--after tag:db`: the release completes with web-1 pinned, no
//     web host starts before every db host is healthy, and the plan's waves and holds are what
//     then happens (also for the freshness release and the quarantined path's second release);
//   freshness: web-2 is stopped, a `--fresh-for 10m` web release is published; web-2 comes back
//     after the window and must refuse it (release-seen stale) while the others applied it;
//   budget: two releases published at once over db hosts (db-1+db-2 and db-3), and every db
//     attempt of the run, from the trail's apply-start/outcome pairs (checks.ts): never two at once;
//   quarantine: a path failing its health check on the canary, then a second release of it: refused;
//   revert: a generation whose activation takes edge's link down is rolled back by edge itself
//     once its confirm window passes unconfirmed;
//   pending reboot: a generation with another kernel link, without --reboot: staged with
//     `switch-to-configuration boot`, the host counted pending-reboot, the release not done.
// The returning host. The shortest window is MIN_FRESH_FOR_MS (10 min) and the daemon has no clock
// option, so web-2's daemon is started with its wall clock ahead by --clock-ahead-ms (default
// 4.5 min: within the skew the mesh tolerates, so every host stores what it signs; clock-ahead.mjs)
// and comes back once the rest of the window has really passed; with --clock-ahead-ms 0 it waits
// the full 10 min. The last line reports both parts. Exits non-zero when a check fails.
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Fleet, type FleetHost } from '../harness/fleet.js'
import { HostProcess } from '../harness/processes.js'
import { auditLog, releaseStatus } from '../harness/queries.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { ensureNix, buildGeneration } from '../../test/fixtures/nix/fixtures.js'
import { runNix } from '../../nixos/nix.js'
import { CLOCK_SKEW_MS } from '../../protocols/audit/store.js'
import { MIN_FRESH_FOR_MS } from '../../protocols/rollout/schema.js'
import type { ReleaseBody, ReleaseStatus } from '../../protocols/rollout/index.js'
import type { PlanReport } from '../../node/deploy/plan.js'
import type { EntryRow } from '../../node/routes.js'
import type { Result } from '../figures.js'
import { Netns, NsDaemon } from '../harness/netns.js'
import { attempts, edgeViolations, overlaps, planMismatches } from './checks.js'

const WAIT_MS = 180_000
const CONFIRM_WINDOW_MS = 20_000
const TOPLEVEL = fileURLToPath(new URL('../../test/deploy/fixtures/toplevel.nix', import.meta.url))
const CLOCK_AHEAD = fileURLToPath(new URL('./clock-ahead.mjs', import.meta.url))

const say = (line: string): void => { process.stderr.write(`safety: ${line}\n`) }
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const body = (e: EntryRow): Record<string, unknown> => e.body as Record<string, unknown>

async function toplevel (version: string, opts: { network?: 'up' | 'down', kernel?: string } = {}): Promise<string> {
  await ensureNix()
  const { stdout } = await runNix('nix-build', [TOPLEVEL, '--no-out-link', '--argstr', 'version', version, '--argstr', 'mode', 'good',
    '--argstr', 'nodeBin', process.execPath, '--argstr', 'network', opts.network ?? 'up', '--argstr', 'kernel', opts.kernel ?? '1'])
  return stdout.trim()
}

function numberArg (args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}

export async function run (args: string[]): Promise<Result> {
  const t0 = Date.now()
  const clockAhead = numberArg(args, 'clock-ahead-ms', 270_000)
  if (!Number.isSafeInteger(clockAhead) || clockAhead < 0 || clockAhead >= CLOCK_SKEW_MS - 15_000) {
    throw new Error(`--clock-ahead-ms must be 0 to ${CLOCK_SKEW_MS - 15_001}: a host further ahead signs entries the others refuse`)
  }
  const result: Result = { sim: 'safety', hosts: 7 }
  const step = async (name: string, f: () => Promise<string>): Promise<void> => {
    const start = Date.now()
    say(`${name}: start`)
    try {
      result[name] = await f()
    } catch (err) {
      result[name] = `FAIL: ${(err as Error).message}`
    }
    result[`${name}_ms`] = Date.now() - start
    say(`${name}: ${String(result[name])} (${Date.now() - start} ms)`)
  }

  const ns = new Netns('fms', 150)
  await ns.create()
  const fleet = await Fleet.create({
    hosts: [
      { name: 'ops', role: 'admin' },
      ...['db-1', 'db-2', 'db-3'].map((name) => ({ name, tags: ['db'] })),
      ...['web-1', 'web-2', 'edge'].map((name) => ({ name, tags: ['web'] }))
    ],
    soakMs: 500,
    onProgress: say
  })
  let edgeDaemon: NsDaemon | undefined
  try {
    const [ops, web1, web2, edge] = ['ops', 'web-1', 'web-2', 'edge'].map((n) => fleet.host(n))
    const db = ['db-1', 'db-2', 'db-3'].map((n) => fleet.host(n))
    const web = [web1, web2, edge]
    const names = new Map(fleet.hosts.map((h) => [h.peerId, h.name]))
    const label = (peer: string): string => names.get(peer) ?? peer
    // Everyone listens on the outside end of the veth pair (a local address), edge on the inside end.
    for (const h of fleet.hosts) {
      const config = await readConfig(h.dataDir)
      const env = { ...config.deploy.activationEnv }
      if (h === edge) env.FLEETMESH_FIXTURE_LINK = ns.veth[1]
      if (h === web1) env.FLEETMESH_FIXTURE_CURRENT = join(h.dataDir, 'current-system')
      await writeConfig(h.dataDir, {
        ...config,
        listen: [`/ip4/${h === edge ? ns.insideIp : ns.outsideIp}/tcp/0`],
        deploy: { ...config.deploy, activationEnv: env, ...(h === web1 ? { currentSystem: join(h.dataDir, 'current-system') } : {}) }
      })
    }

    const stamp = Date.now()
    say('building the generations with Nix')
    const built = Promise.all([
      buildGeneration(`sf-db1-${stamp}`, 'good'), buildGeneration(`sf-db2-${stamp}`, 'good'), buildGeneration(`sf-db3-${stamp}`, 'good'),
      buildGeneration(`sf-dbbad-${stamp}`, 'status500'),
      toplevel(`sf-w0-${stamp}`), toplevel(`sf-w1-${stamp}`), toplevel(`sf-wf-${stamp}`),
      toplevel(`sf-cut-${stamp}`, { network: 'down' }), toplevel(`sf-kernel-${stamp}`, { kernel: '2' })
    ])

    // edge joins from inside its namespace, after the others (Fleet.pairAll runs CLIs outside it)
    fleet.hosts.splice(fleet.hosts.indexOf(edge), 1)
    await fleet.pairAll()
    fleet.hosts.push(edge)
    edgeDaemon = await NsDaemon.start(ns, edge, ops.address)
    const inv = await ops.json<{ code: string }>(['invite', '--role', 'host', '--tag', 'web'])
    const joined = await ns.cli(edge, ['join', inv.code, '--json'])
    if (joined.code !== 0) throw new Error(`edge could not join: ${joined.stderr}`)
    await fleet.waitFor('ops to see seven members', async () => (await ops.json<unknown[]>(['members'])).length === 7, WAIT_MS)
    say('edge: joined from its own network namespace')
    const [D1, D2, D3, DBAD, W0, W1, WF, WCUT, WK] = await built
    result.setup_ms = Date.now() - t0

    const cli = async (args: string[]): Promise<void> => {
      const r = await ops.cli(args)
      if (r.code !== 0) throw new Error(`fleetmesh ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
      say(`ops$ fleetmesh ${args.join(' ')}`)
    }
    const plan = async (flags: string[]): Promise<PlanReport> => await ops.json<PlanReport>(['release', 'plan', ...flags])
    const publish = async (flags: string[]): Promise<ReleaseBody> => {
      const r = await ops.json<ReleaseBody>(['release', 'publish', ...flags, '--force'])
      say(`ops$ fleetmesh release publish ${flags.join(' ')} --force  → ${r.id} #${r.number}`)
      return r
    }
    const status = async (id: string): Promise<ReleaseStatus> => await releaseStatus(ops, id)
    const log = async (): Promise<EntryRow[]> => await auditLog(ops)
    const ofRelease = async (id: string, host: FleetHost, kind?: string): Promise<EntryRow[]> =>
      (await log()).filter((e) => e.feed === host.peerId && body(e).release === id && (kind === undefined || e.kind === kind))
    // each plan is held against what happened once its release has settled (a later unpin lets
    // the pinned host take a release it sat out)
    const planBad: string[] = []
    let plans = 0
    const judgePlan = async (p: PlanReport, id: string): Promise<void> => {
      plans++
      planBad.push(...planMismatches(p, await status(id), await log(), label).map((x) => `${id}: ${x}`))
    }

    await cli(['budget', 'set', 'tag:db', '1'])
    let w1: ReleaseBody | undefined
    await step('pin', async () => {
      await cli(['pin', 'web-1', '--path', W0, '--reason', 'held for maintenance'])
      const flags = ['--target', `tag:db=${D1}`, '--target', `tag:web=${W1}`, '--waves', '100%', '--after', 'tag:db']
      const p = await plan(flags)
      const r = await publish(flags)
      w1 = r
      await fleet.waitFor('the db-then-web release to be done', async () => (await status(r.id)).state === 'done', WAIT_MS)
      const s = await status(r.id)
      const started = await ofRelease(r.id, web1, 'apply-start')
      await judgePlan(p, r.id)
      await cli(['unpin', 'web-1'])
      if (started.length > 0) return 'FAIL: the pinned web-1 started the release'
      if (!s.pinnedHosts.includes(web1.peerId)) return 'FAIL: status does not count web-1 pinned'
      return 'ok'
    })
    await step('edge', async () => {
      if (w1 === undefined) return 'not-run: the db-then-web release was not published'
      const bad = edgeViolations(await log(), w1.id, db.map((h) => h.peerId), web.map((h) => h.peerId))
      return bad.length === 0 ? 'ok' : `FAIL: ${bad.join('; ')}`
    })

    // the freshness release goes out now, with web-2 away; it comes back at the end
    await fleet.stop('web-2')
    say('web-2: stopped')
    const freshFlags = ['--tag', 'web', '--path', WF, '--waves', '100%', '--fresh-for', '10m']
    const freshPlan = await plan(freshFlags)
    const fresh = await publish(freshFlags)
    const freshSigned = (await log()).find((e) => e.kind === 'release' && body(e).id === fresh.id)?.ts ?? Date.now()
    await fleet.waitFor('web-1 and edge to apply the fresh release', async () => {
      for (const h of [web1, edge]) if ((await ofRelease(fresh.id, h, 'apply-ok')).length === 0) return false
      return true
    }, WAIT_MS)

    let pair: ReleaseBody[] = []
    await step('budget_releases', async () => {
      // two releases at once over db hosts: only the per-tag budget keeps db-1 and db-3 apart
      pair = await Promise.all([
        publish(['--target', `host:${db[0].peerId}=${D2}`, '--target', `host:${db[1].peerId}=${D2}`, '--waves', '100%']),
        publish(['--host', db[2].peerId, '--path', D3, '--waves', '100%'])
      ])
      await fleet.waitFor('both db releases to be done', async () => {
        for (const r of pair) if ((await status(r.id)).state !== 'done') return false
        return true
      }, WAIT_MS)
      return 'ok'
    })

    await step('quarantine', async () => {
      const q1 = await publish(['--tag', 'db', '--path', DBAD, '--waves', '1,100%'])
      await fleet.waitFor('the failing canary to halt its release', async () => (await status(q1.id)).state === 'halted', WAIT_MS)
      const canary = (await status(q1.id)).failedHosts
      const flags = ['--tag', 'db', '--path', DBAD, '--waves', '100%']
      const p = await plan(flags)
      const q2 = await publish(flags)
      await fleet.waitFor('every db host to refuse the quarantined path', async () => {
        const s = await status(q2.id)
        return s.waves[0].hostStates.every((h) => h.state === 'quarantined-refused')
      }, WAIT_MS)
      await sleep(5000)
      const starts = (await log()).filter((e) => e.kind === 'apply-start' && body(e).release === q2.id)
      const s = await status(q2.id)
      await judgePlan(p, q2.id)
      if (canary.length !== 1) return `FAIL: the canary release failed on ${canary.length} host(s), not 1`
      if (starts.length > 0) return `FAIL: ${starts.map((e) => label(e.feed)).join(', ')} started the quarantined path`
      if (!s.quarantinedPaths.includes(DBAD)) return 'FAIL: status does not list the path quarantined'
      return `ok (failed on canary ${label(canary[0])}; refused by ${s.waves[0].hostStates.length} host(s) in the second release)`
    })

    await step('revert', async () => {
      const r = await publish(['--host', 'edge', '--path', WCUT, '--waves', '100%', '--confirm-window', `${CONFIRM_WINDOW_MS / 1000}s`])
      await fleet.waitFor('ops to learn edge rolled back', async () => (await ofRelease(r.id, edge, 'rollback')).length > 0, WAIT_MS)
      const own = await ofRelease(r.id, edge)
      const confirming = own.find((e) => e.kind === 'confirming')
      const failed = own.find((e) => e.kind === 'apply-failed')
      const reason = String(failed !== undefined ? body(failed).reason : '')
      const active = await edge.activeVersion()
      if (confirming === undefined || failed === undefined) return `FAIL: edge wrote ${own.map((e) => e.kind).join(', ')}`
      if (!reason.startsWith('unconfirmed')) return `FAIL: edge's apply-failed says ${reason}`
      if (active !== `sf-wf-${stamp}`) return `FAIL: edge runs ${String(active)}, not the generation before`
      result.revert_after_ms = failed.ts - confirming.ts
      if (failed.ts - confirming.ts > CONFIRM_WINDOW_MS + 30_000) return `FAIL: reverted ${failed.ts - confirming.ts} ms after activating, window ${CONFIRM_WINDOW_MS} ms`
      return 'ok'
    })

    await step('pending_reboot', async () => {
      const r = await publish(['--host', 'web-1', '--path', WK, '--waves', '100%'])
      await fleet.waitFor('web-1 to stage the kernel change', async () => (await ofRelease(r.id, web1, 'pending-reboot')).length > 0, WAIT_MS)
      const [pending] = await ofRelease(r.id, web1, 'pending-reboot')
      const activations = (await readFile(join(web1.serviceDir, 'activations'), 'utf8')).split('\n').filter(Boolean)
      const s = await status(r.id)
      const state = s.waves[0].hostStates.find((h) => h.host === web1.peerId)?.state
      if (!(body(pending).changes as string[]).includes('kernel')) return `FAIL: staged for ${String(body(pending).changes)}`
      if (activations.includes(`switch sf-kernel-${stamp}`) || !activations.includes(`boot sf-kernel-${stamp}`)) return `FAIL: activations ${activations.join(' | ')}`
      if (state !== 'pending-reboot' || s.waves[0].gateMet || s.state === 'done') return `FAIL: status ${s.state}, web-1 ${String(state)}, gate met ${String(s.waves[0].gateMet)}`
      if (await web1.activeVersion() !== `sf-wf-${stamp}`) return 'FAIL: the running system changed'
      return 'ok'
    })

    await step('stale', async () => {
      const back = freshSigned + MIN_FRESH_FOR_MS - clockAhead + 20_000
      if (Date.now() < back) say(`web-2: returns in ${Math.ceil((back - Date.now()) / 1000)} s (its clock ${clockAhead} ms ahead)`)
      await sleep(back - Date.now())
      const bootstrap = fleet.hosts.filter((h) => h.online).slice(0, 3).flatMap((h) => ['--bootstrap', h.address])
      web2.process = await HostProcess.start(web2.dataDir, bootstrap, { NODE_OPTIONS: `--import ${CLOCK_AHEAD}`, FLEETMESH_SIM_CLOCK_AHEAD_MS: String(clockAhead) })
      result.fresh_real_wait_ms = Date.now() - freshSigned
      result.fresh_clock_ahead_ms = clockAhead
      await fleet.waitFor('ops to hold web-2\'s verdict on the fresh release', async () => (await ofRelease(fresh.id, web2, 'release-seen')).length > 0, WAIT_MS)
      const [seen] = await ofRelease(fresh.id, web2, 'release-seen')
      await sleep(3000)
      const starts = await ofRelease(fresh.id, web2, 'apply-start')
      const s = await status(fresh.id)
      const applied = await Promise.all([web1, edge].map(async (h) => (await ofRelease(fresh.id, h, 'apply-ok')).length > 0))
      await judgePlan(freshPlan, fresh.id)
      if (body(seen).stale !== true) return 'FAIL: web-2 judged the release fresh'
      if (starts.length > 0) return 'FAIL: web-2 started the stale release'
      if (!s.staleHosts.includes(web2.peerId)) return 'FAIL: status does not list web-2 stale'
      if (applied.includes(false)) return 'FAIL: web-1 and edge did not both apply it in time'
      return `ok (release ${s.state})`
    })

    await step('budget', async () => {
      const att = attempts(await log(), db.map((h) => h.peerId))
      const [a, b] = pair
      if (a === undefined) return 'not-run: the two db releases were not published'
      const of = (id: string): number => att.filter((x) => x.release === id).length
      result.db_attempts = att.length
      const over = overlaps(att)
      if (over.length > 0) return `FAIL: ${over.map(([x, y]) => `${label(x.host)} (${x.release}) and ${label(y.host)} (${y.release})`).join('; ')} in flight together`
      if (of(a.id) !== 2 || of(b.id) !== 1) return `FAIL: expected 2 + 1 attempts of the two releases, saw ${of(a.id)} + ${of(b.id)}`
      return 'ok'
    })

    await step('plan', async () => {
      if (plans < 3) return `not-run: ${3 - plans} of the 3 planned releases did not settle`
      return planBad.length === 0 ? `ok (${plans} plans)` : `FAIL: ${planBad.join('; ')}`
    })
  } finally {
    await edgeDaemon?.stop().catch(() => {})
    await fleet.close()
    await ns.remove()
  }
  result.wall_ms = Date.now() - t0
  const failed = Object.entries(result).filter(([, v]) => typeof v === 'string' && v.startsWith('FAIL'))
  if (failed.length > 0) {
    console.log(JSON.stringify(result))
    throw new Error(`${failed.length} check(s) failed: ${failed.map(([k]) => k).join(', ')}`)
  }
  return result
}
