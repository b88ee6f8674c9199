// Property tests of the rollout decisions (issue 12, DESIGN §8): fast-check builds random fleet
// histories — two overlapping releases, outcomes (apply-start/ok/failed/rollback/soaked), overdue
// attestations, pause/resume/abort and membership changes (admit/grant/revoke) — as really signed,
// hash-chained entries, with per-host clock offsets up to ±5 minutes. Every host holds a per-feed
// prefix of the log (what sync would have delivered) and folds it in a random order; the real
// decide() and releaseStatus() are then judged against an independent oracle of the contract.
// Reproducible: PROPERTY_SEED=N replays a run (fast-check prints the seed and path of a failure).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { ZERO_HASH, entryHash, signingBytes } from '../../protocols/audit/codec.js'
import type { Entry } from '../../protocols/audit/types.js'
import type { MembershipState } from '../../protocols/membership/index.js'
import { membershipOf as fold0, rolloutView as view, truthOf, type Truth } from '../../simulations/chaos/oracle.js'
import { applyEntry, decide, emptyState, planRelease, releaseStatus } from '../../protocols/rollout/index.js'
import type { ControlAction, Decision, DecideOptions, MembershipView, Plan, ReleaseBody, RolloutState } from '../../protocols/rollout/index.js'
import { MESH } from '../membership/helpers.js'
import { PATH_A, PATH_B, rng, shuffle } from './helpers.js'

const SEED = Number(process.env.PROPERTY_SEED ?? 1)
const RUNS = Number(process.env.PROPERTY_RUNS ?? 25)
const T0 = 1_790_000_000_000
const SKEW = 5 * 60_000
const PATH_OLD = '/nix/store/a0123456789abcdfghijklmnpqrsvwxy-system-old'

// writers: 0 founder (admin), 1 second admin, 2..8 hosts H0..H6 (H0..H2 also tagged db), 9 a late joiner.
// Fixed keys: peer ids decide wave assignment, so a seed replays only with the same ones.
const keys: Ed25519PrivateKey[] = await Promise.all(Array.from({ length: 10 }, async (_, i) => generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1))))
const ids = keys.map((k) => peerIdFromPrivateKey(k).toString())
const NAMES = ['F', 'A2', 'H0', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'L']
const nameOf = new Map(ids.map((id, i) => [id, NAMES[i]]))
const HOSTS = [2, 3, 4, 5, 6, 7, 8, 9] // the writers a release may target
const RELEASE_IDS = ['fleet-1', 'hotfix-2']

type Fate = 'ok' | 'fail' | 'silent' | 'soakfail'
type Cmd =
  | { c: 'pub', rel: number, by: number }
  | { c: 'step', host: number, rel: number, fate: Fate }
  | { c: 'ctl', by: number, rel: number, action: ControlAction, accept: boolean }
  | { c: 'late' }
  | { c: 'grant', host: number, db: boolean }
  | { c: 'revoke', host: number }
  | { c: 'overdue', by: number, rel: number, wave: number, why: 'silent' | 'deadline' }
  | { c: 'skew', by: number, offset: number }

interface Scenario {
  soak0: number
  soak1: number
  maxFailures: number
  waitOfflineMs: number | null
  healthy2: number
  steps: Array<{ dt: number, cmd: Cmd }>
  /** a second, constant per-writer clock offset for the same history */
  offsets: number[]
  /** the evaluating hosts' clock offsets */
  nowOffsets: number[]
  heldSeed: number
  orderSeed: number
  /** hosts start applying only once every earlier wave is through (a well-behaved fleet), so decisions at the gates are common */
  orderly: boolean
}

/** An entry before signing: `t` is true time; its claimed ts is t plus the writer's offset. */
interface Draft { w: number, seq: number, t: number, skew: number, kind: string, body: (ts: number) => unknown }

const MEMBERSHIP_KINDS = new Set(['genesis', 'admit', 'grant', 'revoke'])

