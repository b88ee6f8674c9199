// What a checkpoint keeps below its cover (retain.ts), on directed histories of really signed
// entries: the rule per kind, and the histories that make "drop a settled release's outcomes"
// wrong — an entry written after the cover reopens a release the cover saw closed (a revoke
// whose cut is behind an abort, a resume accepting the failure that halted it, a hand retry
// after a failure). Each time the folds over (retained ∪ after) must decide what the folds over
// everything decide. The random version is retain.property.test.ts.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { StoredEntry } from '../../protocols/audit/types.js'
import { controlState, emptyState, applyEntry, releaseStatus, type ReleaseBody } from '../../protocols/rollout/index.js'
import { checkpointBody, retainedRefs } from '../../protocols/checkpoint/index.js'
import { fleet, FoldedMembership, fromCheckpoint, observe, SignedFeed, T0, type Cover, type Fleet } from './helpers.js'

const PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-system-a'
const PATH_B = '/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-system-b'

function release (id: string, number: number, over: Partial<ReleaseBody> = {}): ReleaseBody {
  return { id, number, targets: [{ tag: 'web', path: PATH, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0, ...over }
}

function coverOf (log: StoredEntry[]): Cover {
  const cover = new Map<string, number>()
  for (const e of log) cover.set(e.entry.feed, e.entry.seq)
  return cover
}

/** The release's status and control as a host that holds `log` sees them. */
function standing (log: StoredEntry[], id: string): { state: string | undefined, aborted: boolean } {
  const state = emptyState()
  const m = new FoldedMembership(() => Infinity)
  for (const { entry } of log) { m.add(entry); applyEntry(state, entry) }
  return { state: releaseStatus(state, m, id)?.state, aborted: controlState(state, m, id).aborted }
}

/** Folds from the checkpoint at `cover` and folds over everything decide the same; returns how many covered entries were dropped. */
function sameDecisions (log: StoredEntry[], cover: Cover, hosts: string[], releases: string[]): number {
  const heads = coverOf(log)
  const held = (feed: string): number => heads.get(feed) ?? -1
  const joined = fromCheckpoint(log, cover, log)
  assert.deepStrictEqual(observe(joined, held, hosts, releases, []), observe(log, held, hosts, releases, []))
  return log.length - joined.length
}

async function webFleet (): Promise<Fleet & { web2: SignedFeed }> {
  const f = await fleet()
  const [web2] = await SignedFeed.many(1)
  f.log.push(f.founder.append('admit', { peer: web2.id, role: 'host', tags: ['web'] }))
  return { ...f, web2 }
}

describe('retainedRefs', () => {
  it('keeps membership, rooms, releases and controls, sealing checkpoints, the newest outcome per host and release; never witnesses', async () => {
    const { founder, admin, host, log } = await fleet()
    const room = { room: 'ab'.repeat(16), epoch: 1, kid: new Uint8Array(16), keys: [] }
    const kept = [
      ...log,
      admin.append('release', release('r1', 1)),
      admin.append('release-control', { release: 'r1', action: 'pause' }),
      admin.append('room-rekey', room),
      host.append('overdue', { release: 'r1', wave: 0, hosts: [host.id], why: 'silent' }),
      admin.append('checkpoint', checkpointBody({ number: 1, cover: new Uint8Array(32), count: 0, retain: new Uint8Array(32), retained: 0, sealed: 1 }))
    ]
    const start = host.append('apply-start', { release: 'r1', path: PATH, wave: 0 })
    const ok = host.append('apply-ok', { release: 'r1', path: PATH, healthyAt: T0 })
    const okHealth = host.append('health', { release: 'r1', path: PATH, ok: true })
    const noRelease = host.append('health', { path: PATH, ok: false })
    const badHealth = host.append('health', { release: 'r1', path: PATH, ok: false })
    const dropped = [start, okHealth, noRelease, founder.append('witness', { heads: [] }), host.append('status', { n: 1 }), admin.append('checkpoint', { n: 1 }),
      admin.append('checkpoint', checkpointBody({ number: 2, cover: new Uint8Array(32), count: 0, retain: new Uint8Array(32), retained: 0, sealed: 0 }))]
    const all = [...kept, ...dropped, ok, badHealth]
    const refs = retainedRefs(all)
    const key = (h: { feed: string, seq: number }): string => `${h.feed}/${h.seq}`
    assert.deepEqual(new Set(refs.map(key)), new Set([...kept, ok, badHealth].map(e => key(e.entry))))
    for (const r of refs) assert.deepEqual(r.hash, all.find(e => key(e.entry) === key(r))!.hash)
  })

  it('an abort the cover saw, voided afterwards by a revoke whose cut is behind it: the release lives again', async () => {
    const { founder, admin, host, web2, log } = await webFleet()
    log.push(founder.append('release', release('r1', 1)))
    for (const h of [host, web2]) log.push(h.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), h.append('apply-ok', { release: 'r1', path: PATH, healthyAt: T0 }))
    log.push(founder.append('release', release('r2', 2, { targets: [{ tag: 'web', path: PATH_B, sources: ['peers'] }] })))
    log.push(host.append('apply-start', { release: 'r2', path: PATH_B, wave: 0 }), host.append('apply-ok', { release: 'r2', path: PATH_B, healthyAt: T0 }))
    const seen = admin.append('status', { n: 0 })
    log.push(seen, admin.append('release-control', { release: 'r2', action: 'abort' }))
    const cover = coverOf(log)
    assert.deepEqual(standing(log, 'r2'), { state: 'aborted', aborted: true })
    // written by the founder, which had seen only the admin's entry before the abort
    log.push(founder.append('revoke', { peer: admin.id, after: seen.entry.seq }))
    assert.deepEqual(standing(log, 'r2'), { state: 'rolling', aborted: false })
    assert.ok(sameDecisions(log, cover, [founder.id, admin.id, host.id, web2.id], ['r1', 'r2']) > 0)
  })

  it('a release halted at the cover, resumed afterwards with its failure accepted', async () => {
    const { admin, host, web2, log } = await webFleet()
    log.push(admin.append('release', release('r1', 1, { waves: [{ hosts: [host.id], gate: { healthy: 100, soakMs: 0 } }, { hosts: [web2.id], gate: { healthy: 100, soakMs: 0 } }] })))
    log.push(host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), host.append('apply-failed', { release: 'r1', path: PATH, reason: 'unit failed' }))
    const cover = coverOf(log)
    assert.equal(standing(log, 'r1').state, 'halted')
    log.push(admin.append('release-control', { release: 'r1', action: 'resume', accept: [host.id] }))
    log.push(web2.append('apply-start', { release: 'r1', path: PATH, wave: 1 }), web2.append('apply-ok', { release: 'r1', path: PATH, healthyAt: T0 }))
    assert.equal(standing(log, 'r1').state, 'done')
    assert.ok(sameDecisions(log, cover, [admin.id, host.id, web2.id], ['r1']) > 0)
  })

  it('a failure followed by a hand retry still counts against the budget', async () => {
    const { admin, host, web2, log } = await webFleet()
    log.push(admin.append('release', release('r1', 1, { maxFailures: 1 })))
    log.push(host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), host.append('apply-failed', { release: 'r1', path: PATH, reason: 'unit failed' }))
    log.push(host.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), host.append('apply-ok', { release: 'r1', path: PATH, healthyAt: T0 }))
    log.push(web2.append('apply-start', { release: 'r1', path: PATH, wave: 0 }), web2.append('apply-failed', { release: 'r1', path: PATH, reason: 'unit failed' }))
    const cover = coverOf(log)
    // two failed hosts, a budget of one: halted, although the first one's newest outcome is an apply-ok
    assert.equal(standing(log, 'r1').state, 'halted')
    assert.ok(sameDecisions(log, cover, [admin.id, host.id, web2.id], ['r1']) > 0)
  })
})
