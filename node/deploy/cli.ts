// CLI commands of deploys: releases (publish, status, list, pause/resume/abort), generations,
// local apply and rollback. Every command talks to the running daemon.
import { Command, CommanderError } from 'commander'
import type { ControlClient } from '../client.js'
import type { PublishParams } from './agent.js'
import { watchExitCode, type ReleaseBody, type ReleaseStatus, type Flag, type Wave } from '../../protocols/rollout/index.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }

function usage (message: string): never {
  throw new CommanderError(2, 'fleetmesh.usage', message)
}

function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

/** 90s, 30m, 2h, 1d, 500ms, or plain milliseconds. */
export function parseMs (text: string, what: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) usage(`${what}: "${text}" is not a duration (e.g. 30s, 5m, 1h)`)
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[(m[2] ?? 'ms') as 'ms']
}

/** `--gate healthy=100%,soak=30s` */
export function parseGate (text: string): Wave['gate'] {
  const gate = { healthy: 100, soakMs: 0 }
  for (const part of text.split(',')) {
    const [k, v] = part.split('=')
    if (k === 'healthy' && v !== undefined && /^\d+%?$/.test(v)) gate.healthy = Number(v.replace('%', ''))
    else if (k === 'soak' && v !== undefined) gate.soakMs = parseMs(v, '--gate soak')
    else usage(`--gate: cannot read "${part}" (expected healthy=N%,soak=DURATION)`)
  }
  if (gate.healthy > 100) usage('--gate healthy: at most 100%')
  return gate
}

/** `--waves 1,25%,100%` or `tag:canary,50%,100%` or `host:ID,...`: each wave's selector. */
export function parseWaves (text: string, gate: Wave['gate'], waitOfflineMs?: number): Wave[] {
  return text.split(',').map((w) => {
    const base = { gate, ...(waitOfflineMs !== undefined ? { waitOfflineMs } : {}) }
    if (/^\d+%$/.test(w)) return { ...base, percent: Number(w.slice(0, -1)) }
    if (/^\d+$/.test(w)) return { ...base, count: Number(w) }
    if (w.startsWith('tag:')) return { ...base, tag: w.slice(4) }
    if (w.startsWith('host:')) return { ...base, hosts: w.slice(5).split('+') }
    usage(`--waves: cannot read "${w}" (expected N, N%, tag:T or host:ID+ID)`)
  })
}

/** `--target tag:web=/nix/store/…` / `host:ID=/nix/store/…`; or --tag/--host with --path. */
export function parseTargets (o: { target?: string[], tag?: string, host?: string, path?: string }, sources: string[]): ReleaseBody['targets'] {
  const targets: ReleaseBody['targets'] = []
  for (const t of o.target ?? []) {
    const m = /^(tag|host):([^=]+)=(\/nix\/store\/\S+)$/.exec(t)
    if (m === null) usage(`--target: cannot read "${t}" (expected tag:T=/nix/store/… or host:ID=/nix/store/…)`)
    targets.push({ [m[1]]: m[2], path: m[3], sources })
  }
  if (o.path !== undefined) {
    if (o.tag !== undefined && o.host !== undefined) usage('--tag and --host together: publish one target per selector with --target')
    targets.push({ ...(o.tag !== undefined ? { tag: o.tag } : {}), ...(o.host !== undefined ? { host: o.host } : {}), path: o.path, sources })
  }
  if (targets.length === 0) usage('name what to deploy: --path /nix/store/… (with --tag T or --host ID), or --target')
  return targets
}

function bar (done: number, failed: number, total: number, width = 24): string {
  if (total === 0) return '[' + ' '.repeat(width) + ']'
  const ok = Math.round(done / total * width)
  const bad = Math.min(width - ok, Math.round(failed / total * width))
  return '[' + '#'.repeat(ok) + 'x'.repeat(bad) + '.'.repeat(width - ok - bad) + ']'
}

export function renderRelease (s: ReleaseStatus): string[] {
  const lines = [`release ${s.id} #${s.number}  ${s.state.toUpperCase()}${s.reason !== undefined ? `: ${s.reason}` : ''}`,
    `  signed by ${s.signer}; failures ${s.failed}/${s.maxFailures} allowed`]
  for (const w of s.waves) {
    lines.push(`  wave ${w.index} ${bar(w.healthy, w.failed, w.hosts)} ${w.healthy}/${w.hosts} healthy  ${w.applying} applying  ${w.pending} pending  ${w.failed} failed  ${w.offline} offline  gate ${w.gateMet ? 'met' : `needs ${w.need}`}${w.waits !== undefined && !w.gateMet ? `  (${w.waits})` : ''}`)
  }
  if (s.unassigned.length > 0) lines.push(`  not in any wave: ${s.unassigned.join(', ')}`)
  return lines
}

