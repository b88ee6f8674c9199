// `npm run demo`: the README's story on one machine, with real fleetmesh processes, real
// libp2p over loopback and real Nix. Every step checks what it claims and the demo exits 0
// only when all of them happened as described.
import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Fleet, servicePort, type FleetHost } from './harness/fleet.js'
import { agentServing, buildAgentGeneration, generationAgent } from './harness/agents.js'
import type { AgentStatus } from '../node/agents/index.js'
import type { AgentBody } from '../protocols/agents/index.js'
import type { EntryRow } from '../node/routes.js'
import { buildGeneration, ensureNix } from '../test/fixtures/nix/fixtures.js'
import { renderRelease } from '../node/deploy/cli-status.js'
import type { ReleaseBody, ReleaseStatus } from '../protocols/rollout/index.js'

const t0 = Date.now()
const clock = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s`
const say = (line: string): void => { console.log(`${clock()}  ${line}`) }
const step = (n: number, title: string): void => { console.log(`\n=== ${n}. ${title}`) }

class DemoFailure extends Error {}

/** peer id → the demo host's name, as every host's views show it (hosts are named at init) */
const names = new Map<string, string>()
const hostName = (peer: string): string => names.get(peer) ?? `${peer.slice(0, 8)}…${peer.slice(-6)}`
function check (ok: boolean, what: string): void {
  if (!ok) throw new DemoFailure(what)
  say(`ok: ${what}`)
}

async function watchRelease (host: FleetHost, id: string, until: (s: ReleaseStatus) => boolean, timeoutMs = 180_000): Promise<ReleaseStatus> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    const s = await host.json<ReleaseStatus>(['release', 'status', id])
    const text = renderRelease(s, { label: hostName }).join('\n')
    if (text !== last) {
      console.log(text.split('\n').map((l) => `${clock()}  ${l}`).join('\n'))
      last = text
    }
    if (until(s)) return s
    if (Date.now() > deadline || ['halted', 'aborted', 'superseded', 'done'].includes(s.state)) {
      const failures = (await host.cli(['audit', 'log', '--kind', 'apply-failed', '--json'])).stdout.trim().split('\n').filter(Boolean)
        .map((l) => JSON.parse(l) as { feed: string, body: { release: string, reason: string } }).filter((e) => e.body.release === id)
      for (const f of failures) say(`  apply failed on ${hostName(f.feed)}: ${f.body.reason}`)
      throw new DemoFailure(`release ${id} did not reach the expected state (it is ${s.state})`)
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

/** What an operator would type on `host`, with its output shown. */
async function show (host: FleetHost, args: string[], only: (line: string) => boolean = () => true): Promise<void> {
  const r = await host.cli(args)
  if (r.code !== 0) throw new DemoFailure(`fleetmesh ${args.join(' ')} on ${host.name} exited ${r.code}: ${r.stderr.trim()}`)
  say(`  ${host.name}$ fleetmesh ${args.join(' ')}`)
  for (const line of r.stdout.trim().split('\n').filter(only)) say(`    ${line}`)
}

async function agent (host: FleetHost): Promise<AgentStatus> {
  return (await host.get<AgentStatus[]>('/v1/agents'))[0]
}

/** `host`'s own `agent` entries since `since` (epoch ms). */
async function agentEntries (host: FleetHost, since: number): Promise<AgentBody[]> {
  return (await host.get<EntryRow[]>(`/v1/audit/log?kind=agent&feed=${host.peerId}&since=${since}`)).map((e) => e.body as AgentBody)
}

async function agentHeals (host: FleetHost, port: number): Promise<void> {
  step(8, `An agent crash heals itself: the agent on ${host.name} is killed (SIGKILL) and its watchdog restarts it`)
  await waitUntil(`${host.name}'s agent to be running and live`, async () => (await agent(host)).live && await agentServing(port))
  await show(host, ['agents'])
  const before = await agent(host)
  const killedAt = Date.now()
  process.kill(before.pid as number, 'SIGKILL')
  say(`killed the agent (pid ${before.pid}) with SIGKILL`)
  while (!await agentServing(port)) {
    if (Date.now() - killedAt > 60_000) throw new DemoFailure('the killed agent did not answer again within 60 s')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const healedMs = Date.now() - killedAt
  const after = await agent(host)
  check(after.pid !== before.pid && after.state === 'running', `a new agent process (pid ${after.pid}) answered its health endpoint ${healedMs} ms after the kill`)
  check((after.restarts.crash ?? 0) === (before.restarts.crash ?? 0) + 1, 'the watchdog restarted it once, for the crash')
  await waitUntil('the exit and restart entries', async () => {
    const log = await agentEntries(host, killedAt)
    return log.some((b) => b.event === 'exit' && b.signal === 'SIGKILL' && b.pid === before.pid) &&
      log.some((b) => b.event === 'restart' && b.reason === 'crash' && b.pid === after.pid)
  })
  say(`ok: ${host.name}'s signed feed records the exit (SIGKILL) and the restart (crash)`)
  await show(host, ['audit', 'log', '--kind', 'agent', '--feed', host.peerId, '--since', String(killedAt)])
}

