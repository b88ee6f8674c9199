// The checkpoint entry and how a host judges one: every refusal driven with really signed entries
// and the real membership fold (standingAt), the schema through the real audit codec registry.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { AuditError, KindRegistry } from '../../protocols/audit/index.js'
import { headsRoot } from '../../protocols/audit/heads-root.js'
import type { Head, StoredEntry } from '../../protocols/audit/types.js'
import { applyEntry, createMembershipState, standingAt, type MembershipState } from '../../protocols/membership/index.js'
import {
  buildCheckpoint, checkCheckpoint, checkpointBody, checkpointSchemas, CHECKPOINT_KIND, isCheckpointError, newestCheckpoint, retainedRefs,
  validateCheckpoint, type CheckContext
} from '../../protocols/checkpoint/index.js'
import { fleet, headsOf, MESH, SignedFeed, T0 } from './helpers.js'

function membership (log: StoredEntry[]): MembershipState {
  const s = createMembershipState({ meshId: MESH })
  for (const e of log) applyEntry(s, e.entry)
  return s
}

function ctx (log: StoredEntry[], over: Partial<CheckContext> = {}): CheckContext {
  const s = membership(log)
  const held = new Map(log.map(e => [`${e.entry.feed}/${e.entry.seq}`, e.hash]))
  return { standingAt: (f, seq, ts) => standingAt(s, f, seq, ts), forkedAt: () => undefined, held: (f, seq) => held.get(`${f}/${seq}`), ...over }
}

/** `author` writes checkpoint `number` over everything in `log` it holds; returns the entry and its parts. */
function write (author: SignedFeed, log: StoredEntry[], number: number): { cp: StoredEntry, cover: Head[], refs: Head[] } {
  const built = buildCheckpoint(number, headsOf(log), log)
  const cp = author.append(CHECKPOINT_KIND, built.body)
  log.push(cp)
  return { cp, cover: built.cover, refs: built.refs }
}

describe('checkpoint body', () => {
  // as written before sealing: no `sealed`
  const body = { number: 1, cover: new Uint8Array(32), count: 3, retain: new Uint8Array(32).fill(1), retained: 2 }

  it('a valid body passes the registered schema and comes back typed; one without `sealed` (written before sealing) seals nothing', () => {
    const kinds = new KindRegistry()
    kinds.registerParsers(checkpointSchemas())
    kinds.validate(CHECKPOINT_KIND, body)
    assert.deepEqual(validateCheckpoint(body), { ...body, sealed: 0 })
    const sealing = { ...body, sealed: 7 }
    kinds.validate(CHECKPOINT_KIND, sealing)
    assert.deepEqual(validateCheckpoint(sealing), sealing)
    // one encoding per body: `sealed` is written only when it seals something
    assert.deepEqual(checkpointBody({ ...body, sealed: 0 }), body)
    assert.deepEqual(checkpointBody(sealing), sealing)
  })

  it('refuses missing, unknown and malformed fields with a typed error', () => {
    const bad: unknown[] = [
      null, [], new Uint8Array(3), 'x',
      { ...body, extra: 1 },
      { number: 1, cover: body.cover, count: 3, retain: body.retain },
      { ...body, number: 0 }, { ...body, number: 1.5 }, { ...body, number: 2 ** 53 }, { ...body, number: '1' },
      { ...body, count: -1 }, { ...body, retained: -1 },
      { ...body, cover: new Uint8Array(31) }, { ...body, retain: new Uint8Array(33) }, { ...body, cover: 'ab'.repeat(16) },
      { ...body, sealed: 0 }, { ...body, sealed: -1 }, { ...body, sealed: 1.5 }, { ...body, sealed: '3' }, { ...body, sealed: 2 ** 53 }
    ]
    const kinds = new KindRegistry()
    kinds.registerParsers(checkpointSchemas())
    for (const b of bad) {
      assert.throws(() => validateCheckpoint(b), (err: unknown) => isCheckpointError(err, 'CHECKPOINT_BODY_INVALID'), JSON.stringify(b))
      assert.throws(() => kinds.validate(CHECKPOINT_KIND, b), (err: unknown) => err instanceof AuditError && err.code === 'BODY_INVALID')
    }
  })
})

