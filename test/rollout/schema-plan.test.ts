import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { KindRegistry } from '../../protocols/audit/codec.js'
import { isAuditError } from '../../protocols/audit/errors.js'
import { isRolloutError, parseRelease, parseReleaseControl, parseApplyOk, parseApplyStart, parseHealth, parseOverdue, parseSoaked, planRelease, rolloutSchemas } from '../../protocols/rollout/index.js'
import { PATH_A, PATH_B, StaticMembership, hostIds, releaseBody } from './helpers.js'

describe('rollout schemas', () => {
  it('accepts a release and preserves unknown and planned fields', () => {
    const body = { ...releaseBody(), budget: { maxInFlight: 3, future: 'x' }, trace: true, expiresAt: 10 }
    const parsed = parseRelease(body)
    assert.equal(parsed, body)
    assert.deepEqual(parsed.budget, { maxInFlight: 3, future: 'x' })
    assert.equal(parsed.trace, true)
  })

  it('refuses malformed releases with a stable code', () => {
    const bad: unknown[] = [
      null, 'release', [],
      { ...releaseBody(), number: 0 },
      { ...releaseBody(), number: 1.5 },
      { ...releaseBody(), id: 'has space' },
      { ...releaseBody(), targets: [] },
      { ...releaseBody(), targets: [{ path: '/nix/store/short-x', sources: ['peers'] }] },
      { ...releaseBody(), targets: [{ path: PATH_A.replace('0', 'e'), sources: ['peers'] }] },
      { ...releaseBody(), targets: [{ path: PATH_A, sources: [] }] },
      { ...releaseBody(), targets: [{ path: PATH_A, sources: ['not a url'] }] },
      { ...releaseBody(), targets: [{ host: 'Host1', tag: 'web', path: PATH_A, sources: ['peers'] }] },
      { ...releaseBody(), waves: [{ count: 1, percent: 5, gate: { healthy: 100, soakMs: 0 } }] },
      { ...releaseBody(), waves: [{ percent: 101, gate: { healthy: 100, soakMs: 0 } }] },
      { ...releaseBody(), waves: [{ percent: 10, gate: { healthy: -1, soakMs: 0 } }] },
      { ...releaseBody(), waves: [{ percent: 10 }] },
      { ...releaseBody(), maxFailures: -1 },
      { ...releaseBody(), autoRevert: 'yes' },
      { ...releaseBody(), budget: 3 },
      { ...releaseBody(), basis: { Host1: -1 } },
      { ...releaseBody(), basis: { 'not a feed': 1 } },
      { ...releaseBody(), basis: [] },
      { ...releaseBody(), applyDeadlineMs: 0 }
    ]
    for (const b of bad) assert.throws(() => parseRelease(b), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_INVALID'), JSON.stringify(b))
  })

  it('refuses oversize bodies with ROLLOUT_BODY_TOO_LARGE', () => {
    const many = Array.from({ length: 1025 }, () => ({ path: PATH_A, sources: ['peers'] }))
    assert.throws(() => parseRelease({ ...releaseBody(), targets: many }), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_TOO_LARGE'))
    assert.throws(() => parseRelease({ ...releaseBody(), id: 'a'.repeat(129) }), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_TOO_LARGE'))
    assert.throws(() => parseHealth({ path: PATH_A, ok: false, output: 'x'.repeat(4097) }), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_TOO_LARGE'))
    const basis = Object.fromEntries(hostIds(4097).map(h => [h, 1]))
    assert.throws(() => parseRelease({ ...releaseBody(), basis }), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_TOO_LARGE'))
    assert.throws(() => parseOverdue({ release: 'r1', wave: 0, hosts: hostIds(100_001), why: 'silent' }), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_TOO_LARGE'))
  })

  it('checks attempts, soaked and overdue entries, and what a resume may name', () => {
    const invalid = (e: unknown): boolean => isRolloutError(e, 'ROLLOUT_BODY_INVALID')
    assert.doesNotThrow(() => parseRelease({ ...releaseBody(), basis: { Host1: 0, Host2: 7 }, applyDeadlineMs: 60_000 }))
    assert.doesNotThrow(() => parseApplyStart({ release: 'r1', path: PATH_A, wave: 0, attempt: 'a-1:2.x' }))
    assert.throws(() => parseApplyStart({ release: 'r1', path: PATH_A, wave: 0, attempt: 'has space' }), invalid)
    assert.doesNotThrow(() => parseSoaked({ release: 'r1', path: PATH_A, attempt: 'a1', soakMs: 30_000 }))
    assert.throws(() => parseSoaked({ release: 'r1', path: PATH_A, soakMs: 30_000 }), invalid)
    assert.throws(() => parseSoaked({ release: 'r1', path: PATH_A, attempt: 'a1', soakMs: -1 }), invalid)
    assert.doesNotThrow(() => parseOverdue({ release: 'r1', wave: 2, hosts: ['Host1'], why: 'deadline' }))
    assert.throws(() => parseOverdue({ release: 'r1', wave: 2, hosts: [], why: 'silent' }), invalid)
    assert.throws(() => parseOverdue({ release: 'r1', wave: 2, hosts: ['Host1'], why: 'bored' }), invalid)
    assert.throws(() => parseOverdue({ release: 'r1', wave: 64, hosts: ['Host1'], why: 'silent' }), invalid)
    assert.doesNotThrow(() => parseReleaseControl({ release: 'r1', action: 'resume', resumes: ['AdminB:3'], accept: ['Host1'] }))
    assert.throws(() => parseReleaseControl({ release: 'r1', action: 'pause', accept: ['Host1'] }), invalid)
    assert.throws(() => parseReleaseControl({ release: 'r1', action: 'resume', resumes: ['AdminB'] }), invalid)
    assert.throws(() => parseReleaseControl({ release: 'r1', action: 'resume', resumes: ['AdminB:01'] }), invalid)
  })

  it('checks control and outcome bodies', () => {
    assert.doesNotThrow(() => parseReleaseControl({ release: 'r1', action: 'pause' }))
    assert.throws(() => parseReleaseControl({ release: 'r1', action: 'delete' }), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_INVALID'))
    assert.doesNotThrow(() => parseApplyOk({ release: 'r1', path: PATH_B, healthyAt: 5 }))
    assert.throws(() => parseApplyOk({ release: 'r1', path: PATH_B }), (e: unknown) => isRolloutError(e, 'ROLLOUT_BODY_INVALID'))
  })

  it('registers with the audit codec, which reports refusals as BODY_INVALID', () => {
    const reg = new KindRegistry()
    reg.registerParsers(rolloutSchemas)
    assert.doesNotThrow(() => reg.validate('release', releaseBody()))
    assert.throws(() => reg.validate('rollback', { release: 'r1', from: PATH_A, to: 'nope', ok: true }), (e: unknown) => isAuditError(e, 'BODY_INVALID'))
  })
})

describe('wave plan', () => {
  const hosts = hostIds(100)

  it('cumulative percents: a canary of 1, then up to 25 %, then the rest', () => {
    const plan = planRelease(releaseBody(), StaticMembership.of(hosts))
    assert.deepEqual(plan.waves.map(w => w.length), [1, 24, 75])
    assert.equal(new Set(plan.waves.flat()).size, 100)
    assert.deepEqual(plan.unassigned, [])
  })

  it('is the same for any member order and differs between releases', () => {
    const a = planRelease(releaseBody(), StaticMembership.of(hosts))
    const b = planRelease(releaseBody(), StaticMembership.of([...hosts].reverse()))
    assert.deepEqual(a.waves, b.waves)
    const canaries = new Set(['r1', 'r2', 'r3', 'r4', 'r5', 'r6'].map(id => planRelease(releaseBody({ id }), StaticMembership.of(hosts)).waves[0][0]))
    assert.ok(canaries.size > 1, 'the canary is pseudo-random per release')
  })

  it('selects by host list, tag and count; the first matching target gives the path; unselected hosts are reported', () => {
    const m = StaticMembership.of(hosts.slice(0, 10), [], { [hosts[0]]: ['db'], [hosts[1]]: ['db'], [hosts[2]]: ['web'] })
    const body = releaseBody({
      targets: [{ tag: 'db', path: PATH_B, sources: ['https://cache.example'] }, { path: PATH_A, sources: ['peers'] }],
      waves: [
        { hosts: [hosts[5], 'HostUnknown'], gate: { healthy: 100, soakMs: 0 } },
        { tag: 'db', gate: { healthy: 100, soakMs: 0 } },
        { count: 3, gate: { healthy: 100, soakMs: 0 } }
      ]
    })
    const plan = planRelease(body, m)
    assert.deepEqual(plan.waves[0], [hosts[5]])
    assert.deepEqual([...plan.waves[1]].sort(), [hosts[0], hosts[1]].sort())
    assert.equal(plan.waves[2].length, 3)
    assert.equal(plan.unassigned.length, 4)
    assert.equal(plan.targetOf.get(hosts[0])?.path, PATH_B)
    assert.equal(plan.targetOf.get(hosts[2])?.path, PATH_A)
  })
})