async function agentCrashLoopRollsBack (fleet: Fleet, canary: FleetHost, port: number, plan: string[], v4: string, v3version: string): Promise<void> {
  step(9, `Release v4 changes only the agent, and its agent crash-loops: the canary ${canary.name} fails v4 by itself, rolls back, and the release halts fleet-wide`)
  say(`v4 ${v4} (its service is fine; its agent exits at start)`)
  // charlie is the canary; the canary soaks 30 s before the next wave may start, time enough
  // for a crash loop to show
  const waves = ['--tag', 'web', '--waves', `host:${canary.name},50%,100%`, '--gate', 'healthy=100%,soak=30s', ...plan.slice(plan.indexOf('--wait-offline'))]
  const since = Date.now()
  const r4 = await fleet.founder.json<ReleaseBody>(['release', 'publish', ...waves, '--path', v4])
  await watchRelease(fleet.founder, r4.id, (s) => s.state === 'halted')
  const r4log = (await fleet.founder.get<EntryRow[]>(`/v1/audit/log?since=${since}`))
    .filter((e) => (e.body as { release?: string }).release === r4.id)
  const failed = r4log.find((e) => e.kind === 'apply-failed')
  const reason = (failed?.body as { reason?: string } | undefined)?.reason ?? ''
  say(`  apply failed on ${canary.name}: ${reason}`)
  check(failed?.feed === canary.peerId && /agent assistant crash-looped/.test(reason), `${canary.name}'s apply-failed names the agent that crash-looped`)
  check(r4log.some((e) => e.kind === 'rollback' && e.feed === canary.peerId), `${canary.name} rolled itself back (a signed rollback entry)`)
  const applied = new Set(r4log.filter((e) => e.kind === 'apply-start').map((e) => e.feed))
  check(applied.size === 1 && applied.has(canary.peerId), 'only the canary ever applied v4: the later waves never did')
  check((await agentEntries(canary, since)).some((b) => b.event === 'escalate' && b.release === r4.id), `${canary.name}'s watchdog escalated the crash loop to the release (a signed agent entry)`)
  await show(canary, ['audit', 'log', '--kind', 'agent', '--feed', canary.peerId, '--since', String(since)], (l) => l.includes('"escalate"'))
  await waitUntil('every host to see the release halted', async () => (await Promise.all(fleet.hosts.map(async (h) => (await h.get<ReleaseStatus>(`/v1/releases/${r4.id}`)).state))).every((s) => s === 'halted'))
  say(`ok: all ${fleet.hosts.length} hosts see release ${r4.id} halted`)
  for (const h of fleet.hosts) check(await h.activeVersion() === v3version, `${h.name} is on v3`)
  await waitUntil(`${canary.name}'s agent to serve again on v3`, async () => (await agent(canary)).live && await agentServing(port))
  say(`ok: ${canary.name}'s agent is back up on v3`)
  await show(canary, ['agents'])
}