const rolloutView = (state: MembershipState, held: Entry[]): MembershipView => view(state, held)
const membershipOf = (entries: Iterable<Entry>): MembershipState => fold0(entries, MESH, ids[0])

interface Rel { body: ReleaseBody, plan: Plan, stage: Map<number, Stage>, soakFail: Set<number>, pauses: string[] }
type Stage = 'started' | 'ok' | 'soaked' | 'failed' | 'silent'

/** Plays the scenario's commands as a well-behaved fleet would write them (hosts may still act out of turn: the log is what it is). */
function history (s: Scenario): Draft[] {
  const drafts: Draft[] = []
  const seqs = new Array<number>(ids.length).fill(0)
  const skews = new Array<number>(ids.length).fill(0)
  let t = 0
  const write = (w: number, kind: string, body: unknown | ((ts: number) => unknown)): void => {
    drafts.push({ w, seq: seqs[w]++, t, skew: skews[w], kind, body: typeof body === 'function' ? body as (ts: number) => unknown : () => body })
  }
  const memberFeeds = new Set<number>([0])
  write(0, 'genesis', { mesh: MESH, name: 'props', founder: ids[0] })
  write(0, 'admit', { peer: ids[1], role: 'admin', tags: [] })
  for (const w of HOSTS.slice(0, 7)) write(0, 'admit', { peer: ids[w], role: 'host', tags: w <= 4 ? ['db', 'web'] : ['web'] })
  let late = false
  const revoked = new Set<number>()
  const rels: Array<Rel | undefined> = [undefined, undefined]
  const bodyOf = (rel: number): ReleaseBody => rel === 0
    ? {
        id: RELEASE_IDS[0],
        number: 1,
        targets: [{ tag: 'web', path: PATH_A, sources: ['peers'] }],
        waves: [
          { count: 1, gate: { healthy: 100, soakMs: s.soak0 } },
          { percent: 50, gate: { healthy: 100, soakMs: s.soak1 }, ...(s.waitOfflineMs !== null ? { waitOfflineMs: s.waitOfflineMs } : {}) },
          { percent: 100, gate: { healthy: s.healthy2, soakMs: 0 } }
        ],
        maxFailures: s.maxFailures
      }
    : {
        id: RELEASE_IDS[1],
        number: 2,
        targets: [{ tag: 'db', path: PATH_B, sources: ['peers'] }],
        waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }],
        maxFailures: 0
      }
  for (const { dt, cmd } of s.steps) {
    t += dt
    switch (cmd.c) {
      case 'pub': {
        if (rels[cmd.rel] !== undefined) break
        // the membership heads the publisher holds, as `release publish` writes them
        const basis: Record<string, number> = {}
        for (const w of memberFeeds) basis[ids[w]] = seqs[w] - 1
        const body: ReleaseBody = { ...bodyOf(cmd.rel), basis }
        const frozen = materialize(drafts.filter((d) => MEMBERSHIP_KINDS.has(d.kind)), () => 0)
        rels[cmd.rel] = { body, plan: planRelease(body, rolloutView(membershipOf(frozen), frozen)), stage: new Map(), soakFail: new Set(), pauses: [] }
        write(cmd.by, 'release', body)
        break
      }
      case 'step': {
        const r = rels[cmd.rel]
        const w = HOSTS[cmd.host]
        const k = r?.plan.waveOf.get(ids[w])
        if (r === undefined || k === undefined) break
        const { id, targets } = r.body
        const path = targets[0].path
        const attempt = `${NAMES[w]}-${id}-1`
        const stage = r.stage.get(w)
        const through = (j: number): boolean => r.plan.waves[j].every((h) => {
          const st = r.stage.get(ids.indexOf(h))
          return st === 'soaked' || (st === 'ok' && r.body.waves[j].gate.soakMs === 0)
        })
        if (stage === undefined && s.orderly && !Array.from({ length: k }, (_, j) => j).every(through)) break
        if (stage === undefined) {
          write(w, 'apply-start', { release: id, path, wave: k, attempt })
          r.stage.set(w, 'started')
        } else if (stage === 'started') {
          if (cmd.fate === 'fail') {
            write(w, 'apply-failed', { release: id, path, reason: 'unit web failed', attempt })
            write(w, 'rollback', { release: id, from: path, to: PATH_OLD, ok: true, attempt })
            r.stage.set(w, 'failed')
          } else if (cmd.fate === 'silent') r.stage.set(w, 'silent')
          else {
            write(w, 'apply-ok', (ts: number) => ({ release: id, path, healthyAt: ts, attempt }))
            r.stage.set(w, 'ok')
            if (cmd.fate === 'soakfail') r.soakFail.add(w)
          }
        } else if (stage === 'ok') {
          const soakMs = r.body.waves[k].gate.soakMs
          if (r.soakFail.has(w)) {
            write(w, 'apply-failed', { release: id, path, reason: 'health check web failed during the soak', attempt })
            write(w, 'rollback', { release: id, from: path, to: PATH_OLD, ok: true, attempt })
            r.stage.set(w, 'failed')
          } else if (soakMs > 0) {
            write(w, 'soaked', { release: id, path, attempt, soakMs })
            r.stage.set(w, 'soaked')
          }
        }
        break
      }
      case 'ctl': {
        const r = rels[cmd.rel]
        if (r === undefined) break
        const body: Record<string, unknown> = { release: r.body.id, action: cmd.action }
        if (cmd.action === 'pause') r.pauses.push(`${ids[cmd.by]}:${seqs[cmd.by]}`)
        // a resume names the pauses it lifts and, if asked to, accepts the failures that halted the release
        if (cmd.action === 'resume' && r.pauses.length > 0) body.resumes = [...r.pauses]
        const failed = [...r.stage].filter(([, st]) => st === 'failed').map(([w]) => ids[w])
        if (cmd.action === 'resume' && cmd.accept && failed.length > 0) body.accept = failed.sort()
        write(cmd.by, 'release-control', body)
        break
      }
      case 'late':
        if (!late) write(0, 'admit', { peer: ids[9], role: 'host', tags: ['db', 'web'] })
        late = true
        break
      case 'grant':
        if (cmd.host < 7) write(0, 'grant', { peer: ids[HOSTS[cmd.host]], tags: cmd.db ? ['db', 'web'] : ['web'] })
        break
      case 'revoke': {
        const w = HOSTS[cmd.host]
        if (revoked.has(w) || (w === 9 && !late)) break
        write(0, 'revoke', { peer: ids[w], after: seqs[w] - 1 })
        revoked.add(w)
        break
      }
      case 'overdue': {
        const r = rels[cmd.rel]
        if (r === undefined || cmd.wave >= r.plan.waves.length) break
        const want: Array<Stage | undefined> = cmd.why === 'silent' ? [undefined] : ['started', 'silent']
        const hosts = r.plan.waves[cmd.wave].filter((h) => want.includes(r.stage.get(ids.indexOf(h))))
        if (hosts.length > 0) write(cmd.by, 'overdue', { release: r.body.id, wave: cmd.wave, hosts: [...hosts].sort(), why: cmd.why })
        break
      }
      case 'skew':
        skews[cmd.by] = cmd.offset
        break
    }
  }
  return drafts
}

