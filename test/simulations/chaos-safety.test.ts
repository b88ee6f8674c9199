// The chaos scenario's rollout-safety checker (simulations/chaos/safety.ts) can fail: for each of
// its four invariants a trail in which every writer follows the rules passes, and the same trail
// with one wrong entry appended by a hostile writer (an apply-start it should not have written)
// is named by the checker. Entries are really signed and their bodies pass the log's schemas; who
// held what, and when, is recorded by the same TrailRecorder the scenario's Monitor uses. Then one
// real seeded run of 4 hosts with `--inject`: the checker names each hostile start in its trail.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Entry } from '../../protocols/audit/types.js'
import { ZERO_HASH } from '../../protocols/audit/codec.js'
import { validateAdmit, validateGenesis } from '../../protocols/membership/codec.js'
import { rolloutSchemas, type ReleaseBody } from '../../protocols/rollout/index.js'
import { signedFeeds, type SignedFeed } from '../../simulations/harness/signed-feeds.js'
import { checkSafety, HOLD_GRACE_MS, safetyContext } from '../../simulations/chaos/safety.js'
import { TrailRecorder } from '../../simulations/chaos/trail.js'
import { runOnce } from '../../simulations/chaos/index.js'

const MESH = 'chaos-safety'
const PATH = '/nix/store/0c8ayrdb1p1vcjrxh2kxi6wxjwl0q8r6-fleetmesh-chaos-one'
const PATH_Q = '/nix/store/2f9bzsfc2q2wdkskj3lyj7xkxm1r9s7b-fleetmesh-chaos-bad'
const PATH_PIN = '/nix/store/3a9bzsfc2q2wdkskj3lyj7xkxm1r9s7c-fleetmesh-chaos-pin'
const feeds = await signedFeeds(14, 4)
const [F, H1, H2, H3] = feeds
const NAMES = new Map(feeds.map((f, i) => [f.feed, i === 0 ? 'F' : `H${i}`]))

/** A little mesh: F (founder, admin) admits H1 (tagged db), H2 and H3; each host holds what it was delivered. */
class World {
  readonly recorder = new TrailRecorder()
  readonly entries: Entry[] = []
  private t = 0

  constructor () {
    // every world is a new log: its feeds start again at seq 0
    for (const f of feeds) { f.seq = 0; f.prev = ZERO_HASH }
    this.write(F, 'genesis', validateGenesis({ mesh: MESH, name: 'chaos-safety', founder: F.feed }))
    for (const h of [H1, H2, H3]) this.write(F, 'admit', validateAdmit({ peer: h.feed, role: 'host', tags: h === H1 ? ['web', 'db'] : ['web'] }))
    this.deliver(this.entries, H1, H2, H3)
  }

  /** `by` signs the entry (its body checked by the log's schema) and holds it; time moves past the hold grace. */
  write (by: SignedFeed, kind: string, body: object): Entry {
    const check = rolloutSchemas[kind as keyof typeof rolloutSchemas] as ((b: unknown) => unknown) | undefined
    check?.(body)
    this.t += 2 * HOLD_GRACE_MS
    const e = by.append(this.t, kind, body).entry
    this.entries.push(e)
    this.recorder.stored(by.feed, e, this.t)
    return e
  }

  deliver (entries: Entry[], ...to: SignedFeed[]): void {
    this.t += 2 * HOLD_GRACE_MS
    for (const h of to) for (const e of entries) this.recorder.stored(h.feed, e, this.t)
  }

  release (id: string, extra: Partial<ReleaseBody>, targets: ReleaseBody['targets'] = [{ tag: 'web', path: PATH, sources: ['peers'] }]): Entry {
    const e = this.write(F, 'release', {
      id,
      number: this.entries.filter((x) => x.kind === 'release').length + 1,
      targets,
      waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }],
      maxFailures: 1,
      ...extra,
      basis: { [F.feed]: F.seq - 1 }
    })
    this.deliver([e], H1, H2, H3)
    return e
  }

  start (h: SignedFeed, release: string, attempt: string, path = PATH): Entry {
    return this.write(h, 'apply-start', { release, path, wave: 0, attempt })
  }

  violations (): string[] {
    const c = safetyContext(this.recorder.trail(this.entries), MESH, F.feed, (p) => NAMES.get(p) ?? p)
    return checkSafety(c).map((v) => `${v.invariant}: ${v.detail}`)
  }
}

