// `fleetmesh release plan|diff|why` (a dry run, a per-host comparison and a decision trace) and
// `fleetmesh budget set|clear|list` (per-tag budgets across releases). Every command talks to the
// running daemon; `release plan` takes exactly the flags of `release publish` (cli-publish.ts).
// Waves are numbered from 1 for people; --json keeps the 0-based indexes of the bodies.
import type { Command } from 'commander'
import type { ControlClient } from '../client.js'
import { parseCount, usage } from '../cli-parse.js'
import { hostLabels, shortId } from '../host-names.js'
import { BUDGET_SELECTOR_RE, type Decision, type Why } from '../../protocols/rollout/index.js'
import { publishOptions, publishParams, type PublishOptions } from './cli-publish.js'
import type { ClosureChange, DiffRow, PlanReport } from './plan.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }

/** Host labels (name, or a short id) from the members list; ids as they are when it cannot be read. */
async function labeller (c: ControlClient): Promise<(peer: string) => string> {
  const rows = await c.get<Array<{ peerId: string, name?: string }>>('/v1/members').catch(() => [])
  const labels = hostLabels(rows.map((r) => ({ peer: r.peerId, ...(r.name !== undefined ? { name: r.name } : {}) })))
  return (peer) => labels.get(peer) ?? peer
}

