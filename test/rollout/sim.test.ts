// The scale simulator at 200 hosts: behaviour, not timing.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseArgs, simulate } from '../../simulations/scale/index.js'

const base = (extra: string[]) => ({ ...parseArgs(['--hosts', '200', '--no-svg', ...extra]) })

describe('scale simulator (200 hosts)', () => {
  it('every online host receives the release and applies it, wave after wave', () => {
    const r = simulate(base(['--loss', '0.05']))
    assert.equal(r.reached_online, r.online_at_publish)
    assert.equal(r.applied_ok, 200)
    assert.ok(Number(r.reach50_ms) <= Number(r.reach99_ms) && Number(r.reach99_ms) <= Number(r.reach100_ms))
    // waves: the canary soaks before anyone else starts, so the rollout takes at least two soaks
    assert.ok(Number(r.rollout_done_ms) > 2 * 30_000)
  })

  it('a failing canary halts the release: no later-wave host ever starts, every online host learns of it', () => {
    const r = simulate(base(['--fail-canary', '--churn', '0.1']))
    assert.equal(r.later_wave_starts, 0)
    assert.equal(r.applied_ok, 0)
    assert.equal(r.halt_reached, r.halt_online)
  })

  it('hosts back from offline catch up and converge', () => {
    const r = simulate(base(['--churn', '0.2', '--seed', '7']))
    assert.ok(Number(r.returned) > 0)
    assert.equal(r.applied_ok, 200, 'returning hosts end on the release too')
  })

  it('folding only decision-relevant entries decides exactly as folding everything', () => {
    for (const extra of [['--seed', '3'], ['--seed', '5', '--loss', '0.05', '--churn', '0.2'], ['--seed', '6', '--churn', '0.1', '--fail-canary']]) {
      const a = simulate(base(extra))
      const b = simulate(base([...extra, '--fold-all']))
      // acts_digest covers every apply/revert decision with its host and time
      for (const k of ['acts_digest', 'applied_ok', 'rollout_done_ms', 'reach99_ms', 'sim_end_ms', 'entries']) assert.equal(a[k], b[k], `${extra.join(' ')}: ${k}`)
      assert.ok(Number(a.folds) < Number(b.folds))
    }
  })
})
