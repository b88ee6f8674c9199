// `npm run sim -- executor-kill [--quick]`: a real deploy daemon's executor SIGKILLed at every
// phase of an apply (cases.ts: fetch, profile switched, activation, verification, terminal
// journal write, outcome not yet reported, rollback, soak and its rollback), each from a fresh
// host running k1, then restarted: every case must recover and report its attempt exactly once.
// `--quick` runs the first two phases. CI runs a seeded few (test/nixos/crash.test.ts).
import type { Result } from '../figures.js'
import { CASES, openKit } from './cases.js'

export async function run (args: string[]): Promise<Result> {
  const cases = args.includes('--quick') ? CASES.slice(0, 2) : CASES
  const t0 = Date.now()
  const kit = await openKit()
  const failed: string[] = []
  try {
    for (const [i, c] of cases.entries()) {
      try {
        await c.run(kit)
        process.stderr.write(`executor-kill: ok ${i}: ${c.name}\n`)
      } catch (err) {
        failed.push(String(i))
        process.stderr.write(`executor-kill: FAILED ${i}: ${c.name}: ${(err as Error).stack ?? String(err)}\n`)
      }
    }
  } finally {
    await kit.cleanup()
  }
  return { sim: 'executor-kill', phases: cases.length, passed: cases.length - failed.length, failed_cases: failed.join(',') || 'none', wall_ms: Date.now() - t0 }
}
