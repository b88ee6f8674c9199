// The scale simulator at 200 hosts: behaviour, not timing.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseArgs, simulate, type ScaleResult } from '../../simulations/scale/index.js'

const sim = async (extra: string[]): Promise<ScaleResult> => await simulate(parseArgs(['--hosts', '200', '--no-svg', ...extra]))

describe('scale simulator (200 hosts)', () => {
  it('every online host receives the release and applies it, wave after wave, each attesting its own soak', async () => {
    const r = await sim(['--loss', '0.05'])
    assert.equal(r.reached_online, r.online_at_publish)
    assert.equal(r.applied_ok, 200)
    assert.equal(r.soaked, 200, 'every host wrote `soaked` after its soak')
    assert.equal(r.entries, 1 + 3 * 200, 'release, then apply-start, apply-ok and soaked per host: no overdue entry')
    assert.ok(Number(r.reach50_ms) <= Number(r.reach99_ms) && Number(r.reach99_ms) <= Number(r.reach100_ms))
    // waves: the canary soaks before anyone else starts, so the rollout takes at least two soaks
    assert.ok(Number(r.rollout_done_ms) > 2 * 30_000)
  })

  it('a failing canary halts the release: no later-wave host ever starts, every online host learns of it', async () => {
    const r = await sim(['--fail-canary', '--churn', '0.1'])
    assert.equal(r.later_wave_starts, 0)
    assert.equal(r.applied_ok, 0)
    assert.equal(r.halt_reached, r.halt_online)
  })

  it('hosts back from down catch up, soak again from zero, and converge', async () => {
    const r = await sim(['--churn', '0.2', '--seed', '7'])
    assert.ok(Number(r.returned) > 0)
    assert.equal(r.applied_ok, 200, 'returning hosts end on the release too')
    assert.equal(r.soaked, 200)
  })

  it('wall clocks off by up to ±5 min change no decision: soaks are measured by the host that soaks', async () => {
    for (const extra of [['--seed', '2'], ['--seed', '4', '--churn', '0.2', '--loss', '0.05']]) {
      const a = await sim(extra)
      const b = await sim([...extra, '--skew-ms', '300000'])
      for (const k of ['acts_digest', 'applied_ok', 'soaked', 'rollout_done_ms', 'entries']) assert.equal(a[k], b[k], `${extra.join(' ')}: ${k}`)
    }
  })

  it('a hung canary is declared overdue by one host at its apply deadline, and the release halts there', async () => {
    const r = await sim(['--fold-all', '--hang-canary', '--apply-deadline-ms', '120000'])
    assert.equal(r.overdue, 1, 'the first host in line writes it; the others see it before their own fallback timers run out')
    assert.equal(r.later_wave_starts, 0)
    assert.equal(r.applied_ok, 0)
    assert.ok(Number(r.sim_end_ms) > 120_000)
  })

  it('folding only decision-relevant entries decides exactly as folding everything', async () => {
    for (const extra of [['--seed', '3'], ['--seed', '5', '--loss', '0.05', '--churn', '0.2'], ['--seed', '6', '--churn', '0.1', '--fail-canary']]) {
      const a = await sim(extra)
      const b = await sim([...extra, '--fold-all'])
      // acts_digest covers every apply, revert and attest decision with its host and time
      for (const k of ['acts_digest', 'applied_ok', 'soaked', 'rollout_done_ms', 'reach99_ms', 'sim_end_ms', 'entries']) assert.equal(a[k], b[k], `${extra.join(' ')}: ${k}`)
      assert.ok(Number(a.folds) < Number(b.folds))
    }
  })

  it('refuses a shortcut run in which an apply came near its deadline, where deadline timers could differ', async () => {
    await assert.rejects(sim(['--apply-deadline-ms', '70000']), /fold shortcut cannot follow deadline timers/)
    const r = await sim(['--apply-deadline-ms', '70000', '--fold-all'])
    assert.equal(r.applied_ok, 200)
  })
})
