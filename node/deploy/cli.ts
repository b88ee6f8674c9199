// CLI commands of deploys: releases (publish, status, list, pause/resume/abort), generations,
// local apply and rollback. Every command talks to the running daemon.
import type { Command } from 'commander'
import { realpath } from 'node:fs/promises'
import type { ControlClient } from '../client.js'
import type { PublishParams } from './agent.js'
import type { MemberRow } from '../routes.js'
import { NodeError } from '../errors.js'
import { watchExitCode, type ReleaseBody, type ReleaseStatus, type Flag, type Wave } from '../../protocols/rollout/index.js'
import { STORE_PATH_RE } from '../../crypto/ids.js'
import { collect, parseCount, parseDuration, parsePercentOrCount, usage } from '../cli-parse.js'
import { PEERS_SOURCE } from './sources.js'
import { defaultGate, safetyFlags, withWaveGates, type SafetyFlags } from './cli-publish.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }

/** Nix store URL schemes a substituter can have (`nix help-stores`). */
const STORE_SCHEMES = ['http:', 'https:', 'file:', 's3:', 'gs:', 'ssh:', 'ssh-ng:', 'daemon:', 'local:', 'unix:']

function parseSource (text: string): string {
  if (text === PEERS_SOURCE || (URL.canParse(text) && STORE_SCHEMES.includes(new URL(text).protocol))) return text
  usage(`--source: "${text}" is neither a substituter URL (https://cache.example.org, s3://bucket, ssh://host, file:///path) nor "${PEERS_SOURCE}"`)
}

function parseStorePath (flag: string, text: string): string {
  if (!STORE_PATH_RE.test(text)) usage(`${flag}: "${text}" is not a Nix store path; write /nix/store/HASH-NAME (what "nix build --print-out-paths" prints)`)
  return text
}

/** `--gate healthy=100%,soak=30s` */
export function parseGate (text: string): Wave['gate'] {
  const gate = { healthy: 100, soakMs: 0 }
  for (const part of text.split(',')) {
    const [k, v] = part.split('=')
    if (k === 'healthy' && v !== undefined && /^\d+%?$/.test(v)) gate.healthy = Number(v.replace('%', ''))
    else if (k === 'soak' && v !== undefined) gate.soakMs = parseDuration('--gate soak', v)
    else usage(`--gate: cannot read "${part}"; write healthy=N%,soak=DURATION (e.g. healthy=90%,soak=5m)`)
  }
  if (gate.healthy > 100) usage(`--gate: healthy=${gate.healthy}% is more than 100%`)
  return gate
}

/** `--waves 1,25%,100%` or `tag:canary,50%,100%` or `host:ID,...`: each wave's selector. */
export function parseWaves (text: string, gate: Wave['gate'], waitOfflineMs?: number): Wave[] {
  return text.split(',').map((w) => {
    const base = { gate, ...(waitOfflineMs !== undefined ? { waitOfflineMs } : {}) }
    if (/^\d+%?$/.test(w)) return { ...base, ...parsePercentOrCount('--waves', w) }
    if (/^tag:./.test(w)) return { ...base, tag: w.slice(4) }
    if (/^host:[^+]+(\+[^+]+)*$/.test(w)) return { ...base, hosts: w.slice(5).split('+') }
    usage(`--waves: cannot read "${w}"; write a comma-separated list of N (hosts), N% (of the fleet, cumulative), tag:T or host:ID+ID (e.g. 1,25%,100%)`)
  })
}

