// Runs one benchmark or scenario module in this process and prints its record as the last line
// of stdout, then how much memory the run took on stderr (`resources {...}`), which the README
// regeneration reads. Shared by `npm run bench -- NAME` and `npm run sim -- NAME`.
import type { Result } from './figures.js'

export interface RunModule { run: (args: string[]) => Promise<Result> }

export async function runModule (label: string, file: string, args: string[]): Promise<never> {
  try {
    const mod = await import(file) as RunModule
    console.log(JSON.stringify(await mod.run(args)))
    process.stderr.write(`resources ${JSON.stringify({ max_rss_kb: process.resourceUsage().maxRSS })}\n`)
    process.exit(0)
  } catch (err) {
    console.error(`${label}: ${(err as Error).stack ?? String(err)}`)
    process.exit(1)
  }
}
