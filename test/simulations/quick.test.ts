// Every benchmark and scenario the README shows still runs: its quick mode (the same code on a
// small fleet) completes and prints a JSON record with exactly the fields simulations/figures.ts
// lists, each a finite number, a non-empty string or a boolean. Behaviour, not speed: no figure is judged.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FIGURES, fieldDrift } from '../../simulations/figures.js'
import { runChild } from '../../simulations/readme.js'

describe('quick modes of the README\'s benchmarks and scenarios', () => {
  for (const f of FIGURES) {
    it(`${f.kind} ${[f.name, ...f.quick].join(' ')} prints every field`, { timeout: 5 * 60_000 }, async () => {
      const { result } = await runChild(f.kind, f.name, f.quick)
      assert.equal(result[f.kind], f.name)
      assert.deepEqual(fieldDrift(f, result), { missing: [], extra: [] })
      for (const k of f.fields) {
        const v = result[k]
        assert.ok((typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.length > 0) || typeof v === 'boolean', `${k} = ${JSON.stringify(v)}`)
      }
    })
  }
})
