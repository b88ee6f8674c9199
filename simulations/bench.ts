// `npm run bench -- NAME [args]` runs one benchmark; with no NAME it runs every one in turn
// and prints a table of their figures against their targets. `npm run bench -- --readme`
// does the same and writes that table, with the machine it ran on, into README.md between
// the bench markers: the README's figures are generated, never typed by hand.
// Each benchmark lives in simulations/bench/NAME.ts and exports `run(args)` returning the flat
// record it also prints as its last line.
import { readdirSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export type BenchResult = Record<string, number | string>
export interface BenchModule { run: (args: string[]) => Promise<BenchResult> }

/** The figure each benchmark is judged on, and its target (from the issues). */
const TARGETS: Record<string, Array<{ key: string, op: '<=' | '>=' | '<', value: number }>> = {
  handshake: [{ key: 'connect_ratio', op: '<=', value: 1.0 }, { key: 'throughput_ratio', op: '>=', value: 0.95 }],
  audit: [{ key: 'append_per_s', op: '>=', value: 5000 }, { key: 'catchup_vs_raw', op: '>=', value: 0.7 }],
  rollback: [{ key: 'detect_to_healthy_ms_p50', op: '<', value: 1000 }],
  rooms: [{ key: 'latency_p50_ms', op: '<=', value: 20 }],
  footprint: [{ key: 'cli_help_ms_p50', op: '<=', value: 300 }, { key: 'idle_rss_mib', op: '<=', value: 100 }]
}

const here = fileURLToPath(new URL('.', import.meta.url))
const dir = join(here, 'bench')
const available = readdirSync(dir).filter(f => f.endsWith('.ts')).map(f => f.slice(0, -3)).sort()

async function runOne (name: string, args: string[]): Promise<BenchResult> {
  if (!available.includes(name)) {
    throw new Error(`unknown benchmark "${name}"; available: ${available.join(', ')}`)
  }
  const mod = await import(join(dir, `${name}.ts`)) as BenchModule
  const result = await mod.run(args)
  console.log(JSON.stringify(result))
  return result
}

function verdict (v: number | string | undefined, op: string, target: number): string {
  if (typeof v !== 'number') return 'missing'
  const ok = op === '<=' ? v <= target : op === '>=' ? v >= target : v < target
  return ok ? 'met' : 'MISSED'
}

export function table (rows: BenchResult[]): string {
  const lines = ['| benchmark | figures | target | result |', '|---|---|---|---|']
  for (const r of rows) {
    const name = String(r.bench)
    const figures = Object.entries(r).filter(([k]) => k !== 'bench').map(([k, v]) => `${k}=${v}`).join(', ')
    const targets = TARGETS[name] ?? []
    lines.push(`| ${name} | ${figures} | ${targets.map((t) => `${t.key} ${t.op} ${t.value}`).join('; ') || '-'} | ${targets.map((t) => verdict(r[t.key], t.op, t.value)).join('; ') || '-'} |`)
  }
  return lines.join('\n')
}

function machine (): string {
  const cpu = cpus()
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`
}

async function writeReadme (text: string): Promise<void> {
  const path = join(here, '..', 'README.md')
  const readme = await readFile(path, 'utf8')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  const a = readme.indexOf(start)
  const b = readme.indexOf(end)
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} … ${end} section`)
  await writeFile(path, `${readme.slice(0, a + start.length)}\n${text}\n${readme.slice(b)}`)
}

const argv = process.argv.slice(2)
const readme = argv.includes('--readme')
const [name, ...args] = argv.filter((a) => a !== '--readme')
try {
  if (name !== undefined) {
    await runOne(name, args)
  } else {
    const rows: BenchResult[] = []
    for (const n of available) rows.push(await runOne(n, []))
    const text = `Measured by \`npm run bench -- --readme\` on ${machine()}.\n\n${table(rows)}`
    console.log(`\n${text}`)
    if (readme) await writeReadme(text)
  }
  process.exit(0)
} catch (err) {
  console.error(`bench: ${(err as Error).message}`)
  process.exit(1)
}
