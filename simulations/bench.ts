// `npm run bench -- NAME [args]` runs one benchmark (simulations/bench/NAME.ts, whose `run(args)`
// returns the flat record printed as the last line; `--quick` is the small run of the same
// code). With no NAME every benchmark runs, each in a process of its own, and a table of their
// figures against their targets is printed. `npm run bench -- --readme` runs every benchmark AND
// every scenario the README shows (simulations/figures.ts) and writes their figures into
// README.md with the machine, Node, date and commit they ran on: the README's figures are
// generated, never typed by hand.
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { FIGURES, type Result } from './figures.js'
import { benchTable, runChild, writeReadme } from './readme.js'
import { runModule } from './run-one.js'

export type BenchResult = Result

const dir = fileURLToPath(new URL('bench/', import.meta.url))
const available = readdirSync(dir).filter(f => f.endsWith('.ts')).map(f => f.slice(0, -3)).sort()

const argv = process.argv.slice(2)
const [name, ...args] = argv
if (name === '--readme') {
  await writeReadme(FIGURES)
  process.exit(0)
}
if (name !== undefined) {
  if (!available.includes(name)) {
    console.error(`bench: unknown benchmark "${name}"; available: ${available.join(', ')}`)
    process.exit(2)
  }
  await runModule(`bench ${name}`, join(dir, `${name}.ts`), args)
}
const rows: Array<{ name: string, result: Result }> = []
for (const n of available) rows.push({ name: n, result: (await runChild('bench', n, [])).result })
console.log(`\n${benchTable(rows, FIGURES)}`)
process.exit(0)