function size (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let v = Math.abs(bytes)
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${bytes < 0 ? '-' : '+'}${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}

/** One line for a closure change: "3 packages, +12.3 KiB (a, b, c)", or why there is none. */
export function renderChange (ch: ClosureChange): string {
  if (ch.note !== undefined) return ch.note
  if (ch.changed === 0) return 'no change'
  return `${ch.changed as number} package(s), ${size(ch.bytes as number)} (${(ch.names as string[]).join(', ')}${(ch.changed as number) > (ch.names as string[]).length ? ', …' : ''})`
}

export function renderPlan (r: PlanReport, label: (peer: string) => string): string[] {
  const lines = [`release ${r.id} #${r.number} (not signed: publishing from this host now with the same flags gives this id and these waves, unless a release or membership entry arrives first)`]
  if (r.after !== undefined) lines.push(`  waits for release ${r.after} to complete`)
  for (const w of r.waves) {
    lines.push(`wave ${w.index + 1}: ${w.hosts.length} host(s), gate healthy=${w.gate.healthy}%,soak=${Math.ceil(w.gate.soakMs / 1000)}s${w.after !== undefined ? `, after tag:${w.after}` : ''}`)
    for (const h of w.hosts) {
      lines.push(`  ${label(h.host)}  ${h.path}  ${renderChange(h.change)}`)
      for (const hold of h.holds) lines.push(`      held: ${hold}`)
    }
  }
  if (r.unassigned.length > 0) lines.push(`not in any wave: ${r.unassigned.map(label).join(', ')}`)
  return lines
}

function renderDecision (d: Decision): string {
  switch (d.action) {
    case 'apply': return `apply ${d.path} (release ${d.release}, wave ${d.wave + 1})`
    case 'wait': return `wait on release ${d.release} (wave ${d.wave + 1}): ${d.reason}`
    case 'none': return `nothing to do${d.release !== undefined ? ` on release ${d.release}` : ''}: ${d.reason}`
    case 'revert': return `revert ${d.path} (release ${d.release})`
    case 'attest': return `write its ${d.kind} entry${d.release !== undefined ? ` for release ${d.release}` : ''}`
  }
}

export function renderWhy (w: Why, label: (peer: string) => string): string[] {
  const lines = [`release ${w.release}, host ${label(w.host)}`]
  if (w.standing !== undefined) lines.push(`  in wave ${w.standing.wave + 1} with ${w.standing.path}; for the gate: ${w.standing.cls}`)
  lines.push(`  decides: ${renderDecision(w.decision)}${w.about || w.decision.release === undefined ? '' : ` (another release than ${w.release}: a host follows one at a time)`}`)
  if (w.causes.length > 0) lines.push('  because:')
  for (const c of w.causes) {
    lines.push(`    [${c.what}] ${c.text}`)
    if (c.entries.length > 0) lines.push(`        rests on: ${c.entries.map((e) => `${e.kind} ${shortId(e.feed)}:${e.seq}`).join(', ')}`)
  }
  return lines
}

export function registerPlanCommands (release: Command, program: Command, client: () => Promise<ControlClient>): void {
  publishOptions(release.command('plan'))
    .description('dry run of release publish: waves and their hosts, what holds each (pins, quarantine, offline, budgets, edges) and what would change on it')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nTakes the flags of "release publish"; signs nothing. Each host\'s change is `nix store diff-closures`\nfrom its current generation (this host: its profile; others: their own outcome entries) to\nits new path, computed where this host\'s store holds both closures.')
    .action(async (o: PublishOptions) => {
      const params = publishParams(o)
      const c = await client()
      const r = await c.post<PlanReport>('/v1/release-plan', params)
      if (o.json === true) return out(JSON.stringify(r))
      for (const l of renderPlan(r, await labeller(c))) out(l)
    })

  release.command('diff')
    .description('per host: its path in release A and in release B, and the closure change where they differ')
    .argument('<a>', 'release id')
    .argument('<b>', 'release id')
    .option('--json', 'machine-readable output')
    .action(async (a: string, b: string, o: { json?: boolean }) => {
      const c = await client()
      const r = await c.get<{ a: string, b: string, hosts: DiffRow[] }>(`/v1/release-diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`)
      if (o.json === true) return out(JSON.stringify(r))
      const label = await labeller(c)
      const differ = r.hosts.filter((h) => h.a !== h.b)
      out(`${differ.length} of ${r.hosts.length} host(s) get another path in ${b} than in ${a}`)
      for (const h of differ) out(`  ${label(h.host)}  ${h.a ?? '(not in it)'} → ${h.b ?? '(not in it)'}${h.change !== undefined ? `  ${renderChange(h.change)}` : ''}`)
    })

  release.command('why')
    .description('what a host decides about a release and why (gate, budget, edge, pin, quarantine, freshness, seal), with the entries it rests on')
    .argument('<id>', 'release id')
    .argument('[host]', 'peer id, unique id prefix or host name (default: this host)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, host: string | undefined, o: { json?: boolean }) => {
      const c = await client()
      const w = await c.get<Why>(`/v1/releases/${encodeURIComponent(id)}/why${host !== undefined ? `?host=${encodeURIComponent(host)}` : ''}`)
      if (o.json === true) return out(JSON.stringify(w))
      for (const l of renderWhy(w, await labeller(c))) out(l)
    })

  const budget = program.command('budget')
    .description('per-tag budgets across every release: at most N hosts of a tag in flight at once, fleet-wide')
  const selector = (text: string): string => {
    if (!BUDGET_SELECTOR_RE.test(text)) usage(`budget: "${text}" is not a selector; write tag:T (e.g. tag:db)`)
    return text
  }
  budget.command('set')
    .description('at most N hosts matching SELECTOR applying or soaking at once, whatever releases are active (admins only)')
    .argument('<selector>', 'tag:T')
    .argument('<n>', 'hosts in flight at once, at least 1')
    .option('--json', 'machine-readable output')
    .action(async (sel: string, n: string, o: { json?: boolean }) => {
      const r = await (await client()).post<{ selector: string, max: number, lifts: string[] }>('/v1/budgets', { selector: selector(sel), max: parseCount('budget set', n, 1) })
      if (o.json === true) return out(JSON.stringify(r))
      out(`budget ${r.selector}: at most ${r.max} in flight at once; every host honours it as the entry reaches it`)
    })
  budget.command('clear')
    .description('lift the budget of SELECTOR (admins only)')
    .argument('<selector>', 'tag:T')
    .option('--json', 'machine-readable output')
    .action(async (sel: string, o: { json?: boolean }) => {
      const r = await (await client()).delete<{ selector: string, lifts: string[] }>('/v1/budgets', { selector: selector(sel) })
      if (o.json === true) return out(JSON.stringify(r))
      out(`cleared the budget of ${r.selector} (lifts ${r.lifts.join(', ')})`)
    })
  budget.command('list')
    .description('budgets in effect')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const r = await (await client()).get<{ budgets: Array<{ selector: string, max: number, by: string[] }> }>('/v1/budgets')
      if (o.json === true) return out(JSON.stringify(r))
      if (r.budgets.length === 0) return out('no budgets')
      for (const b of r.budgets) out(`${b.selector}  at most ${b.max} in flight  set by ${b.by.join(', ')}`)
    })
}
