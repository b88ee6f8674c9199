// CLI commands of deploys: releases (publish, status, list, pause/resume/abort), generations,
// local apply and rollback. Every command talks to the running daemon.
import type { Command } from 'commander'
import { realpath } from 'node:fs/promises'
import type { ControlClient } from '../client.js'
import type { PublishParams } from './agent.js'
import type { MemberRow } from '../routes.js'
import { NodeError } from '../errors.js'
import type { ReleaseBody, ReleaseStatus, Flag } from '../../protocols/rollout/index.js'
import { STORE_PATH_RE } from '../../crypto/ids.js'
import { collect, parseCount, usage } from '../cli-parse.js'
import { parseSource, parseStorePath, publishOptions, publishParams, type PublishOptions } from './cli-publish.js'
import { registerStatusCommand } from './cli-status.js'
import { registerPlanCommands } from './cli-plan.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }

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

  publishOptions(release.command('publish'))
    .description('sign a release into the audit log (admins only)')
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
    .action(async (o: PublishOptions & { force?: boolean }) => {
      const params = publishParams(o)
      const c = await client()
      if (o.force !== true) await refuseUnreachable(params, c)
      const body = await c.post<ReleaseBody>('/v1/releases', params)
      if (o.json === true) return out(JSON.stringify(body))
      out(`published release ${body.id} #${body.number}: ${body.targets.length} target(s), ${body.waves.length} wave(s)`)
    })

  registerStatusCommand(release, client)
  registerPlanCommands(release, program, client)

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