/** `--target tag:web=/nix/store/…` / `host:ID=/nix/store/…`; or --tag/--host with --path. */
export function parseTargets (o: { target?: string[], tag?: string, host?: string, path?: string }, sources: string[]): ReleaseBody['targets'] {
  const targets: ReleaseBody['targets'] = []
  for (const t of o.target ?? []) {
    const m = /^(tag|host):([^=]+)=(\/nix\/store\/\S+)$/.exec(t)
    if (m === null) usage(`--target: cannot read "${t}"; write tag:T=/nix/store/… or host:ID=/nix/store/…`)
    targets.push({ [m[1]]: m[2], path: parseStorePath('--target', m[3]), sources })
  }
  if (o.path !== undefined) {
    if (o.tag !== undefined && o.host !== undefined) usage('--tag and --host together: publish one target per selector with --target')
    targets.push({ ...(o.tag !== undefined ? { tag: o.tag } : {}), ...(o.host !== undefined ? { host: o.host } : {}), path: parseStorePath('--path', o.path), sources })
  } else if (o.tag !== undefined || o.host !== undefined) usage(`--${o.tag !== undefined ? 'tag' : 'host'} needs --path: the generation those hosts get`)
  if (targets.length === 0) usage('name what to deploy: --path /nix/store/… (with --tag T or --host ID), or --target tag:T=/nix/store/… (repeatable)')
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
  if (s.pinnedHosts.length > 0) lines.push(`  pinned (skipped, neither pending nor failed): ${s.pinnedHosts.join(', ')}`)
  if (s.quarantinedPaths.length > 0) lines.push(`  quarantined (refused by every host until cleared): ${s.quarantinedPaths.join(', ')}`)
  if (s.budget !== undefined) lines.push(`  in flight ${s.budget.inFlight} of at most ${s.budget.max} at once (--max-in-flight)`)
  if (s.staleHosts.length > 0) lines.push(`  stale (learned of it after its freshness window and refused it, neither pending nor failed): ${s.staleHosts.join(', ')}`)
  return lines
}