async function waitUntil (what: string, ok: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!await ok()) {
    if (Date.now() > until) throw new DemoFailure(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

async function main (): Promise<void> {
  const outDir = join(process.cwd(), 'out', 'demo')
  await mkdir(outDir, { recursive: true })
  step(0, 'Real Nix: building three fake system generations (a good one, one whose service crashes, a fixed one)')
  await ensureNix()
  const stamp = String(Date.now())
  // v4 (for step 9) builds alongside; its line is printed when it is used
  const v4build = buildAgentGeneration(`demo-v4-${stamp}`, 'good', 'crash')
  v4build.catch(() => {})
  const [v1, v2bad, v3] = await Promise.all([
    buildGeneration(`demo-v1-${stamp}`, 'good'),
    buildGeneration(`demo-v2-${stamp}`, 'crash'),
    buildGeneration(`demo-v3-${stamp}`, 'good')
  ])
  say(`v1 ${v1}\n${clock()}  v2 ${v2bad} (its service crashes on start)\n${clock()}  v3 ${v3}`)

  // charlie supervises an agent, "assistant": a small HTTP server, the generation's own bin/agent
  // when it carries one. Restarts back off 250 ms, doubling; more than 4 within a minute is a crash loop.
  const agentPort = await servicePort()
  const restart = { backoffInitialMs: 250, backoffMaxMs: 4000, maxRestarts: 4, windowMs: 60_000 }
  const fleet = await Fleet.create({
    hosts: [
      { name: 'alpha', role: 'admin', tags: ['web'] },
      { name: 'bravo', role: 'admin', tags: ['web'] },
      { name: 'charlie', tags: ['web'], agents: (h) => [generationAgent('assistant', h.profile, agentPort, restart)] },
      { name: 'delta', tags: ['web'] },
      { name: 'echo', tags: ['web'] }
    ],
    mesh: 'demo',
    soakMs: 300,
    onProgress: say
  })
  for (const h of fleet.hosts) names.set(h.peerId, h.name)
  try {
    step(1, 'Pairing: alpha founds the mesh; every other host joins with an invite code (post-quantum hybrid Noise on every link)')
    await fleet.pairAll()
    const members = await fleet.host('echo').json<Array<{ peerId: string, name: string | null, role: string }>>(['members'])
    check(members.length === 5, `echo sees all 5 members (${members.filter((m) => m.role === 'admin').length} admins)`)
    check(members.every((m) => m.name === names.get(m.peerId)), `each by the name it chose at init, carried in its admission: ${members.map((m) => m.name).join(', ')}`)
    const peers = await fleet.founder.json<Array<{ encryption: string }>>(['peers'])
    check(peers.length > 0 && peers.every((p) => p.encryption === '/noise-mlkem768-hfs/0.2.0'), `alpha's ${peers.length} connections all use /noise-mlkem768-hfs/0.2.0`)

    const plan = ['--tag', 'web', '--waves', '1,50%,100%', '--gate', 'healthy=100%,soak=1s', '--wait-offline', '5s']
    step(2, 'Release v1, signed by alpha: a canary, then half the fleet, then the rest; each host applies it in its wave')
    const r1 = await fleet.founder.json<ReleaseBody>(['release', 'publish', ...plan, '--path', v1])
    await watchRelease(fleet.founder, r1.id, (s) => s.state === 'done')
    for (const h of fleet.hosts) check(await h.activeVersion() === `demo-v1-${stamp}`, `${h.name} runs v1`)

    step(3, 'echo goes offline')
    await fleet.stop('echo')
    say('echo stopped')

    step(4, 'Release v2 is broken: the canary fails its health check, rolls back by itself, and the release halts fleet-wide')
    // the canary is named: a canary drawn from all five could be echo, offline, whose wave then
    // passes by --wait-offline and lets the broken path reach the next wave
    const canaryPlan = plan.map((a, i) => plan[i - 1] === '--waves' ? `host:${fleet.host('bravo').name},50%,100%` : a)
    const r2 = await fleet.host('bravo').json<ReleaseBody>(['release', 'publish', ...canaryPlan, '--path', v2bad])
    await watchRelease(fleet.founder, r2.id, (s) => s.state === 'halted')
    const r2log = (await fleet.founder.cli(['audit', 'log', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string, feed: string, body: { release?: string } })
      .filter((e) => e.body.release === r2.id)
    const applied = new Set(r2log.filter((e) => e.kind === 'apply-start').map((e) => e.feed))
    check(applied.size === 1, 'only the canary ever applied v2')
    check(r2log.some((e) => e.kind === 'rollback'), 'the canary rolled itself back (a signed rollback entry)')
    for (const h of fleet.hosts.filter((x) => x.online)) check(await h.activeVersion() === `demo-v1-${stamp}`, `${h.name} is on v1`)

    step(5, 'The fix, v3, rolls out; echo is offline, so after 5 s its wave proceeds without it')
    const r3 = await fleet.founder.json<ReleaseBody>(['release', 'publish', ...plan, '--path', v3])
    await watchRelease(fleet.founder, r3.id, (s) => s.waves.reduce((n, w) => n + w.healthy, 0) === 4)
    for (const h of fleet.hosts.filter((x) => x.online)) check(await h.activeVersion() === `demo-v3-${stamp}`, `${h.name} runs v3`)

    step(6, 'A room: an agent on alpha and an agent on charlie talk end to end encrypted')
    const room = await fleet.founder.json<{ id: string, epoch: number }>(['room', 'create', 'ops', '--member', `${fleet.host('alpha').peerId}:planner`, '--member', `${fleet.host('charlie').peerId}:worker`])
    say(`room ops ${room.id}, epoch ${room.epoch}`)
    const sent = await fleet.founder.cli(['room', 'send', room.id, 'v3 is out; please confirm the service answers', '--agent', 'planner'])
    check(sent.code === 0, 'planner@alpha sent a message')
    await fleet.waitFor('charlie to receive it', async () => (await fleet.host('charlie').cli(['room', 'tail', room.id])).stdout.includes('please confirm'))
    const reply = await fleet.host('charlie').cli(['room', 'send', room.id, 'confirmed: health endpoint answers 200', '--agent', 'worker'])
    check(reply.code === 0, 'worker@charlie replied')
    await fleet.waitFor('alpha to receive the reply', async () => (await fleet.founder.cli(['room', 'tail', room.id])).stdout.includes('confirmed'))
    for (const line of (await fleet.founder.cli(['room', 'tail', room.id])).stdout.trim().split('\n')) say(`  ${line}`)
    const outsider = await fleet.host('delta').cli(['room', 'tail', room.id])
    check(outsider.code !== 0 || !outsider.stdout.includes('confirmed'), 'delta, a mesh member outside the room, reads nothing')

    step(7, 'echo comes back: it catches up the log and converges straight to v3, never applying the halted v2')
    await fleet.start('echo')
    const echo = fleet.host('echo')
    // r3 was already done without echo, declared silent while it was away: what matters now is
    // that echo, back, applies it by itself
    await fleet.waitFor('echo to apply v3', async () => await echo.activeVersion().catch(() => undefined) === `demo-v3-${stamp}`).catch(() => {})
    await watchRelease(fleet.founder, r3.id, (s) => s.state === 'done')
    check(await echo.activeVersion() === `demo-v3-${stamp}`, 'echo runs v3')
    const echoLog = (await echo.cli(['audit', 'log', '--json', '--feed', echo.peerId])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string, body: { release?: string } })
    check(!echoLog.some((e) => e.body.release === r2.id), 'echo never applied v2')

    await agentHeals(fleet.host('charlie'), agentPort)
    await agentCrashLoopRollsBack(fleet, fleet.host('charlie'), agentPort, plan, await v4build, `demo-v3-${stamp}`)

    step(10, 'The audit trail: every host re-verifies the whole signed hash chain; an export verifies on its own')
    for (const h of fleet.hosts) {
      const v = await h.json<{ ok: boolean, entries: number, feeds: number }>(['audit', 'verify'])
      check(v.ok, `${h.name}: ${v.entries} entries in ${v.feeds} feeds verify`)
    }
    const exportFile = join(outDir, 'audit-export.jsonl')
    const exported = await fleet.founder.cli(['audit', 'export'])
    await new Promise<void>((resolve, reject) => {
      const w = createWriteStream(exportFile)
      w.on('error', reject)
      w.end(exported.stdout, () => resolve())
    })
    const fileCheck = await fleet.founder.json<{ ok: boolean, entries: number }>(['audit', 'verify', '--file', exportFile])
    check(fileCheck.ok, `the export (${exportFile}, ${fileCheck.entries} entries) verifies`)
    console.log(`\ndemo: every step happened as described (${((Date.now() - t0) / 1000).toFixed(0)} s)`)
  } finally {
    await fleet.close()
  }
}

main().then(() => process.exit(0), (err: Error) => {
  console.error(`\ndemo FAILED: ${err instanceof DemoFailure ? err.message : err.stack ?? err.message}`)
  process.exit(1)
})
