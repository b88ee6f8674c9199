// The journal's side of deferred activation: a staged apply keeps the boot its reboot was asked
// for in (`rebootIn`), which a decoder takes only on a reboot hold; and a staged apply that a
// revert unstages ends in the same atomic batch as the revert's outcome (Journal.write of two).
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Level } from 'level'
import { Journal, NixosError, decodeRecord, encodeRecord, type ApplyRecord } from '../../nixos/index.js'

const target = '/nix/store/a8spvqsbbpp7h2mgrfa2cf2dqh1gvyp0-x'
const staged: ApplyRecord = {
  v: 2, id: 'staged-1', target, phase: 'staged', previous: { number: 1, path: target }, switched: { number: 2, path: target },
  startedAt: 1000, updatedAt: 1000, reason: null, tag: 't', outcome: null, reported: false,
  hold: { kind: 'reboot', bootId: 'boot-1', windowMs: 0, sinceMs: 0, rebootIn: 'boot-1' }
}

describe('Journal: reboot requests and unstaging', () => {
  let dir: string
  let db: Level<string, string>
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetmesh-journal-reboot-'))
    db = new Level<string, string>(join(dir, 'db'))
  })
  after(async () => { await db.close(); await rm(dir, { recursive: true, force: true }) })

  it('keeps the boot a reboot was asked for in, on a reboot hold only', () => {
    assert.deepEqual(decodeRecord(encodeRecord(staged)), staged)
    const raw = JSON.parse(encodeRecord(staged)) as Record<string, unknown>
    for (const rebootIn of ['', 7, 'x'.repeat(65)]) {
      assert.throws(() => decodeRecord(JSON.stringify({ ...raw, hold: { ...(raw.hold as object), rebootIn } })), (e: unknown) => e instanceof NixosError && e.code === 'JOURNAL_CORRUPT')
    }
    const ok = { ...raw, phase: 'ok', outcome: { status: 'ok', id: 'staged-1', generation: { number: 2, path: target } }, hold: { kind: 'confirm', bootId: 'boot-1', windowMs: 5, sinceMs: 1, rebootIn: 'boot-1' } }
    assert.throws(() => decodeRecord(JSON.stringify(ok)), (e: unknown) => e instanceof NixosError && e.code === 'JOURNAL_CORRUPT', 'a confirm window is asked no reboot')
  })

  it('ends a staged apply and starts nothing else: two records in one batch', async () => {
    const j = new Journal(db.sublevel('deploy'))
    await j.write(staged)
    assert.equal((await j.active())?.id, 'staged-1')
    const reason = 'reverted before the reboot'
    const ended: ApplyRecord = { ...staged, hold: null, phase: 'failed', reason, outcome: { status: 'failed', id: 'staged-1', code: 'APPLY_SUPERSEDED', reason, transient: true }, reported: true }
    const revert: ApplyRecord = { ...staged, id: 'revert-1', phase: 'ok', hold: null, switched: null, outcome: { status: 'ok', id: 'revert-1', generation: { number: 1, path: target } }, tag: 'r', reported: false }
    await j.write(ended, revert)
    assert.equal(await j.active(), null)
    assert.deepEqual((await j.unreported()).map((r) => r.id), ['revert-1'])
    assert.deepEqual((await j.get('staged-1'))?.outcome, ended.outcome)
  })
})
