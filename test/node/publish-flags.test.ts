// `release publish --gate N:…` (issue 14 feature 8) and `--quarantine-after`: the flags as the
// CLI reads them, and the per-wave gates they produce as every host's decisions judge them.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CommanderError } from 'commander'
import { defaultGate, parseGate, parseWaves, withWaveGates } from '../../node/deploy/cli-publish.js'
import { decide, parseRelease, planRelease } from '../../protocols/rollout/index.js'
import { ADMIN, PATH_A, StaticMembership, Writer, fold, hostIds } from '../rollout/helpers.js'

function waves (list: string, gates: string[] | undefined): ReturnType<typeof parseWaves> {
  return withWaveGates(parseWaves(list, parseGate(defaultGate(gates))), gates, parseGate)
}

const usageError = (re: RegExp) => (err: unknown): boolean => err instanceof CommanderError && err.exitCode === 2 && re.test(err.message)

describe('release publish --gate per wave', () => {
  it('N: sets wave N\'s gate (wave 1 is the first, as release status shows them); the plain one is every other wave\'s', () => {
    const w = waves('1,50%,100%', ['1:healthy=100%,soak=10m', '2:healthy=90%,soak=2m', 'healthy=80%,soak=30s'])
    assert.deepEqual(w.map((x) => x.gate), [{ healthy: 100, soakMs: 600_000 }, { healthy: 90, soakMs: 120_000 }, { healthy: 80, soakMs: 30_000 }])
    assert.deepEqual(waves('1,100%', undefined).map((x) => x.gate), [{ healthy: 100, soakMs: 0 }, { healthy: 100, soakMs: 0 }], 'default healthy=100%,soak=0s')
    assert.deepEqual(waves('1,100%', ['2:healthy=50%']).map((x) => x.gate), [{ healthy: 100, soakMs: 0 }, { healthy: 50, soakMs: 0 }], 'the JSON keeps the 0-based index: wave 2 is waves[1]')
  })

  it('refuses a wave that does not exist, two gates for one wave, two defaults, and unreadable gates (exit 2)', () => {
    assert.throws(() => waves('1,100%', ['3:healthy=90%']), usageError(/there is no wave 3; the waves are numbered 1 to 2/))
    assert.throws(() => waves('1,100%', ['0:healthy=90%']), usageError(/--gate 0:healthy=90%: waves are numbered from 1 \(wave 1 is the first, the canary\); write --gate 1:… for it/))
    assert.throws(() => waves('1,100%', ['1:healthy=90%', '1:soak=1m']), usageError(/wave 1 has two gates/))
    assert.throws(() => waves('1,100%', ['healthy=90%', 'healthy=80%']), usageError(/2 gates without a wave number/))
    assert.throws(() => waves('1,100%', ['1:healthy=101%']), usageError(/more than 100%/))
    assert.throws(() => waves('1,100%', ['1:speed=fast']), usageError(/cannot read "speed=fast"/))
  })

  it('each wave is judged by its own gate: the canary\'s 10-minute soak, then a 50 % wave', () => {
    const hosts = hostIds(6)
    const m = StaticMembership.of(hosts, [ADMIN])
    const body = parseRelease({ id: 'r1', number: 1, targets: [{ path: PATH_A, sources: ['peers'] }], waves: waves('1,50%,100%', ['1:healthy=100%,soak=10m', '2:healthy=50%']), maxFailures: 5, quarantineAfter: 10 })
    const plan = planRelease(body, m)
    const w = new Writer()
    const [c] = plan.waves[0]
    const start = w.write(c, 'apply-start', { release: 'r1', path: PATH_A, wave: 0, attempt: 'a' })
    const ok = w.write(c, 'apply-ok', { release: 'r1', path: PATH_A, healthyAt: 0, attempt: 'a' })
    const s = fold([w.write(ADMIN, 'release', body), start, ok, w.write(c, 'soaked', { release: 'r1', path: PATH_A, attempt: 'a', soakMs: 120_000 })])
    assert.equal(decide(s, m, plan.waves[1][0], 0).action, 'wait', 'a 2-minute soak does not meet the canary\'s 10-minute gate')
    const t = fold([w.write(ADMIN, 'release', body), start, ok, w.write(c, 'soaked', { release: 'r1', path: PATH_A, attempt: 'a', soakMs: 600_000 })])
    for (const h of plan.waves[1]) assert.equal(decide(t, m, h, 0).action, 'apply')
    assert.equal(plan.waves[1].length, 3, '7 members: the canary, then up to 50 % (4) in all')
    const applied = (h: string) => [w.write(h, 'apply-start', { release: 'r1', path: PATH_A, wave: 1, attempt: h }), w.write(h, 'apply-ok', { release: 'r1', path: PATH_A, healthyAt: 0, attempt: h })]
    const canary = [w.write(ADMIN, 'release', body), start, ok, w.write(c, 'soaked', { release: 'r1', path: PATH_A, attempt: 'a', soakMs: 600_000 })]
    const [x, y] = plan.waves[1]
    assert.equal(decide(fold([...canary, ...applied(x)]), m, plan.waves[2][0], 0).action, 'wait', '1 of 3 is under 50 %')
    assert.equal(decide(fold([...canary, ...applied(x), ...applied(y)]), m, plan.waves[2][0], 0).action, 'apply', '2 of 3 meet 50 % with no soak: wave 1\'s own gate')
  })
})
