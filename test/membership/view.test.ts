import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  applyEntry, computeView, createMembershipState, isAdmin, isMember, standingAt, viewOf, type MemberView
} from '../../protocols/membership/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import { Log, MESH, entry, peers, rng, shuffled } from './helpers.js'

const [F, A, B, C, D, E, X] = await peers(7) as [string, string, string, string, string, string, string]
const config = { meshId: MESH }
const xwing = new Uint8Array(1216).fill(7)

function view (entries: Entry[]): MemberView {
  return computeView(entries, config)
}

function memberSet (v: MemberView): string[] {
  return [...v.members.keys()].sort()
}

/** The view of `entries` in `orders` shuffled delivery orders, each also fed incrementally. */
function assertOrderIndependent (entries: Entry[], orders = 200, seed = 1): MemberView {
  const expected = view(entries)
  const random = rng(seed)
  for (let i = 0; i < orders; i++) {
    const order = shuffled(entries, random)
    assert.deepEqual(view(order), expected, `order ${i} (seed ${seed})`)
    // incremental, reading the view at random points (exercises the cached fast path)
    const state = createMembershipState(config)
    for (const e of order) {
      applyEntry(state, e)
      if (random() < 0.2) viewOf(state)
    }
    assert.deepEqual(viewOf(state), expected, `incremental order ${i} (seed ${seed})`)
  }
  return expected
}

test('the genesis makes the founder the only member, an admin', () => {
  const log = new Log()
  log.add(F, 1000, 'genesis', { mesh: MESH, name: 'prod', founder: F, xwing })
  const v = view(log.entries)
  assert.equal(v.founder, F)
  assert.equal(v.name, 'prod')
  assert.deepEqual(v.members.get(F), { role: 'admin', tags: [], admittedBy: F, admittedAt: 1000, xwing })
  assert.ok(isAdmin(v, F))
  assert.equal(v.revoked.size, 0)
})

test('a genesis for another mesh, not at seq 0, not by its founder, or not the pinned founder is no root', () => {
  assert.equal(view([entry(F, 0, 1, 'genesis', { mesh: 'other', name: '', founder: F })]).founder, undefined)
  assert.equal(view([entry(F, 1, 1, 'genesis', { mesh: MESH, name: '', founder: F })]).founder, undefined)
  assert.equal(view([entry(A, 0, 1, 'genesis', { mesh: MESH, name: '', founder: F })]).founder, undefined)
  const two = [entry(F, 0, 5, 'genesis', { mesh: MESH, name: '', founder: F }), entry(A, 0, 1, 'genesis', { mesh: MESH, name: '', founder: A })]
  assert.equal(view(two).founder, A) // contested and unpinned: first in (ts, feed) order
  assert.equal(computeView(two, { meshId: MESH, founder: F }).founder, F)
  assert.equal(view([]).members.size, 0)
})

test('admits by the founder and by admins it admitted count, in any delivery order', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: ['eu'], invite: 'a'.repeat(32), xwing })
  log.add(A, 1200, 'admit', { peer: B, role: 'host', tags: ['gpu'] })
  log.add(B, 1300, 'admit', { peer: C, role: 'host', tags: [] }) // B is a host: no authority
  log.add(X, 1300, 'admit', { peer: D, role: 'admin', tags: [] }) // X is no member
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F, A, B].sort())
  assert.deepEqual(v.members.get(A), { role: 'admin', tags: ['eu'], admittedBy: F, admittedAt: 1100, invite: 'a'.repeat(32), xwing })
  assert.deepEqual(v.members.get(B), { role: 'host', tags: ['gpu'], admittedBy: A, admittedAt: 1200 })
  assert.ok(isMember(v, B) && !isAdmin(v, B))
  assert.ok(!isMember(v, C) && !isMember(v, D) && !isMember(v, X))
})

test('entries of other kinds and bodies that fail their schema are ignored', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'release', { id: 'r1' })
  log.add(F, 1150, 'constructor', { peer: A, role: 'admin', tags: [] })
  log.add(F, 1200, 'admit', { peer: A, role: 'superuser', tags: [] })
  log.add(F, 1300, 'admit', { peer: B, role: 'host', tags: [] })
  assert.deepEqual(memberSet(view(log.entries)), [F, B].sort())
  const state = createMembershipState(config)
  assert.equal(applyEntry(state, log.entries[1]!), false)
  assert.equal(applyEntry(state, log.entries[2]!), false)
  assert.equal(applyEntry(state, log.entries[3]!), false)
  assert.equal(applyEntry(state, log.entries[0]!), true)
  assert.equal(applyEntry(state, log.entries[0]!), false) // duplicate
})

