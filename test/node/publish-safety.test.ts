// `release publish --fresh-for / --after / --max-in-flight` and `release-floor` (issue 14
// features 7, 2 and 1): the flags as the CLI reads them, with a usage error (exit 2) for what it
// cannot, and what publishing checks before it signs: the release an edge names, a plan whose
// edge could never be met, a floor that only rises and the numbering at the floor.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CommanderError } from 'commander'
import { parseFreshFor, parseGate, parseMaxInFlight, parseWaves, safetyFlags } from '../../node/deploy/cli-publish.js'
import { publishRelease, setReleaseFloor, type ReleaseDesk } from '../../node/deploy/releases.js'
import { applyEntry, emptyState, parseRelease, type ReleaseBody } from '../../protocols/rollout/index.js'
import { runCli } from '../../simulations/harness/processes.js'
import { ADMIN, PATH_A, StaticMembership, Writer, hostIds } from '../rollout/helpers.js'

const usageError = (re: RegExp) => (err: unknown): boolean => err instanceof CommanderError && err.exitCode === 2 && re.test(err.message)
const waves = (list: string): ReturnType<typeof parseWaves> => parseWaves(list, parseGate('healthy=100%'))

describe('release publish safety flags', () => {
  it('--fresh-for reads a duration of at least 10 minutes', () => {
    assert.equal(parseFreshFor('7d'), 7 * 86_400_000)
    assert.equal(parseFreshFor('10m'), 600_000)
    assert.throws(() => parseFreshFor('5m'), usageError(/--fresh-for: 5m is shorter than 10m/))
    assert.throws(() => parseFreshFor('soon'), usageError(/--fresh-for: "soon" is not a duration/))
  })

  it('--max-in-flight reads a host count or a percentage, at least 1', () => {
    assert.deepEqual(parseMaxInFlight('2'), { maxInFlight: 2 })
    assert.deepEqual(parseMaxInFlight('10%'), { maxInFlightPercent: 10 })
    assert.throws(() => parseMaxInFlight('0'), usageError(/at least 1 host/))
    assert.throws(() => parseMaxInFlight('0%'), usageError(/at least 1%/))
    assert.throws(() => parseMaxInFlight('many'), usageError(/neither a count nor a percentage/))
  })

  it('--after takes one release, tag:T for every wave and N:tag:T for wave N; each body passes the schema', () => {
    const r = safetyFlags(waves('tag:db,50%,100%'), { after: ['r3-abcdef', 'tag:db', '3:tag:cache'], freshFor: '7d', maxInFlight: '3' })
    assert.deepEqual(r.waves.map((w) => w.after), [{ tag: 'db' }, { tag: 'db' }, { tag: 'cache' }])
    assert.deepEqual([r.after, r.freshForMs, r.budget], ['r3-abcdef', 7 * 86_400_000, { maxInFlight: 3 }])
    assert.ok(parseRelease({ id: 'r4-x', number: 4, targets: [{ path: PATH_A, sources: ['peers'] }], maxFailures: 0, ...r }))
    assert.deepEqual(safetyFlags(waves('1,100%'), {}), { waves: waves('1,100%') }, 'no flag, no field')
    assert.throws(() => safetyFlags(waves('1,100%'), { after: ['r1-a', 'r2-b'] }), usageError(/a release waits for one release/))
    assert.throws(() => safetyFlags(waves('1,100%'), { after: ['3:tag:db'] }), usageError(/there is no wave 3; the waves are numbered 1 to 2/))
    assert.throws(() => safetyFlags(waves('1,100%'), { after: ['0:tag:db'] }), usageError(/waves are numbered from 1 \(wave 1 is the first/))
    assert.throws(() => safetyFlags(waves('1,100%'), { after: ['1:tag:db', '1:tag:web'] }), usageError(/wave 1 has two edges/))
    assert.throws(() => safetyFlags(waves('1,100%'), { after: ['tag:not a tag'] }), usageError(/is not a tag/))
    assert.throws(() => safetyFlags(waves('1,100%'), { after: ['no such thing!'] }), usageError(/neither a release id .* nor tag:T or N:tag:T/))
  })

  it('the real CLI refuses a short window with the usage exit code, before it needs a daemon', async () => {
    const r = await runCli(['release', 'publish', '--path', PATH_A, '--fresh-for', '1m'])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /--fresh-for: 1m is shorter than 10m/)
  })
})

describe('publishing with edges and the floor', () => {
  const hosts = hostIds(4)
  const tags = Object.fromEntries(hosts.map((h, i) => [h, [i < 2 ? 'db' : 'web']]))
  function desk (): ReleaseDesk & { written: Array<{ kind: string, body: object }> } {
    const view = Object.assign(StaticMembership.of(hosts, [ADMIN], tags), { basis: () => ({}) })
    const state = emptyState()
    const w = new Writer()
    const written: Array<{ kind: string, body: object }> = []
    return { self: ADMIN, state, view, written, log: { info: () => {} }, append: async (kind, body) => { written.push({ kind, body }); applyEntry(state, w.write(ADMIN, kind, body)) } }
  }
  const targets = [{ path: PATH_A, sources: ['peers'] }]

  it('--after must name a release this host knows', async () => {
    const d = desk()
    await assert.rejects(publishRelease(d, { targets, waves: waves('100%'), maxFailures: 0, after: 'r9-nope' }), { code: 'API_NOT_FOUND', message: /after: no release r9-nope/ })
    const r1 = await publishRelease(d, { targets, waves: waves('100%'), maxFailures: 0 })
    const r2 = await publishRelease(d, { targets, waves: waves('100%'), maxFailures: 0, after: r1.id })
    assert.equal(r2.after, r1.id)
  })

  it('a plan whose tagged hosts sit in a later wave than one their edge holds is refused before it is signed', async () => {
    const d = desk()
    const held = [{ ...waves(`host:${hosts[3]}`)[0], after: { tag: 'db' } }, waves('100%')[0]]
    await assert.rejects(publishRelease(d, { targets, waves: held, maxFailures: 0 }), { code: 'API_BAD_REQUEST', message: /wave 1 waits for every host tagged db, but .* is in wave 2/ })
    assert.equal(d.written.length, 0)
    const fine = safetyFlags(waves('tag:db,100%'), { after: ['tag:db'] }).waves
    assert.ok(await publishRelease(d, { targets, waves: fine, maxFailures: 0 }))
  })

  it('a floor only rises, and new releases are numbered at it', async () => {
    const d = desk()
    await publishRelease(d, { targets, waves: waves('100%'), maxFailures: 0 })
    await setReleaseFloor(d, { number: 5, reason: 'everything before carries the broken kernel' })
    await assert.rejects(setReleaseFloor(d, { number: 5, reason: 'again' }), { code: 'API_BAD_REQUEST', message: /already #5/ })
    await assert.rejects(setReleaseFloor(d, { number: 0, reason: 'x' }), { code: 'API_BAD_REQUEST' })
    const r: ReleaseBody = await publishRelease(d, { targets, waves: waves('100%'), maxFailures: 0 })
    assert.equal(r.number, 5)
  })
})
