// The apply journal: atomic record + active pointer, and a decoder that refuses bad records.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Level } from 'level'
import { Journal, decodeRecord, encodeRecord, newApplyId, type ApplyRecord } from '../../nixos/index.js'

const rec = (over: Partial<ApplyRecord> = {}): ApplyRecord => ({
  v: 2, id: newApplyId(1000), target: '/nix/store/a8spvqsbbpp7h2mgrfa2cf2dqh1gvyp0-x', phase: 'started',
  previous: null, switched: null, startedAt: 1000, updatedAt: 1000, reason: null, tag: null, outcome: null, reported: true, ...over
})

describe('Journal', () => {
  let dir: string
  let db: Level<string, string>
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetmesh-journal-'))
    db = new Level<string, string>(join(dir, 'db'))
  })
  after(async () => { await db.close(); await rm(dir, { recursive: true, force: true }) })

  it('tracks the one unfinished apply and its phase, newest first in history', async () => {
    const j = new Journal(db.sublevel('deploy'))
    assert.equal(await j.active(), null)
    const a = rec({ id: newApplyId(1) })
    await j.write(a)
    assert.deepEqual(await j.active(), a)
    const switched = { ...a, phase: 'switched' as const, previous: { number: 1, path: a.target }, switched: { number: 2, path: a.target } }
    await j.write(switched)
    assert.deepEqual(await j.active(), switched)
    await j.write({ ...switched, phase: 'rolled-back' })
    assert.equal(await j.active(), null)
    const b = rec({ id: newApplyId(2), phase: 'ok', previous: null })
    await j.write(b)
    assert.deepEqual((await j.history()).map(r => r.id), [b.id, a.id])
  })

  it('keeps a tagged apply unreported, with its outcome, until it is reported', async () => {
    const j = new Journal(db.sublevel('tagged'))
    const a = rec({ id: 'attempt-1', tag: '{"release":"r"}', reported: false })
    await j.write(a)
    assert.deepEqual((await j.unreported()).map(r => r.id), ['attempt-1'])
    const outcome = { status: 'failed' as const, id: 'attempt-1', code: 'PATH_NOT_FETCHED' as const, reason: 'no source', transient: true }
    await j.write({ ...a, phase: 'failed', reason: 'no source', outcome })
    assert.equal(await j.active(), null)
    const [kept] = await j.unreported()
    assert.deepEqual(kept?.outcome, outcome)
    const b = rec({ id: 'attempt-0', startedAt: 5000, tag: 'x', reported: false, phase: 'ok', switched: { number: 1, path: a.target }, outcome: { status: 'ok', id: 'attempt-0', generation: { number: 1, path: a.target } } })
    await j.write(b)
    assert.deepEqual((await j.unreported()).map(r => r.id), ['attempt-1', 'attempt-0'], 'oldest first (by start)')
    await j.write({ ...(kept as ApplyRecord), reported: true })
    assert.deepEqual((await j.unreported()).map(r => r.id), ['attempt-0'])
  })

  it('refuses a corrupt active pointer', async () => {
    const sub = db.sublevel('broken')
    await sub.put('active', 'no such id')
    await assert.rejects(new Journal(sub).active(), { code: 'JOURNAL_CORRUPT' })
    await sub.put('active', 'missing-id')
    await assert.rejects(new Journal(sub).active(), { code: 'JOURNAL_CORRUPT' })
  })

  it('decodes only well-formed records', () => {
    const r = rec()
    const good = encodeRecord(r)
    assert.deepEqual(decodeRecord(good), r)
    const revert = rec({ restores: { number: 1, path: r.target } })
    assert.deepEqual(decodeRecord(encodeRecord(revert)), revert)
    const cases: string[] = [
      good.slice(0, -5), // truncated
      'x'.repeat(70 * 1024), // oversize
      '[]',
      JSON.stringify({ ...r, v: 3 }),
      JSON.stringify({ ...r, tag: undefined, outcome: undefined, reported: undefined }), // version 2 has every field
      JSON.stringify({ ...r, phase: 'half-done' }),
      JSON.stringify({ ...r, previous: { number: 0, path: '/nix/store/x' } }),
      JSON.stringify({ ...r, previous: undefined }),
      JSON.stringify({ ...r, extra: true }),
      JSON.stringify({ ...r, id: 'bad id!' }),
      JSON.stringify({ ...r, startedAt: 'yesterday' }),
      JSON.stringify({ ...r, phase: 'failed', reported: false }), // a terminal phase without its outcome
      JSON.stringify({ ...r, phase: 'ok', outcome: { status: 'ok', id: 'another', generation: { number: 1, path: r.target } } }),
      JSON.stringify({ ...r, phase: 'failed', outcome: { status: 'failed', id: r.id, code: 'X', reason: 'r', extra: 1 } }),
      JSON.stringify({ ...r, outcome: { status: 'ok', id: r.id, generation: { number: 1, path: r.target } } }), // an outcome before the end
      JSON.stringify({ ...r, tag: 'x'.repeat(5000) }),
      JSON.stringify({ ...r, reported: 'yes' }),
      JSON.stringify({ ...r, restores: { number: 1 } })
    ]
    for (const c of cases) assert.throws(() => decodeRecord(c), { code: 'JOURNAL_CORRUPT' }, c.slice(0, 80))
    // A version-1 record, written before tags and outcomes existed, was reported when it ended.
    const { tag, outcome, reported, ...legacy } = rec({ v: 1, phase: 'ok' })
    assert.deepEqual(decodeRecord(JSON.stringify(legacy)), { ...legacy, tag: null, outcome: null, reported: true })
  })
})