test('grants change role and tags; conflicting grants resolve by (ts, feed, seq)', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(F, 1110, 'admit', { peer: B, role: 'host', tags: ['old'] })
  log.add(F, 1500, 'grant', { peer: B, tags: ['by-f'] })
  log.add(A, 1500, 'grant', { peer: B, tags: ['by-a'] }) // same ts: the feed id decides
  log.add(A, 1400, 'grant', { peer: B, role: 'admin' })
  log.add(F, 1300, 'grant', { peer: B, role: 'host' }) // earlier ts: the promotion wins
  const v = assertOrderIndependent(log.entries)
  const lastTags = F > A ? 'by-f' : 'by-a'
  assert.deepEqual(v.members.get(B), { role: 'admin', tags: [lastTags], admittedBy: F, admittedAt: 1110 })
})

test('a host promoted by grant may admit; a grant to a non-member admits no one', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'host', tags: [] })
  log.add(A, 1150, 'admit', { peer: C, role: 'host', tags: [] }) // before the promotion: void
  log.add(F, 1200, 'grant', { peer: A, role: 'admin' })
  log.add(A, 1300, 'admit', { peer: B, role: 'host', tags: [] })
  log.add(F, 1400, 'grant', { peer: X, role: 'admin', tags: ['x'] })
  log.add(X, 1500, 'admit', { peer: D, role: 'host', tags: [] })
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F, A, B].sort())
  assert.ok(isAdmin(v, A))
})

test('a demoted admin keeps its earlier admits but its later ones are void', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(A, 1200, 'admit', { peer: B, role: 'host', tags: [] })
  log.add(F, 1300, 'grant', { peer: A, role: 'host' })
  log.add(A, 1400, 'admit', { peer: C, role: 'host', tags: [] })
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F, A, B].sort())
  assert.equal(v.members.get(A)!.role, 'host')
})

test('a new admin whose clock lags its admitter still has authority', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 5000, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(A, 4000, 'admit', { peer: B, role: 'host', tags: [] })
  assert.ok(isMember(view(log.entries), B))
})

test('a revoked peer leaves the members, for good, whatever order admit and revoke arrive in', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(F, 1200, 'admit', { peer: B, role: 'host', tags: [] })
  log.add(F, 1300, 'revoke', { peer: B, after: -1, reason: 'decommissioned' })
  log.add(A, 1400, 'admit', { peer: B, role: 'host', tags: [] }) // later re-admit: still revoked
  log.add(A, 1250, 'admit', { peer: C, role: 'host', tags: [] }) // concurrent admit and revoke of C
  log.add(F, 1240, 'revoke', { peer: C, after: -1 })
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F, A].sort())
  assert.deepEqual(v.revoked.get(B), { by: F, at: 1300, reason: 'decommissioned' })
  assert.deepEqual(v.revoked.get(C), { by: F, at: 1240 })
})

test("a revoked admin's entries after `after` carry no authority; those before still do", () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(A, 1200, 'admit', { peer: B, role: 'host', tags: [] }) // A seq 0
  const seen = log.seqOf(A) - 1
  log.add(F, 1300, 'revoke', { peer: A, after: seen })
  log.add(A, 1250, 'admit', { peer: C, role: 'host', tags: [] }) // A seq 1: backdated, still void
  log.add(A, 1400, 'grant', { peer: B, role: 'admin' })
  log.add(A, 1500, 'revoke', { peer: F, after: 10 }) // revenge revoke: void
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F, B].sort())
  assert.equal(v.members.get(B)!.role, 'host')
  assert.ok(v.revoked.has(A) && !v.revoked.has(F))
})

test('standing is judged as of the entry: a revoke cuts by seq, a demotion by ts, and neither reaches back', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(F, 1100, 'admit', { peer: B, role: 'admin', tags: [] })
  log.add(F, 1200, 'revoke', { peer: A, after: 3 })
  log.add(F, 1300, 'grant', { peer: B, role: 'host' })
  for (const order of [log.entries, [...log.entries].reverse()]) {
    const state = createMembershipState(config)
    for (const e of order) applyEntry(state, e)
    assert.deepEqual(standingAt(state, A, 3, 9999), { member: true, admin: true }) // before the cut, whatever its ts
    assert.deepEqual(standingAt(state, A, 4, 0), { member: false, admin: false }) // after it, even backdated
    assert.deepEqual(standingAt(state, B, 7, 1299), { member: true, admin: true })
    assert.deepEqual(standingAt(state, B, 8, 1300), { member: true, admin: false })
    assert.deepEqual(standingAt(state, X, 0, 1000), { member: false, admin: false })
    assert.deepEqual(standingAt(state, F, 50, 5000), { member: true, admin: true })
  }
})