export function registerDeployCommands (program: Command, client: () => Promise<ControlClient>): void {
  const release = program.command('release').description('signed releases rolled out in waves by every host itself')

  release.command('publish')
    .description('sign a release into the audit log (admins only)')
    .option('--path <storePath>', 'the generation to deploy')
    .option('--tag <tag>', 'deploy to hosts with this tag (with --path)')
    .option('--host <peerId>', 'deploy to this host (with --path)')
    .option('--target <sel=path>', 'tag:T=/nix/store/… or host:ID=/nix/store/… (repeatable)', collect)
    .option('--source <url>', 'substituter URL, or "peers" (repeatable; default peers)', collect)
    .option('--waves <list>', 'wave selectors: N hosts, N% cumulative, tag:T, host:ID+ID', '1,100%')
    .option('--gate <gate>', 'gate of every wave: healthy=N%,soak=DURATION', 'healthy=100%,soak=0s')
    .option('--max-failures <n>', 'hosts that may fail before the release halts', '0')
    .option('--wait-offline <duration>', 'after this long, hosts that said nothing leave a wave\'s gate')
    .option('--apply-deadline <duration>', 'a host whose apply has no outcome this long after it started counts as failed (default 30m)')
    .option('--auto-revert', 'hosts that applied a halted release revert by themselves')
    .option('--json', 'machine-readable output')
    .action(async (o: { path?: string, tag?: string, host?: string, target?: string[], source?: string[], waves: string, gate: string, maxFailures: string, waitOffline?: string, applyDeadline?: string, autoRevert?: boolean, json?: boolean }) => {
      const sources = o.source ?? ['peers']
      const gate = parseGate(o.gate)
      const params: PublishParams = {
        targets: parseTargets(o, sources),
        waves: parseWaves(o.waves, gate, o.waitOffline !== undefined ? parseMs(o.waitOffline, '--wait-offline') : undefined),
        maxFailures: Number(o.maxFailures),
        autoRevert: o.autoRevert === true,
        ...(o.applyDeadline !== undefined ? { applyDeadlineMs: parseMs(o.applyDeadline, '--apply-deadline') } : {})
      }
      if (!Number.isSafeInteger(params.maxFailures) || params.maxFailures < 0) usage('--max-failures must be a non-negative integer')
      if (params.applyDeadlineMs === 0) usage('--apply-deadline must be longer than 0')
      const body = await (await client()).post<ReleaseBody>('/v1/releases', params)
      if (o.json === true) return out(JSON.stringify(body))
      out(`published release ${body.id} #${body.number}: ${body.targets.length} target(s), ${body.waves.length} wave(s)`)
    })

  release.command('status')
    .description('per wave: pending, applying, healthy, failed, offline; why a wave waits')
    .argument('[id]', 'release id (default: the newest)')
    .option('--watch', 'refresh until the release ends; exit 0 only when done (6 halted, 7 aborted, 8 superseded)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nWith --watch the command keeps waiting while the release rolls, is paused or soaks, and\nexits 0 only on DONE: 6 HALTED, 7 ABORTED, 8 SUPERSEDED (every host of it taken over by newer\nreleases), so a CI job can gate on it.')
    .action(async (id: string | undefined, o: { watch?: boolean, json?: boolean }) => {
      const c = await client()
      for (;;) {
        const rid = id ?? (await c.get<{ releases: ReleaseStatus[] }>('/v1/releases')).releases[0]?.id
        if (rid === undefined) return out('no releases')
        const s = await c.get<ReleaseStatus>(`/v1/releases/${encodeURIComponent(rid)}`)
        if (o.json === true) out(JSON.stringify(s))
        else {
          if (o.watch === true && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H')
          for (const l of renderRelease(s)) out(l)
        }
        if (o.watch !== true) return
        const code = watchExitCode(s.state)
        if (code !== undefined) { process.exitCode = code; return }
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
    })

  release.command('list')
    .description('every release this host knows, newest first')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const r = await (await client()).get<{ releases: ReleaseStatus[], flagged: Flag[] }>('/v1/releases')
      if (o.json === true) return out(JSON.stringify(r))
      if (r.releases.length === 0) out('no releases')
      for (const s of r.releases) {
        const healthy = s.waves.reduce((n, w) => n + w.healthy, 0)
        const hosts = s.waves.reduce((n, w) => n + w.hosts, 0)
        out(`${s.id.padEnd(16)} #${String(s.number).padEnd(4)} ${s.state.padEnd(10)} ${healthy}/${hosts} healthy  ${s.failed} failed${s.reason !== undefined ? `  ${s.reason}` : ''}`)
      }
      for (const f of r.flagged) out(`FLAGGED: ${JSON.stringify(f)}`)
    })

  for (const action of ['pause', 'resume', 'abort'] as const) {
    release.command(action)
      .description(`${action} a release on every host (admins only)`)
      .argument('<id>', 'release id')
      .action(async (id: string) => {
        await (await client()).post(`/v1/releases/${encodeURIComponent(id)}/${action}`)
        out(`${action} of ${id} signed; every host honours it as the entry reaches it`)
      })
  }

  const generations = program.command('generations')
    .description('this host\'s system generations (current marked)')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const gens = await (await client()).get<Array<{ number: number, path: string, current: boolean }>>('/v1/generations')
      if (o.json === true) return out(JSON.stringify(gens))
      if (gens.length === 0) return out('no generations yet')
      for (const g of gens) out(`${g.current ? '*' : ' '} ${String(g.number).padStart(4)}  ${g.path}`)
    })
  generations.command('diff')
    .description('closure differences between two generations')
    .argument('<a>', 'generation number')
    .argument('<b>', 'generation number')
    .action(async (a: string, b: string) => {
      const r = await (await client()).get<{ diff: string }>(`/v1/generations/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`)
      out(r.diff.trimEnd() || '(no differences)')
    })

  program.command('apply')
    .description('apply a generation on this host only, through the same engine (health-checked, rolls back)')
    .argument('<path>', 'store path of the generation')
    .option('--source <url>', 'substituter to fetch from (repeatable)', collect)
    .option('--dry-run', 'only show what would change')
    .option('--json', 'machine-readable output')
    .action(async (path: string, o: { source?: string[], dryRun?: boolean, json?: boolean }) => {
      const r = await (await client()).post<{ preview: string, outcome: { status: string, reason?: string, generation?: { number: number } } | null }>('/v1/apply', { path, sources: o.source ?? [], dryRun: o.dryRun === true })
      if (o.json === true) return out(JSON.stringify(r))
      out(r.preview.trimEnd() || '(no closure differences)')
      if (r.outcome === null) return
      out(`apply: ${r.outcome.status}${r.outcome.generation !== undefined ? ` (generation ${r.outcome.generation.number})` : ''}${r.outcome.reason !== undefined ? `: ${r.outcome.reason}` : ''}`)
      if (r.outcome.status !== 'ok') process.exitCode = 5
    })

  program.command('rollback')
    .description('roll this host back to a generation, or publish a release that rolls a release back')
    .option('--to <n>', 'generation number (default: the one before the current)')
    .option('--release <id>', 'publish a new release that returns this release\'s targets to the paths of the last release the fleet ran healthy')
    .option('--json', 'machine-readable output')
    .action(async (o: { to?: string, release?: string, json?: boolean }) => {
      const c = await client()
      if (o.release !== undefined) {
        const body = await c.post<ReleaseBody>(`/v1/releases/${encodeURIComponent(o.release)}/rollback`)
        if (o.json === true) return out(JSON.stringify(body))
        return out(`published rollback release ${body.id} #${body.number}: ${body.targets.map((t) => t.path).join(', ')}`)
      }
      const r = await c.post<{ generation: { number: number, path: string }, healthy: boolean, failure?: string }>('/v1/rollback', o.to !== undefined ? { to: Number(o.to) } : {})
      if (o.json === true) return out(JSON.stringify(r))
      out(`rolled back to generation ${r.generation.number} (${r.generation.path}): ${r.healthy ? 'healthy' : `UNHEALTHY: ${r.failure ?? ''}`}`)
      if (!r.healthy) process.exitCode = 5
    })
}