describe('chaos rollout-safety invariants (each can fail)', () => {
  it('budget: a second host in flight beside the first, with a budget of 1, is named; after the first one\'s outcome it is not', () => {
    const w = new World()
    w.release('r1', { budget: { maxInFlight: 1 } })
    const s1 = w.start(H1, 'r1', 'a1')
    w.deliver([s1], H2)
    const s2 = w.start(H2, 'r1', 'a2') // hostile: H2 holds H1's start and no outcome of it
    assert.deepEqual(w.violations().map((v) => v.split(':')[0]), ['budget'])
    assert.match(w.violations()[0], /r1 allows 1 in flight, but H1 .* H2 /)
    const ok = w.write(H1, 'apply-ok', { release: 'r1', path: PATH, healthyAt: 1, attempt: 'a1' })
    w.write(H2, 'apply-ok', { release: 'r1', path: PATH, healthyAt: 1, attempt: 'a2' })
    assert.equal(w.violations().length, 1, 'outcomes written after the overlap do not undo it')

    const v = new World()
    v.release('r1', { budget: { maxInFlight: 1 } })
    const t1 = v.start(H1, 'r1', 'a1')
    const o1 = v.write(H1, 'apply-ok', { release: 'r1', path: PATH, healthyAt: 1, attempt: 'a1' })
    v.deliver([t1, o1], H2)
    v.start(H2, 'r1', 'a2')
    assert.deepEqual(v.violations(), [])
    void s2; void ok
  })

  it('budget: the end of the first one seen only through a third host still orders it (causal order, not what one host held)', () => {
    const w = new World()
    w.release('r1', { budget: { maxInFlight: 1 } })
    const s1 = w.start(H1, 'r1', 'a1')
    const o1 = w.write(H1, 'apply-ok', { release: 'r1', path: PATH, healthyAt: 1, attempt: 'a1' })
    w.deliver([s1, o1], H3)
    const note = w.write(H3, 'health', { path: PATH, ok: true })
    w.deliver([note], H2)
    w.start(H2, 'r1', 'a2')
    assert.deepEqual(w.violations().filter((v) => v.startsWith('budget')), [])
  })

  it('edge: an untagged host that starts before the db host is healthy is named; after its apply-ok it is not', () => {
    const w = new World()
    w.release('r1', { waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 }, after: { tag: 'db' } }] })
    const s1 = w.start(H1, 'r1', 'a1')
    w.deliver([s1], H2)
    w.start(H2, 'r1', 'a2') // hostile: H1 (db) has no outcome yet
    const v = w.violations()
    assert.equal(v.length, 1)
    assert.match(v[0], /^edge: H2 .* waits for tag db, before H1 \(tagged db\)/)

    // the db host's outcome for an older release does not take it out of this one's edge
    const o = new World()
    o.release('r0', {})
    o.start(H1, 'r0', 'a0')
    const old = o.write(H1, 'apply-ok', { release: 'r0', path: PATH, healthyAt: 1, attempt: 'a0' })
    o.release('r1', { waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 }, after: { tag: 'db' } }] })
    o.deliver([old], H2)
    o.start(H2, 'r1', 'a2')
    assert.match(o.violations().join('\n'), /^edge: H2 .* before H1 \(tagged db\)/)

    const x = new World()
    x.release('r1', { waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 }, after: { tag: 'db' } }] })
    x.start(H1, 'r1', 'a1')
    const ok = x.write(H1, 'apply-ok', { release: 'r1', path: PATH, healthyAt: 1, attempt: 'a1' })
    x.deliver([ok], H2)
    x.start(H2, 'r1', 'a2')
    assert.deepEqual(x.violations(), [])
  })

  it('pin: a pinned host that starts a release while it holds the pin is named; after an unpin it is not, nor for the pinned path', () => {
    const w = new World()
    w.release('r1', {})
    const pin = w.write(F, 'pin', { host: H2.feed, path: PATH_PIN, reason: 'chaos' })
    w.deliver([pin], H2)
    w.start(H2, 'r1', 'a2') // hostile: pinned
    const v = w.violations()
    assert.equal(v.length, 1)
    assert.match(v[0], /^pin: H2 .* while pinned to .*-fleetmesh-chaos-pin by F/)

    const x = new World()
    x.release('r1', {})
    const p = x.write(F, 'pin', { host: H2.feed, path: PATH, reason: 'held on the release\'s own path' })
    x.deliver([p], H2)
    x.start(H2, 'r1', 'a2')
    const p2 = x.write(F, 'pin', { host: H3.feed, path: PATH_PIN, reason: 'chaos', expiresMs: 1000 })
    x.deliver([p2], H3)
    const expired = x.write(H3, 'unpin', { host: H3.feed, lifts: [`${p2.feed}:${p2.seq}`], expired: true })
    x.start(H3, 'r1', 'a3')
    assert.deepEqual(x.violations(), [])
    void expired
  })

  it('pin: an entry held only just before the start (between the decision and the append) is not held against it', () => {
    const w = new World()
    w.release('r1', {})
    const pin = w.write(F, 'pin', { host: H2.feed, path: PATH_PIN, reason: 'chaos' })
    const s = H2.append(0, 'apply-start', { release: 'r1', path: PATH, wave: 0, attempt: 'a2' }).entry
    w.entries.push(s)
    w.recorder.stored(H2.feed, pin, 100_000)
    w.recorder.stored(H2.feed, s, 100_000 + HOLD_GRACE_MS / 2)
    assert.deepEqual(w.violations(), [])
  })

  it('quarantine: a host that starts a path that failed after activation elsewhere is named; after a clear naming the failure it is not', () => {
    const build = (clear: boolean): string[] => {
      const w = new World()
      w.release('r1', { quarantineAfter: 1 }, [{ host: H1.feed, path: PATH_Q, sources: ['peers'] }])
      w.start(H1, 'r1', 'a1', PATH_Q)
      const failed = w.write(H1, 'apply-failed', { release: 'r1', path: PATH_Q, reason: 'health failed in the soak', attempt: 'a1' })
      const rb = w.write(H1, 'rollback', { release: 'r1', from: PATH_Q, to: PATH, ok: true, attempt: 'a1' })
      w.release('r2', {}, [{ host: H2.feed, path: PATH_Q, sources: ['peers'] }])
      w.deliver([failed, rb], H2, F)
      if (clear) w.deliver([w.write(F, 'quarantine-clear', { path: PATH_Q, clears: [`${rb.feed}:${rb.seq}`] })], H2)
      w.start(H2, 'r2', 'a2', PATH_Q) // hostile unless cleared
      return w.violations()
    }
    const v = build(false)
    assert.equal(v.length, 1)
    assert.match(v[0], /^quarantine: H2 .* of r2 for .*-fleetmesh-chaos-bad, quarantined: it failed after activation on H1 in r1 \(quarantineAfter 1\)/)
    assert.deepEqual(build(true), [])
  })

  it('quarantine: with quarantineAfter 2 one failure does not quarantine; an admin\'s quarantine by hand does', () => {
    const w = new World()
    w.release('r1', { quarantineAfter: 2 }, [{ tag: 'db', path: PATH_Q, sources: ['peers'] }, { tag: 'web', path: PATH, sources: ['peers'] }])
    w.start(H1, 'r1', 'a1', PATH_Q)
    const failed = w.write(H1, 'apply-failed', { release: 'r1', path: PATH_Q, reason: 'health failed in the soak', attempt: 'a1' })
    const rb = w.write(H1, 'rollback', { release: 'r1', from: PATH_Q, to: PATH, ok: true, attempt: 'a1' })
    w.release('r2', {}, [{ host: H2.feed, path: PATH_Q, sources: ['peers'] }, { host: H3.feed, path: PATH_Q, sources: ['peers'] }])
    w.deliver([failed, rb], H2, H3)
    w.start(H2, 'r2', 'a2', PATH_Q)
    assert.deepEqual(w.violations(), [])
    w.deliver([w.write(F, 'quarantine', { path: PATH_Q, reason: 'by hand' })], H3)
    w.start(H3, 'r2', 'a3', PATH_Q)
    const v = w.violations()
    assert.equal(v.length, 1)
    assert.match(v[0], /^quarantine: H3 .* quarantined by F/)
  })
})

describe('chaos --inject: a real run whose trail hostile writers break', () => {
  it('names the budget, edge, pin and quarantine violations, and only the injected ones', { timeout: 5 * 60_000 }, async () => {
    const r = await runOnce(4, 4, true)
    const safety = r.violations.filter((v) => ['budget', 'edge', 'pin', 'quarantine'].includes(v.invariant))
    assert.deepEqual([...new Set(safety.map((v) => v.invariant))].sort(), ['budget', 'edge', 'pin', 'quarantine'])
    for (const v of safety) assert.match(v.detail, /attempt hostile-/, `${v.invariant}: ${v.detail}`)
  })
})
