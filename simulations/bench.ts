// `npm run bench -- NAME [args]` runs one benchmark; with no NAME it runs every one in turn
// and prints a table of their final JSON lines. Each benchmark lives in simulations/bench/NAME.ts
// and exports `run(args)` returning the flat record it also prints as its last line.
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export type BenchResult = Record<string, number | string>
export interface BenchModule { run: (args: string[]) => Promise<BenchResult> }

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'bench')
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

const [name, ...args] = process.argv.slice(2)
try {
  if (name !== undefined) {
    await runOne(name, args)
  } else {
    const rows: BenchResult[] = []
    for (const n of available) rows.push(await runOne(n, []))
    for (const r of rows) {
      console.log(Object.entries(r).map(([k, v]) => `${k}=${v}`).join('  '))
    }
  }
  process.exit(0)
} catch (err) {
  console.error(`bench: ${(err as Error).message}`)
  process.exit(1)
}
