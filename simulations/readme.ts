// Regenerating the README's figures: every benchmark and scenario of simulations/figures.ts runs
// in a process of its own (so one run's workers, sockets and heap never weigh on the next), its
// last stdout line is its record, and the blocks between the README's markers are rewritten with
// exactly what was printed, under one line naming the machine, Node, date and commit.
import { execFileSync, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { fieldDrift, verdict, type Figure, type Result } from './figures.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RESOURCES = /^resources (\{.*\})$/

export interface ChildRun { result: Result, wallMs: number, maxRssKb?: number }

/**
 * `npm run bench|sim -- NAME ARGS` in a child process on this Node. Its progress goes to our
 * stderr as it comes; a run that fails or prints no record throws with its exit code.
 */
/**
 * The 10,000-host scale scenario holds every simulated host's rollout state in one process (about
 * 0.5 MiB a host): more than V8's default heap. The same limit as `npm run sim` (package.json).
 */
const SIM_HEAP = '--max-old-space-size=16384'

export async function runChild (kind: 'bench' | 'sim', name: string, args: string[]): Promise<ChildRun> {
  const script = join(ROOT, 'simulations', `${kind}.ts`)
  const t0 = performance.now()
  const child = spawn(process.execPath, [SIM_HEAP, '--import', 'tsx', script, name, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let maxRssKb: number | undefined
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  let pending = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    pending += d
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      const m = RESOURCES.exec(line)
      if (m !== null) maxRssKb = (JSON.parse(m[1]) as { max_rss_kb: number }).max_rss_kb
      else process.stderr.write(`${line}\n`)
    }
  })
  const code = await new Promise<number | null>((resolve) => { child.on('close', resolve) })
  const wallMs = performance.now() - t0
  const last = stdout.trim().split('\n').at(-1) ?? ''
  if (code !== 0) throw new Error(`${kind} ${[name, ...args].join(' ')} exited ${code}`)
  let result: Result
  try {
    result = JSON.parse(last) as Result
  } catch {
    throw new Error(`${kind} ${[name, ...args].join(' ')} printed no JSON record as its last line: ${JSON.stringify(last.slice(0, 200))}`)
  }
  return { result, wallMs, maxRssKb }
}

export function benchTable (rows: Array<{ name: string, result: Result }>, figures: Figure[]): string {
  const lines = ['| benchmark | figures | target | result |', '|---|---|---|---|']
  for (const { name, result } of rows) {
    const targets = figures.find((f) => f.kind === 'bench' && f.name === name)?.targets ?? []
    const shown = Object.entries(result).filter(([k]) => k !== 'bench').map(([k, v]) => `${k}=${v}`).join(', ')
    lines.push(`| ${name} | ${shown} | ${targets.map((t) => `${t.key} ${t.op} ${t.value}`).join('; ') || '-'} | ${targets.map((t) => verdict(result, t)).join('; ') || '-'} |`)
  }
  return lines.join('\n')
}

function git (args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
}

/** Where and on what the figures were measured: they mean nothing without it. */
export function provenance (): string {
  const cpu = cpus()
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== ''
  const commit = `${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ' with uncommitted changes' : ''}`
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, commit ${commit}`
}

async function replaceBlock (readme: string, marker: string, text: string): Promise<string> {
  const start = `<!-- ${marker}:start -->`
  const end = `<!-- ${marker}:end -->`
  const a = readme.indexOf(start)
  const b = readme.indexOf(end)
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} … ${end} section`)
  return `${readme.slice(0, a + start.length)}\n${text}\n${readme.slice(b)}`
}

/** Runs every figure and rewrites the README's bench and sim blocks with what they printed. */
export async function writeReadme (figures: Figure[]): Promise<void> {
  const where = provenance()
  const benches: Array<{ name: string, result: Result }> = []
  const sims: string[] = []
  const notes: string[] = []
  for (const f of figures) {
    process.stderr.write(`readme: ${f.kind} ${[f.name, ...f.args].join(' ')}\n`)
    const run = await runChild(f.kind, f.name, f.args)
    const drift = fieldDrift(f, run.result)
    if (drift.missing.length > 0 || drift.extra.length > 0) throw new Error(`${f.name}: fields drifted from simulations/figures.ts (missing ${drift.missing.join(', ') || 'none'}; extra ${drift.extra.join(', ') || 'none'})`)
    if (f.kind === 'bench') {
      benches.push({ name: f.name, result: run.result })
      continue
    }
    const rss = run.maxRssKb !== undefined ? `, max RSS ${(run.maxRssKb / 1024).toFixed(0)} MiB` : ''
    sims.push(['```', `$ npm run sim -- ${[f.name, ...f.args].join(' ')}`, JSON.stringify(run.result), `wall ${(run.wallMs / 1000).toFixed(1)} s${rss}`, '```'].join('\n'))
    if (f.note !== undefined) notes.push(`- \`${f.name}${f.args.length > 0 ? ' ' + f.args.join(' ') : ''}\`: ${f.note}`)
  }
  const path = join(ROOT, 'README.md')
  let readme = await readFile(path, 'utf8')
  readme = await replaceBlock(readme, 'bench', `Measured by \`npm run bench -- --readme\` on ${where}.\n\n${benchTable(benches, figures)}`)
  readme = await replaceBlock(readme, 'sim', `Run by \`npm run bench -- --readme\` on the same machine (${where}); wall time and peak RSS of each scenario's process:\n\n${sims.join('\n')}\n\n${notes.join('\n')}`)
  await writeFile(path, readme)
  process.stderr.write('readme: README.md rewritten\n')
}
