// `fleetmesh drift [--json] [--last]`: checks this host for drift now (or shows the last check)
// through the daemon. Exit code 1 when the host drifted, so a cron job or a monitoring probe can
// act on it; 0 when it runs what its log says and its store verifies.
import type { Command } from 'commander'
import type { ControlClient } from '../client.js'
import type { DriftReport } from './monitor.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }

/** Exit code of a drift report: 1 on drift, else 0. */
const DRIFT_EXIT = 1

function renderDrift (r: DriftReport): string[] {
  const lines = [r.skipped !== undefined ? `not checked: ${r.skipped}` : r.drift ? `DRIFT: ${r.what.join(', ')}` : 'no drift']
  const row = (label: string, value: string): void => { lines.push(`  ${label.padEnd(10)} ${value}`) }
  row('activated', r.activated ?? '(no system link)')
  row('profile', r.profile === null ? '(no generation)' : `generation ${r.profile.number}: ${r.profile.path}`)
  row('desired', r.desired === null ? '(the log names none)' : `${r.desired.path} (${r.desired.kind} #${r.desired.seq})`)
  if (r.store !== null) row('store', `${r.store.paths} paths of ${r.store.root} verified, ${r.store.modifiedCount} modified${r.store.modified.length > 0 ? `: ${r.store.modified.join(' ')}` : ''}`)
  else if (r.storeError !== undefined) row('store', `not verified: ${r.storeError}`)
  if (r.repair !== undefined) row('repair', `${r.repair.outcome}${r.repair.reason !== undefined ? `: ${r.repair.reason}` : ''}`)
  if (r.wrote.length > 0) row('logged', r.wrote.join(', '))
  if (r.suppressed === true) row('logged', 'an entry was due but too many drift entries were written this hour')
  return lines
}

export function registerDriftCommands (program: Command, client: () => Promise<ControlClient>): void {
  program.command('drift')
    .description('check whether this host runs what its log says (activated system, profile, store integrity); exit 1 on drift')
    .option('--last', 'show the last check (periodic or on demand) instead of checking now')
    .option('--json', 'machine-readable output')
    .action(async (o: { last?: boolean, json?: boolean }) => {
      const c = await client()
      const r = o.last === true ? (await c.get<{ report: DriftReport | null }>('/v1/drift')).report : await c.post<DriftReport>('/v1/drift/check')
      if (o.json === true) out(JSON.stringify(r))
      else if (r === null) out('no drift check has run yet')
      else for (const l of renderDrift(r)) out(l)
      if (r?.drift === true) process.exitCode = DRIFT_EXIT
    })
}
