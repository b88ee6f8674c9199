// Finality (protocols/rollout/seal.ts): a counted checkpoint seals the releases numbered below
// its `sealed`. Directed histories of really signed entries over the real folds: what the writer
// seals, that a seal holds against the entries that would reopen a release (an abort of the newer
// one, an autoRevert of a halted one), that only a checkpoint by an admin seals, and that a host
// joining from a sealing checkpoint, which no longer holds the sealed releases' outcomes, decides
// what a host that replayed everything decides.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { StoredEntry } from '../../protocols/audit/types.js'
import { applyEntry, decide, emptyState, releaseStatus, rollbackTargets, sealedBelow, sealFloor, type ReleaseBody, type RolloutState } from '../../protocols/rollout/index.js'
import { checkpointBody, retainedRefs } from '../../protocols/checkpoint/index.js'
import { fleet, FoldedMembership, fromCheckpoint, NOW, observe, SignedFeed, type Cover } from './helpers.js'

const PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-system-a'
const PATH_B = '/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-system-b'

function release (id: string, number: number, over: Partial<ReleaseBody> = {}): ReleaseBody {
  return { id, number, targets: [{ tag: 'web', path: PATH, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0, ...over }
}

function seal (sealed: number, number = 1): Record<string, unknown> {
  return checkpointBody({ number, cover: new Uint8Array(32), count: 0, retain: new Uint8Array(32), retained: 0, sealed })
}

function fold (log: StoredEntry[]): { state: RolloutState, m: FoldedMembership } {
  const state = emptyState()
  const m = new FoldedMembership(() => Infinity)
  for (const { entry } of log) { m.add(entry); applyEntry(state, entry) }
  return { state, m }
}

const everything = (log: StoredEntry[]): Cover => {
  const c = new Map<string, number>()
  for (const e of log) c.set(e.entry.feed, e.entry.seq)
  return c
}

/** A host web2 joins from a checkpoint over `log` sealing below `sealed`, then `after` is written: it decides as a host holding everything. */
function sameDecisions (log: StoredEntry[], after: StoredEntry[], sealed: number, hosts: string[], releases: string[]): StoredEntry[] {
  const all = [...log, ...after]
  const joined = fromCheckpoint(all, everything(log), all, sealed)
  assert.deepStrictEqual(observe(joined, () => Infinity, hosts, releases, []), observe(all, () => Infinity, hosts, releases, []))
  return joined
}

describe('sealing releases', () => {
  it('the writer seals every release below the oldest still under way, never the newest, never less than before', async () => {
    const { admin, host, log } = await fleet()
    log.push(admin.append('release', release('r1', 1)), host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }))
    let { state, m } = fold(log)
    assert.equal(sealFloor(state, m), 1, 'r1 is under way: nothing below it to seal')
    log.push(host.append('apply-ok', { release: 'r1', path: PATH, healthyAt: 0 }), admin.append('release', release('r2', 2, { targets: [{ tag: 'web', path: PATH_B, sources: ['peers'] }] })))
    ;({ state, m } = fold(log))
    assert.equal(sealFloor(state, m), 2, 'r1 past its gate, r2 the newest: r1 sealed')
    log.push(host.append('apply-ok', { release: 'r2', path: PATH_B, healthyAt: 0 }), admin.append('release', release('r3', 3)), admin.append('release-control', { release: 'r3', action: 'abort' }))
    ;({ state, m } = fold(log))
    assert.equal(sealFloor(state, m), 2, 'an aborted newest release is not the newest under way')
    assert.equal(rollbackTargets(state, m, 'r2')?.[0].from?.release.body.id, 'r1', 'r1 was healthy on the fleet')
    log.push(admin.append('checkpoint', seal(5)))
    ;({ state, m } = fold(log))
    assert.equal(rollbackTargets(state, m, 'r2')?.[0].from, undefined, 'sealed, r1 is no rollback target')
    assert.equal(sealedBelow(state, m), 5)
    assert.equal(sealFloor(state, m), 5, 'never below what a counted checkpoint sealed')
  })

  it('a sealed release is not brought back by aborting the newer one, and the joiner agrees', async () => {
    const { founder, admin, host, log } = await fleet()
    const [web2] = await SignedFeed.many(1)
    log.push(founder.append('admit', { peer: web2.id, role: 'host', tags: ['web'] }))
    // web2 was away for r1; r2 supersedes it and web2 applies r2
    log.push(admin.append('release', release('r1', 1)), host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), host.append('apply-ok', { release: 'r1', path: PATH, healthyAt: 0 }))
    log.push(admin.append('release', release('r2', 2, { targets: [{ tag: 'web', path: PATH_B, sources: ['peers'] }] })))
    const abort = admin.append('release-control', { release: 'r2', action: 'abort' })
    // without a seal the abort revives r1 for web2, which never applied it
    let { state, m } = fold([...log, abort])
    assert.equal(decide(state, m, web2.id, NOW).action, 'apply')
    const cp = admin.append('checkpoint', seal(2))
    ;({ state, m } = fold([...log, cp, abort]))
    const d = decide(state, m, web2.id, NOW)
    assert.equal(d.action, 'none', JSON.stringify(d))
    assert.equal(releaseStatus(state, m, 'r1')?.reason, 'sealed by a checkpoint: final')
    assert.deepEqual(rollbackTargets(state, m, 'r2')?.map(t => t.from), [undefined], 'a sealed release is no rollback target')
    // the outcomes of r1 are not retained, and the folds from the checkpoint decide the same
    const joined = sameDecisions([...log, cp], [abort], 2, [host.id, web2.id], ['r1', 'r2'])
    assert.ok(!joined.some(e => e.entry.feed === host.id && e.entry.kind.startsWith('apply-')), 'r1 outcomes dropped')
  })

  it('a halted autoRevert release, once sealed, no longer reverts a host still on it', async () => {
    const { founder, admin, host, log } = await fleet()
    const [web2] = await SignedFeed.many(1)
    log.push(founder.append('admit', { peer: web2.id, role: 'host', tags: ['web'] }))
    log.push(admin.append('release', release('r1', 1, { autoRevert: true, maxFailures: 0 })))
    log.push(host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), host.append('apply-ok', { release: 'r1', path: PATH, healthyAt: 0 }))
    log.push(web2.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), web2.append('apply-failed', { release: 'r1', path: PATH, reason: 'unit failed' }))
    let { state, m } = fold(log)
    assert.equal(decide(state, m, host.id, NOW).action, 'revert')
    log.push(admin.append('release', release('r2', 2, { targets: [{ tag: 'db', path: PATH_B, sources: ['peers'] }] })), admin.append('checkpoint', seal(2)))
    ;({ state, m } = fold(log))
    assert.equal(decide(state, m, host.id, NOW).action, 'none')
    // web2's failure is kept (holds pair failures per attempt); its other outcomes and host's go
    const refs = new Set(retainedRefs(log, 2).map(r => `${r.feed}/${r.seq}`))
    assert.deepEqual(log.filter(e => e.entry.kind.startsWith('apply-') && refs.has(`${e.entry.feed}/${e.entry.seq}`)).map(e => e.entry.kind), ['apply-failed'])
    const resume = admin.append('release-control', { release: 'r1', action: 'resume', accept: [web2.id] })
    ;({ state, m } = fold([...log, resume]))
    assert.equal(decide(state, m, host.id, NOW).action, 'none', 'a resume accepting the failure does not reopen it either')
    sameDecisions(log, [resume], 2, [host.id, web2.id], ['r1', 'r2'])
  })

  it('a revoke whose cut voids the abort of a sealed release does not bring it back', async () => {
    const { founder, admin, host, log } = await fleet()
    log.push(founder.append('release', release('r1', 1)))
    const before = admin.append('status', { n: 0 })
    log.push(before, admin.append('release-control', { release: 'r1', action: 'abort' }))
    log.push(founder.append('release', release('r2', 2, { targets: [{ tag: 'db', path: PATH_B, sources: ['peers'] }] })))
    const revoke = founder.append('revoke', { peer: admin.id, after: before.entry.seq })
    let { state, m } = fold([...log, revoke])
    assert.equal(decide(state, m, host.id, NOW).action, 'apply', 'unsealed, the voided abort lets r1 roll out again')
    const cp = founder.append('checkpoint', seal(2))
    ;({ state, m } = fold([...log, cp, revoke]))
    assert.equal(decide(state, m, host.id, NOW).action, 'none')
    sameDecisions([...log, cp], [revoke], 2, [host.id], ['r1', 'r2'])
  })

  it('an id reused above the floor after the cover stays sealed as a whole, and the joiner agrees', async () => {
    const { founder, admin, host, log } = await fleet()
    // the reuse wins as the lower (feed, seq), the rule for an id used twice
    const [lo, hi] = founder.id < admin.id ? [founder, admin] : [admin, founder]
    log.push(hi.append('release', release('r1', 1)), host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), host.append('apply-ok', { release: 'r1', path: PATH, healthyAt: 0 }))
    log.push(hi.append('release', release('r2', 2, { targets: [{ tag: 'web', path: PATH_B, sources: ['peers'] }] })), host.append('apply-start', { release: 'r2', path: PATH_B, wave: 0 }), host.append('apply-ok', { release: 'r2', path: PATH_B, healthyAt: 0 }))
    log.push(hi.append('checkpoint', seal(2)))
    // a hand-made entry after the cover: r1 again, numbered above the floor
    const reuse = lo.append('release', release('r1', 3))
    const { state, m } = fold([...log, reuse])
    assert.equal(releaseStatus(state, m, 'r1')?.reason, 'sealed by a checkpoint: final')
    assert.equal(releaseStatus(state, m, 'r1')?.number, 1, 'the id means its entry below the floor')
    assert.equal(decide(state, m, host.id, NOW).action, 'none')
    const joined = sameDecisions(log, [reuse], 2, [host.id], ['r1', 'r2'])
    assert.ok(joined.includes(reuse) && joined.includes(log[3]), 'both entries of r1 are kept')
  })

  it('a checkpoint by a non-admin seals nothing, and its floor drops nothing from what the folds read', async () => {
    const { admin, host, log } = await fleet()
    log.push(admin.append('release', release('r1', 1)), host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), host.append('checkpoint', seal(9)))
    const { state, m } = fold(log)
    assert.equal(sealedBelow(state, m), 0)
    assert.equal(decide(state, m, host.id, NOW).action, 'none')
    assert.equal(releaseStatus(state, m, 'r1')?.state, 'rolling')
  })

  it('a release id every covered entry numbers below the floor loses its outcomes; one numbered at or above it keeps them', async () => {
    const { admin, founder, host, log } = await fleet()
    log.push(admin.append('release', release('r1', 1)), host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }))
    log.push(admin.append('release', release('r2', 2)), host.append('apply-start', { release: 'r2', path: PATH, wave: 0 }))
    // r2 reused by another admin at number 3: whichever counts, it is not below 3
    log.push(founder.append('release', release('r2', 3)))
    const kept = new Set(retainedRefs(log, 3).map(r => `${r.feed}/${r.seq}`))
    const starts = log.filter(e => e.entry.kind === 'apply-start').map(e => [(e.entry.body as { release: string }).release, kept.has(`${e.entry.feed}/${e.entry.seq}`)])
    assert.deepEqual(starts, [['r1', false], ['r2', true]])
    assert.ok(log.filter(e => e.entry.kind === 'release').every(e => kept.has(`${e.entry.feed}/${e.entry.seq}`)))
  })
})