/** Signs the drafts into hash-chained entries; `skewOf` gives each one's clock offset. */
function materialize (drafts: Draft[], skewOf: (d: Draft) => number): Entry[] {
  const prev = new Map<number, Uint8Array>()
  return drafts.map((d) => {
    const ts = T0 + d.t + skewOf(d)
    const unsigned = { feed: ids[d.w], seq: d.seq, prev: prev.get(d.w) ?? ZERO_HASH, ts, kind: d.kind, body: d.body(ts) }
    const sig = keys[d.w].sign(signingBytes(unsigned))
    if (!(sig instanceof Uint8Array)) throw new Error('Ed25519 signing is synchronous here')
    const e: Entry = { ...unsigned, sig }
    prev.set(d.w, entryHash(e))
    return e
  })
}

/** What host `w` holds: a prefix of every feed, as replication delivers them. */
function heldBy (entries: Entry[], w: number, seed: number): Entry[] {
  const rand = rng(seed * 31 + w)
  const cut = new Map<string, number>()
  for (const id of ids) cut.set(id, rand() < 0.85 ? Infinity : Math.floor(rand() * 12))
  return entries.filter((e) => e.seq < (cut.get(e.feed) as number))
}

interface Folded { rollout: RolloutState, membership: MembershipState, view: MembershipView }

