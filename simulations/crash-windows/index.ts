// `npm run sim -- crash-windows [--quick]`: real daemons (real libp2p, real Nix) SIGKILLed in
// every crash window of the deploy agent at once, one victim host per window (run.ts), then
// checked for exactly one apply-start and one apply-ok per attempt on every host. `--quick` runs
// the first window only. CI runs one seeded window (test/node/deploy-exactly-once.test.ts).
import type { Result } from '../figures.js'
import { crashWindows, WINDOWS } from './run.js'

export async function run (args: string[]): Promise<Result> {
  const windows = args.includes('--quick') ? WINDOWS.slice(0, 1) : WINDOWS
  const t0 = Date.now()
  const r = await crashWindows(windows, (line) => { process.stderr.write(`crash-windows: ${line}\n`) })
  for (const p of r.problems) process.stderr.write(`crash-windows: ${p}\n`)
  return { sim: 'crash-windows', windows: windows.join(','), hosts: r.hosts, checked: r.checked, violations: r.problems.length, wall_ms: Date.now() - t0 }
}
