// Every benchmark and scenario the README shows still runs: its quick mode (the same code on a
// small fleet), made smaller still where the command takes a size, completes and prints a JSON
// record with exactly the fields simulations/figures.ts lists, each a finite number, a non-empty
// string or a boolean. Behaviour, not speed: no figure is judged. What the figures mean is
// tested elsewhere on the same code (test/rollout/sim.test.ts and test/simulations/log-scale.test.ts
// run scale and catchup in process); here it is the command, its arguments and its record.
// The figures are split over test files (quick-bench, quick-sim, test/adversary/quick) so the
// runner, which takes files in path order, two at a time, does not end on one long file.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FIGURES, fieldDrift, type Figure } from '../../simulations/figures.js'
import { runChild } from '../../simulations/readme.js'

/**
 * The smallest sizes each command accepts, after its `--quick` (the last value of an option
 * wins): a field that a size of one entry, one run or a few hosts still prints is printed the same
 * way at any size.
 */
const SMALLEST: Record<string, string[]> = {
  'bench audit': ['--entries', '500'],
  'bench handshake': ['--connections', '4', '--mib', '1'],
  'bench rollback': ['1'],
  'bench rooms': ['5', '10'],
  'bench watchdog': ['1'],
  'sim rollout': ['--hosts', '5'],
  'sim partition': ['--hosts', '6'],
  'sim chaos': ['--runs', '1', '--hosts', '4'],
  'sim scale': ['--hosts', '50'],
  'sim catchup': ['--hosts', '10', '--history', '4d', '--offline', '2d']
}

const argsOf = (f: Figure): string[] => [...f.quick, ...(SMALLEST[`${f.kind} ${f.name}`] ?? [])]

/** The quick modes of the figures `select` picks; every figure must be picked by one test file. */
export function quickModes (select: (f: Figure) => boolean): void {
  describe('quick modes of the README\'s benchmarks and scenarios', () => {
    for (const f of FIGURES.filter(select)) {
      it(`${f.kind} ${[f.name, ...argsOf(f)].join(' ')} prints every field`, { timeout: 5 * 60_000 }, async () => {
        const { result } = await runChild(f.kind, f.name, argsOf(f))
        assert.equal(result[f.kind], f.name)
        assert.deepEqual(fieldDrift(f, result), { missing: [], extra: [] })
        for (const k of f.fields) {
          const v = result[k]
          assert.ok((typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.length > 0) || typeof v === 'boolean', `${k} = ${JSON.stringify(v)}`)
        }
      })
    }
  })
}

/** The adversary scenario, the longest quick mode, runs from a file the runner takes early. */
export const isAdversary = (f: Figure): boolean => f.kind === 'sim' && f.name === 'adversary'