test('authority lost upstream is lost downstream: admins admitted by a void admit are void', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(F, 1200, 'revoke', { peer: A, after: -1 })
  log.add(A, 1150, 'admit', { peer: B, role: 'admin', tags: [] })
  log.add(B, 1160, 'admit', { peer: C, role: 'host', tags: [] })
  log.add(B, 1170, 'revoke', { peer: F, after: -1 })
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F])
})

test('concurrent mutual revocation by two admins revokes both, in every order', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(F, 1100, 'admit', { peer: B, role: 'admin', tags: [] })
  log.add(A, 1200, 'admit', { peer: C, role: 'host', tags: [] }) // A seq 0
  log.add(B, 1200, 'admit', { peer: D, role: 'host', tags: [] }) // B seq 0
  log.add(A, 1300, 'revoke', { peer: B, after: 0 }) // A seq 1, saw B up to 0
  log.add(B, 1300, 'revoke', { peer: A, after: 0 }) // B seq 1, saw A up to 0
  log.add(A, 1400, 'admit', { peer: E, role: 'host', tags: [] }) // A seq 2: after its cut
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F, C, D].sort())
  assert.ok(v.revoked.has(A) && v.revoked.has(B))
})

test('a revoke that saw the other side wins over one that did not', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(F, 1100, 'admit', { peer: B, role: 'admin', tags: [] })
  log.add(B, 1200, 'revoke', { peer: A, after: -1 }) // B seq 0
  log.add(A, 1300, 'revoke', { peer: B, after: 0 }) // A seq 0, after saw B's revoke: written after A's cut
  const v = assertOrderIndependent(log.entries)
  assert.deepEqual(memberSet(v), [F, B].sort())
  assert.deepEqual([...v.revoked.keys()], [A])
})

test('an equivocated (feed, seq) counts for neither version, in every order', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  const forkSeq = log.seqOf(A)
  log.add(A, 1200, 'admit', { peer: B, role: 'host', tags: [] })
  const fork = entry(A, forkSeq, 1200, 'admit', { peer: C, role: 'host', tags: [] })
  log.add(A, 1300, 'admit', { peer: D, role: 'host', tags: [] })
  const v = assertOrderIndependent([...log.entries, fork])
  assert.deepEqual(memberSet(v), [F, A, D].sort())
})

test('the founder can be revoked by an admin; authority then rests with the admins', () => {
  const log = new Log()
  log.genesis(F)
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [] })
  log.add(A, 1200, 'revoke', { peer: F, after: 1, reason: 'host stolen' })
  log.add(F, 1300, 'admit', { peer: X, role: 'admin', tags: [] }) // F seq 2: after the cut
  log.add(A, 1400, 'admit', { peer: B, role: 'host', tags: [] })
  const v = assertOrderIndependent(log.entries)
  assert.equal(v.founder, F)
  assert.deepEqual(memberSet(v), [A, B].sort())
  assert.ok(!isAdmin(v, F))
})

test('200 random scenarios: identical views in 200 delivery orders each set (sampled) and incrementally', () => {
  const ids = [F, A, B, C, D, E, X]
  for (let s = 0; s < 200; s++) {
    const random = rng(1000 + s)
    const log = new Log()
    log.genesis(F, 0)
    const pick = (): string => ids[Math.floor(random() * ids.length)]!
    for (let i = 0; i < 25; i++) {
      const author = random() < 0.4 ? F : pick()
      const ts = Math.floor(random() * 50)
      const r = random()
      if (r < 0.45) log.add(author, ts, 'admit', { peer: pick(), role: random() < 0.5 ? 'admin' : 'host', tags: random() < 0.5 ? [] : ['t' + Math.floor(random() * 3)] })
      else if (r < 0.65) log.add(author, ts, 'grant', random() < 0.5 ? { peer: pick(), role: random() < 0.5 ? 'admin' : 'host' } : { peer: pick(), tags: ['g' + i] })
      else if (r < 0.85) {
        const target = pick()
        log.add(author, ts, 'revoke', { peer: target, after: Math.floor(random() * (log.seqOf(target) + 1)) - 1 })
      } else log.add(author, ts, 'status', { ok: true })
    }
    // every scenario in 3 orders; every 20th in 200
    assertOrderIndependent(log.entries, s % 20 === 0 ? 200 : 3, s)
  }
})
