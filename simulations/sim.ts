// `npm run sim -- NAME [args]` runs the scenario in simulations/NAME/index.ts, which exports
// `run(args)` and returns a flat record printed as the last line (one JSON object).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import type { BenchResult } from './bench.js'

interface SimModule { run: (args: string[]) => Promise<BenchResult> }

const [name, ...args] = process.argv.slice(2)
const here = fileURLToPath(new URL('.', import.meta.url))
const file = name !== undefined ? join(here, name, 'index.ts') : ''
if (name === undefined || !/^[a-z-]+$/.test(name) || !existsSync(file)) {
  console.error('usage: npm run sim -- NAME [args]   (scenarios: rollout, scale, partition)')
  process.exit(2)
}
try {
  const mod = await import(file) as SimModule
  console.log(JSON.stringify(await mod.run(args)))
  process.exit(0)
} catch (err) {
  console.error(`sim ${name}: ${(err as Error).stack ?? String(err)}`)
  process.exit(1)
}