function fold (entries: Entry[], orderSeed: number): Folded {
  const order = shuffle(entries, rng(orderSeed))
  const rollout = emptyState()
  for (const e of order) applyEntry(rollout, e)
  const membership = membershipOf(order)
  return { rollout, membership, view: rolloutView(membership, entries) }
}

const OPTIONS = { trace: false, expired: new Set<string>() }
function decideAt (f: Folded, w: number, now: number): Decision {
  return decide(f.rollout, f.view, ids[w], now, OPTIONS as DecideOptions)
}

/** The facts a decision is made of; its wording and the local times in it may differ. */
function shape (d: Decision): string {
  const x = d as unknown as Record<string, unknown>
  return JSON.stringify([d.action, x.release, x.wave, x.path, x.kind, x.body, (x.timer as { key?: string } | undefined)?.key])
}

// ---- generators ----

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ c: fc.constant('pub' as const), rel: fc.integer({ min: 0, max: 1 }), by: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 24, arbitrary: fc.record({ c: fc.constant('step' as const), host: fc.integer({ min: 0, max: 7 }), rel: fc.constantFrom(0, 0, 0, 1), fate: fc.constantFrom<Fate>('ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'fail', 'silent', 'soakfail') }) },
  { weight: 2, arbitrary: fc.record({ c: fc.constant('ctl' as const), by: fc.integer({ min: 0, max: 1 }), rel: fc.integer({ min: 0, max: 1 }), action: fc.constantFrom<ControlAction>('pause', 'resume', 'pause', 'abort'), accept: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ c: 'late' as const }) },
  { weight: 1, arbitrary: fc.record({ c: fc.constant('grant' as const), host: fc.integer({ min: 0, max: 6 }), db: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ c: fc.constant('revoke' as const), host: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ c: fc.constant('overdue' as const), by: fc.integer({ min: 0, max: 9 }), rel: fc.integer({ min: 0, max: 1 }), wave: fc.integer({ min: 0, max: 2 }), why: fc.constantFrom('silent' as const, 'deadline' as const) }) },
  { weight: 2, arbitrary: fc.record({ c: fc.constant('skew' as const), by: fc.integer({ min: 0, max: 9 }), offset: fc.integer({ min: -SKEW, max: SKEW }) }) }
)

const offset = fc.integer({ min: -SKEW, max: SKEW })
const scenario: fc.Arbitrary<Scenario> = fc.record({
  soak0: fc.constantFrom(0, 30_000),
  soak1: fc.constantFrom(0, 60_000),
  maxFailures: fc.integer({ min: 0, max: 1 }),
  waitOfflineMs: fc.constantFrom(null, 0, 60_000),
  healthy2: fc.constantFrom(50, 100),
  // the first release comes early in most histories, so that most of them exercise its waves
  steps: fc.tuple(fc.record({ dt: fc.integer({ min: 0, max: 90_000 }), cmd: fc.constant<Cmd>({ c: 'pub', rel: 0, by: 0 }) }), fc.array(fc.record({ dt: fc.integer({ min: 0, max: 90_000 }), cmd }), { minLength: 10, maxLength: 50 }))
    .map(([first, rest]) => [first, ...rest]),
  offsets: fc.array(offset, { minLength: ids.length, maxLength: ids.length }),
  nowOffsets: fc.array(offset, { minLength: ids.length, maxLength: ids.length }),
  heldSeed: fc.integer({ min: 1, max: 2 ** 30 }),
  orderSeed: fc.integer({ min: 1, max: 2 ** 30 }),
  orderly: fc.boolean()
})

// ---- reporting ----

function describeEntries (entries: Entry[]): string {
  return entries.map((e) => {
    const b = { ...(e.body as Record<string, unknown>) }
    for (const k of ['peer', 'founder']) if (typeof b[k] === 'string') b[k] = nameOf.get(b[k] as string) ?? b[k]
    if (Array.isArray(b.hosts)) b.hosts = (b.hosts as string[]).map((h) => nameOf.get(h) ?? h)
    if (b.basis !== undefined) b.basis = Object.fromEntries(Object.entries(b.basis as Record<string, number>).map(([f, s]) => [nameOf.get(f) ?? f, s]))
    delete b.targets
    delete b.waves
    return `  ${nameOf.get(e.feed)}#${e.seq} ts=${e.ts - T0} ${e.kind} ${JSON.stringify(b)}`
  }).join('\n')
}

function violation (what: string, w: number, d: Decision, held: Entry[]): Error {
  const x = d as unknown as Record<string, unknown>
  return new Error(`${what}\n  host ${NAMES[w]} decided ${JSON.stringify({ action: d.action, release: x.release, wave: x.wave, reason: x.reason })}\n  on the entries it holds:\n${describeEntries(held)}`)
}

function check (prop: fc.IProperty<[Scenario]>): void {
  fc.assert(prop, { seed: SEED, numRuns: RUNS, endOnFailure: false })
}

/** For every host: its held log, folded, and its decision at the end of the history. */
function* hostsOf (s: Scenario): Generator<{ w: number, held: Entry[], f: Folded, d: Decision, end: number }> {
  const drafts = history(s)
  const entries = materialize(drafts, (d) => d.skew)
  const end = T0 + (drafts.at(-1)?.t ?? 0)
  for (const w of HOSTS) {
    const held = heldBy(entries, w, s.heldSeed)
    const f = fold(held, s.orderSeed + w)
    yield { w, held, f, d: decideAt(f, w, end + s.nowOffsets[w]), end }
  }
}

describe('rollout decisions hold for random logs, delivery orders and clock offsets', () => {
  it('same entries ⇒ same decision, whatever the delivery order, the deciding host\'s clock and the writers\' clock offsets', () => {
    check(fc.property(scenario, (s) => {
      const drafts = history(s)
      const end = T0 + (drafts.at(-1)?.t ?? 0)
      const skewed = materialize(drafts, (d) => d.skew)
      const constant = materialize(drafts, (d) => s.offsets[d.w])
      for (const w of HOSTS) {
        const held = heldBy(skewed, w, s.heldSeed)
        const a = decideAt(fold(held, s.orderSeed), w, end + s.nowOffsets[w])
        const b = decideAt(fold(held, s.orderSeed + 1), w, end - s.nowOffsets[w])
        if (shape(a) !== shape(b)) throw violation(`same entries, another delivery order and clock: ${shape(a)} vs ${shape(b)}`, w, a, held)
        // the same history written by hosts whose clocks were off by other amounts
        const other = heldBy(constant, w, s.heldSeed)
        const c = decideAt(fold(other, s.orderSeed), w, end + s.offsets[w])
        if (shape(a) !== shape(c)) throw violation(`same facts, other writer clock offsets: ${shape(a)} vs ${shape(c)}`, w, a, held)
      }
    }))
  })

  it('no apply for a wave before every earlier wave\'s gate is met by signed attestations, on the plan frozen at the release\'s basis', () => {
    check(fc.property(scenario, (s) => {
      for (const { w, held, f, d } of hostsOf(s)) {
        if (d.action !== 'apply') continue
        const truth = truthOf(held, f.membership, d.release)
        if (truth?.plan === undefined) throw violation('applied a release whose signed entry or membership basis this host does not hold', w, d, held)
        const k = truth.plan.waveOf.get(ids[w])
        if (k === undefined) throw violation('applied a release whose plan (frozen at its basis) does not include this host', w, d, held)
        for (let j = 0; j < k; j++) if (!truth.gateMet(j)) throw violation(`a wave-${k} host (in the plan frozen at the basis) applied before wave ${j}'s gate was met by soaked/ok attestations`, w, d, held)
      }
    }))
  })

  it('once halted (or aborted, or paused), no host applies until an admin resumes (accepting the failures)', () => {
    check(fc.property(scenario, (s) => {
      for (const { w, held, f, d } of hostsOf(s)) {
        if (d.action !== 'apply') continue
        const truth = truthOf(held, f.membership, d.release) as Truth
        if (truth.aborted) throw violation('applied an aborted release', w, d, held)
        if (truth.paused) throw violation('applied a paused release', w, d, held)
        if (truth.halted) throw violation(`applied a halted release (failed: ${truth.failed.map((h) => nameOf.get(h)).join(', ')}; max ${truth.body.maxFailures})`, w, d, held)
      }
    }))
  })

  it('a halt is seen by every host that holds the failing entries', () => {
    check(fc.property(scenario, (s) => {
      for (const { w, held, f, d } of hostsOf(s)) {
        // a revoked host is out of the fleet: what it shows no longer matters
        if (!f.view.isMember(ids[w])) continue
        for (const id of RELEASE_IDS) {
          const truth = truthOf(held, f.membership, id)
          if (truth?.plan === undefined || !truth.halted || truth.aborted) continue
          const status = releaseStatus(f.rollout, f.view, id)
          if (status?.state !== 'halted') throw violation(`${id} is halted (failed: ${truth.failed.map((h) => nameOf.get(h)).join(', ')}; max ${truth.body.maxFailures}) but its status here is ${status?.state ?? 'unknown'}: ${status?.reason ?? ''}`, w, d, held)
        }
      }
    }))
  })
})

describe('the oracle the properties judge by', () => {
  const zeros = new Array<number>(ids.length).fill(0)
  const base: Scenario = { soak0: 30_000, soak1: 0, maxFailures: 0, waitOfflineMs: null, healthy2: 100, steps: [], offsets: zeros, nowOffsets: zeros, heldSeed: 1, orderSeed: 1, orderly: false }
  const truthAfter = (cmds: Cmd[]): Truth => {
    const entries = materialize(history({ ...base, steps: cmds.map((cmd) => ({ dt: 1000, cmd })) }), () => 0)
    return truthOf(entries, membershipOf(entries), RELEASE_IDS[0]) as Truth
  }
  const pub: Cmd = { c: 'pub', rel: 0, by: 0 }
  const canary = HOSTS.indexOf(ids.indexOf(truthAfter([pub]).plan?.waves[0][0] as string))
  const step = (fate: Fate): Cmd => ({ c: 'step', host: canary, rel: 0, fate })

  it('meets a soaking gate only on the host\'s own soaked entry', () => {
    assert.equal(truthAfter([pub, step('ok'), step('ok')]).gateMet(0), false, 'apply-ok alone does not pass a 30 s soak')
    assert.equal(truthAfter([pub, step('ok'), step('ok'), step('ok')]).gateMet(0), true)
  })

  it('halts on a failure or a deadline overdue, until a resume accepts the failure', () => {
    assert.equal(truthAfter([pub, step('ok'), step('ok')]).halted, false)
    assert.equal(truthAfter([pub, step('ok'), step('fail')]).halted, true)
    assert.equal(truthAfter([pub, step('ok'), step('fail'), { c: 'ctl', by: 1, rel: 0, action: 'resume', accept: true }]).halted, false)
    assert.equal(truthAfter([pub, step('ok'), step('fail'), { c: 'ctl', by: 1, rel: 0, action: 'resume', accept: false }]).halted, true, 'a resume that accepts nothing leaves the halt')
    assert.equal(truthAfter([pub, step('ok'), { c: 'overdue', by: 0, rel: 0, wave: 0, why: 'deadline' }]).halted, true)
  })
})