describe('checkCheckpoint', () => {
  it('accepts an admin\'s checkpoint whose parts hash to its roots', async () => {
    const { admin, log } = await fleet()
    const { cp, cover, refs } = write(admin, log, 1)
    assert.equal(checkCheckpoint(cp, { cover, refs }, ctx(log)), undefined)
    // a joiner holds nothing of the cover yet
    assert.equal(checkCheckpoint(cp, { cover, refs }, ctx(log, { held: () => undefined })), undefined)
  })

  it('NOT_ADMIN: a plain host, a revoked admin (past its revoke\'s cut), a demoted admin', async () => {
    const { founder, admin, host, log } = await fleet()
    const byHost = write(host, log, 1)
    assert.equal(checkCheckpoint(byHost.cp, byHost, ctx(log)), 'NOT_ADMIN')
    const early = write(admin, log, 1)
    const late = write(admin, log, 2)
    log.push(founder.append('revoke', { peer: admin.id, after: early.cp.entry.seq }))
    // the revoke stops the later checkpoint and never voids the earlier one (DESIGN §8)
    assert.equal(checkCheckpoint(late.cp, late, ctx(log)), 'NOT_ADMIN')
    assert.equal(checkCheckpoint(early.cp, early, ctx(log)), undefined)

    const [f2, demoted] = await SignedFeed.many(2)
    const log2 = [
      f2.append('genesis', { mesh: MESH, name: 'test', founder: f2.id }, T0),
      f2.append('admit', { peer: demoted.id, role: 'admin', tags: [] }, T0 + 1),
      f2.append('grant', { peer: demoted.id, role: 'host' }, T0 + 10)
    ]
    demoted.append('status', { n: 0 }, T0 + 20)
    const after = buildCheckpoint(1, headsOf(log2), log2)
    const cp = demoted.append(CHECKPOINT_KIND, after.body, T0 + 20)
    assert.equal(checkCheckpoint(cp, after, ctx(log2)), 'NOT_ADMIN')
  })

  it('FORKED_FEED: a cover naming a feed forked at or below its covered seq', async () => {
    const { founder, admin, log } = await fleet()
    const { cp, cover, refs } = write(admin, log, 1)
    const founderHead = cover.find(h => h.feed === founder.id)!
    const forkedAt = (seq: number) => (feed: string) => feed === founder.id ? seq : undefined
    assert.equal(checkCheckpoint(cp, { cover, refs }, ctx(log, { forkedAt: forkedAt(founderHead.seq) })), 'FORKED_FEED')
    assert.equal(checkCheckpoint(cp, { cover, refs }, ctx(log, { forkedAt: forkedAt(0) })), 'FORKED_FEED')
    // a fork above what it covers is no reason to refuse what it covers
    assert.equal(checkCheckpoint(cp, { cover, refs }, ctx(log, { forkedAt: forkedAt(founderHead.seq + 1) })), undefined)
  })

  it('COVER_MISMATCH: a cover that is not the signed one, or does not end the signer\'s feed at its prev', async () => {
    const { admin, log } = await fleet()
    const { cp, cover, refs } = write(admin, log, 1)
    const c = ctx(log)
    assert.equal(checkCheckpoint(cp, { cover: cover.slice(1), refs }, c), 'COVER_MISMATCH')
    assert.equal(checkCheckpoint(cp, { cover: cover.map((h, i) => i === 0 ? { ...h, hash: new Uint8Array(32).fill(7) } : h), refs }, c), 'COVER_MISMATCH')
    assert.equal(checkCheckpoint(cp, { cover: [...cover, cover[0]], refs }, c), 'COVER_MISMATCH')
    assert.equal(checkCheckpoint(cp, { cover: cover.map(h => ({ ...h, hash: h.hash.subarray(0, 31) })), refs }, c), 'COVER_MISMATCH')
    // signed roots over a cover that leaves out the signer's own entry before the checkpoint
    const fresh = await fleet()
    fresh.admin.append('status', { n: 0 })
    const built = buildCheckpoint(1, headsOf(fresh.log), fresh.log)
    const cp2 = fresh.admin.append(CHECKPOINT_KIND, built.body)
    assert.equal(checkCheckpoint(cp2, built, ctx(fresh.log)), 'COVER_MISMATCH')
  })

  it('RETAIN_MISMATCH: refs that are not the signed ones, or reach outside the cover', async () => {
    const { admin, host, log } = await fleet()
    log.push(host.append('witness', { heads: [] }))
    const { cp, cover, refs } = write(admin, log, 1)
    const c = ctx(log)
    assert.ok(refs.length > 0)
    assert.equal(checkCheckpoint(cp, { cover, refs: refs.slice(1) }, c), 'RETAIN_MISMATCH')
    assert.equal(checkCheckpoint(cp, { cover, refs: [...refs, refs[0]] }, c), 'RETAIN_MISMATCH')
    assert.equal(checkCheckpoint(cp, { cover, refs: refs.map((r, i) => i === 0 ? { ...r, hash: new Uint8Array(32) } : r) }, c), 'RETAIN_MISMATCH')
    // a signer that signs a ref above its cover: roots consistent with the parts, still refused
    const cover2 = headsOf(log)
    const refs2 = [...retainedRefs(log), { feed: host.id, seq: 99, hash: new Uint8Array(32) }]
    const body = { number: 2, cover: headsRoot(cover2), count: cover2.length, retain: headsRoot(refs2), retained: refs2.length }
    const cp2 = admin.append(CHECKPOINT_KIND, body)
    assert.equal(checkCheckpoint(cp2, { cover: cover2, refs: refs2 }, c), 'RETAIN_MISMATCH')
    assert.equal(checkCheckpoint(cp2, { cover: cover2, refs: refs2.slice(0, -1) }, c), 'RETAIN_MISMATCH')
  })

  it('CONFLICT: a covered head or ref that differs from an entry this host holds', async () => {
    const { admin, log } = await fleet()
    const genesis = log[0]
    const { cp, cover, refs } = write(admin, log, 1)
    const other = new Uint8Array(32).fill(9)
    assert.ok(refs.some(r => r.feed === genesis.entry.feed && r.seq === 0))
    const heldAt = (feed: string, seq: number) => (f: string, s: number): Uint8Array | undefined => f === feed && s === seq ? other : undefined
    assert.equal(checkCheckpoint(cp, { cover, refs }, ctx(log, { held: heldAt(genesis.entry.feed, 0) })), 'CONFLICT')
    const head = cover[0]
    assert.equal(checkCheckpoint(cp, { cover, refs }, ctx(log, { held: heldAt(head.feed, head.seq) })), 'CONFLICT')
  })

  it('STALE: a number not above the newest counted checkpoint', async () => {
    const { founder, admin, log } = await fleet()
    const one = write(admin, log, 1)
    const two = write(founder, log, 2)
    const newest = newestCheckpoint(log.map(e => e.entry), ctx(log).standingAt)
    assert.deepEqual(newest, { number: 2, feed: founder.id, seq: two.cp.entry.seq })
    assert.equal(checkCheckpoint(one.cp, one, ctx(log, { newest })), 'STALE')
    assert.equal(checkCheckpoint(two.cp, two, ctx(log, { newest })), undefined)
    // the same number written by another (feed, seq) than the one that counts
    const rival = write(admin, log, 2)
    const [first, second] = founder.id < admin.id ? [two, rival] : [rival, two]
    const n2 = newestCheckpoint(log.map(e => e.entry), ctx(log).standingAt)
    assert.deepEqual(n2, { number: 2, feed: first.cp.entry.feed, seq: first.cp.entry.seq })
    assert.equal(checkCheckpoint(second.cp, second, ctx(log, { newest: n2 })), 'STALE')
    assert.equal(checkCheckpoint(first.cp, first, ctx(log, { newest: n2 })), undefined)
  })

  it('a non-admin\'s checkpoint never counts, however high its number', async () => {
    const { admin, host, log } = await fleet()
    write(admin, log, 3)
    write(host, log, 1000)
    assert.equal(newestCheckpoint(log.map(e => e.entry), ctx(log).standingAt)?.number, 3)
  })

  it('an entry of another kind is no checkpoint: a typed error', async () => {
    const { host, log } = await fleet()
    const e = host.append('status', { n: 1 })
    assert.throws(() => checkCheckpoint(e, { cover: [], refs: [] }, ctx(log)), (err: unknown) => isCheckpointError(err, 'CHECKPOINT_BODY_INVALID'))
  })
})