/** A release that would reach no host, or that no host could fetch, is refused before it is signed. */
async function refuseUnreachable (params: PublishParams, c: ControlClient): Promise<void> {
  const [{ unavailablePaths, unmatchedSelectors }, { whyUnavailable }] = await Promise.all([import('./publish-check.js'), import('./sources.js')])
  const problems = unmatchedSelectors(params, await c.get<MemberRow[]>('/v1/members'))
  try {
    problems.push(...await unavailablePaths(params, whyUnavailable))
  } catch (err) {
    if ((err as { code?: string }).code !== 'NIX_MISSING') throw err
    process.stderr.write('fleetmesh: warning: Nix is not installed here, so whether the path can be fetched was not checked\n')
  }
  if (problems.length > 0) throw new NodeError('REFUSED', `not published: ${problems.join('; ')} (--force publishes anyway)`)
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
    .option('--gate <gate>', 'gate of every wave: healthy=N%,soak=DURATION (default healthy=100%,soak=0s); N:healthy=…,soak=… for wave N only, numbered as release status shows them (repeatable)', collect)
    .option('--max-failures <n>', 'hosts that may fail before the release halts', '0')
    .option('--wait-offline <duration>', 'after this long, hosts that said nothing leave a wave\'s gate')
    .option('--apply-deadline <duration>', 'a host whose apply has no outcome this long after it started counts as failed (default 30m)')
    .option('--auto-revert', 'hosts that applied a halted release revert by themselves')
    .option('--quarantine-after <n>', 'a path that fails after activation on this many hosts is refused fleet-wide until cleared (default 1)')
    .option('--fresh-for <duration>', 'a host that first learns of the release later than this after it was signed refuses it (at least 10m; e.g. 7d)')
    .option('--after <release|tag:T|N:tag:T>', 'wait until release RELEASE is complete; tag:T: in every wave (N:tag:T: in wave N) hosts without tag T wait until every T host of this release is healthy (repeatable)', collect)
    .option('--max-in-flight <N|P%>', 'at most N hosts (or P% of its hosts) of this release applying or soaking at once')
    .option('--force', 'publish even when a tag or host matches no member, or no source has the path')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `
Before signing it checks that every tag and host names a member and that the path is in this
host's store (what "peers" serve) or listed by a --source (nix path-info --store URL); it refuses
with the reasons otherwise (exit 5), and --force publishes anyway.

Examples:
  fleetmesh release publish --tag web --path /nix/store/…-nixos-system --waves 1,25%,100% \\
      --gate healthy=100%,soak=30s --max-failures 1
  fleetmesh release publish --target tag:web=/nix/store/…-web --target tag:db=/nix/store/…-db \\
      --source https://cache.example.org --source peers`)
    .action(async (o: { path?: string, tag?: string, host?: string, target?: string[], source?: string[], waves: string, gate?: string[], quarantineAfter?: string, maxFailures: string, waitOffline?: string, applyDeadline?: string, autoRevert?: boolean, force?: boolean, json?: boolean } & SafetyFlags) => {
      const sources = (o.source ?? [PEERS_SOURCE]).map(parseSource)
      const gate = parseGate(defaultGate(o.gate))
      const { waves, ...safety } = safetyFlags(withWaveGates(parseWaves(o.waves, gate, o.waitOffline !== undefined ? parseDuration('--wait-offline', o.waitOffline) : undefined), o.gate, parseGate), o)
      const maxFailures = parseCount('--max-failures', o.maxFailures, 0)
      const applyDeadlineMs = o.applyDeadline !== undefined ? parseDuration('--apply-deadline', o.applyDeadline) : undefined
      if (applyDeadlineMs === 0) usage('--apply-deadline: must be longer than 0 (e.g. 30m)')
      const params: PublishParams = {
        targets: parseTargets(o, sources),
        waves,
        maxFailures,
        autoRevert: o.autoRevert === true,
        ...(applyDeadlineMs !== undefined ? { applyDeadlineMs } : {}),
        ...(o.quarantineAfter !== undefined ? { quarantineAfter: parseCount('--quarantine-after', o.quarantineAfter, 1) } : {}),
        ...safety
      }
      const c = await client()
      if (o.force !== true) await refuseUnreachable(params, c)
      const body = await c.post<ReleaseBody>('/v1/releases', params)
      if (o.json === true) return out(JSON.stringify(body))
      out(`published release ${body.id} #${body.number}: ${body.targets.length} target(s), ${body.waves.length} wave(s)`)
    })

  release.command('status')
    .description('per wave: pending, applying, healthy, failed, offline; why a wave waits')
    .argument('[id]', 'release id (default: the newest)')
    .option('--watch', 'refresh until the release ends; exit 0 only when done (6 halted, 7 aborted or refused, 8 superseded)')
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
      for (const n of [a, b]) if (!/^\d+$/.test(n)) usage(`generations diff: generation "${n}" is not a whole number; write the numbers "fleetmesh generations" lists`)
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
      // `./result` of nix build is a link to the store path: take what it points at.
      const real = await realpath(path).catch(() => path)
      const body = { path: parseStorePath('apply', STORE_PATH_RE.test(real) ? real : path), sources: (o.source ?? []).map(parseSource), dryRun: o.dryRun === true }
      const r = await (await client()).post<{ preview: string, outcome: { status: string, reason?: string, generation?: { number: number } } | null }>('/v1/apply', body)
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
      const to = o.to !== undefined ? parseCount('--to', o.to, 1) : undefined
      if (to !== undefined && o.release !== undefined) usage('--to and --release do not go together: --to rolls this host back, --release the fleet')
      const c = await client()
      if (o.release !== undefined) {
        const body = await c.post<ReleaseBody>(`/v1/releases/${encodeURIComponent(o.release)}/rollback`)
        if (o.json === true) return out(JSON.stringify(body))
        return out(`published rollback release ${body.id} #${body.number}: ${body.targets.map((t) => t.path).join(', ')}`)
      }
      const r = await c.post<{ generation: { number: number, path: string }, healthy: boolean, failure?: string }>('/v1/rollback', to !== undefined ? { to } : {})
      if (o.json === true) return out(JSON.stringify(r))
      out(`rolled back to generation ${r.generation.number} (${r.generation.path}): ${r.healthy ? 'healthy' : `UNHEALTHY: ${r.failure ?? ''}`}`)
      if (!r.healthy) process.exitCode = 5
    })
}
