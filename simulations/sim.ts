// `npm run sim -- NAME [args]` runs the scenario in simulations/NAME/index.ts, which exports
// `run(args)` and returns a flat record printed as the last line (one JSON object). Every
// scenario takes `--quick`: the same code and fields on a small fleet.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { runModule } from './run-one.js'

const [name, ...args] = process.argv.slice(2)
const here = fileURLToPath(new URL('.', import.meta.url))
const file = name !== undefined ? join(here, name, 'index.ts') : ''
if (name === undefined || !/^[a-z-]+$/.test(name) || !existsSync(file)) {
  console.error('usage: npm run sim -- NAME [args] [--quick]   (scenarios: rollout, scale, catchup, partition, chaos, adversary, crash-windows, executor-kill, safety)')
  process.exit(2)
}
await runModule(`sim ${name}`, file, args)
