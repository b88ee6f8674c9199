// The operator's commands against a real daemon: generations, local apply and rollback on real
// Nix, and the audit trail's verify/export, including a value edited inside the LevelDB files.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { Fleet } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'

interface Gen { number: number, path: string, current: boolean }

test('generations, apply and rollback on one host, through the daemon and real Nix', { timeout: 300_000 }, async () => {
  const fleet = await Fleet.create({ hosts: [{ name: 'solo', role: 'admin' }], soakMs: 200 })
  const h = fleet.founder
  const stamp = Date.now()
  try {
    await fleet.start('solo')
    const [good, good2, bad] = await Promise.all([
      buildGeneration(`cli-good-${stamp}`, 'good'),
      buildGeneration(`cli-good2-${stamp}`, 'good'),
      buildGeneration(`cli-bad-${stamp}`, 'status500')
    ])
    assert.deepEqual(await h.json<Gen[]>(['generations']), [])

    const dry = await h.cli(['apply', good, '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /new system/)
    assert.deepEqual(await h.json<Gen[]>(['generations']), [], 'a dry run changes nothing')

    const first = await h.json<{ outcome: { status: string } }>(['apply', good])
    assert.equal(first.outcome.status, 'ok')
    assert.equal(await h.activeVersion(), `cli-good-${stamp}`)
    const second = await h.json<{ outcome: { status: string } }>(['apply', good2])
    assert.equal(second.outcome.status, 'ok')

    const refused = await h.cli(['apply', bad])
    assert.equal(refused.code, 5, 'an apply that rolled back is a refusal for scripts')
    assert.match(refused.stdout, /rolled-back/)
    assert.equal(await h.activeVersion(), `cli-good2-${stamp}`, 'back on the exact previous generation')

    const gens = await h.json<Gen[]>(['generations'])
    assert.equal(gens.find((g) => g.current)?.path, good2)
    const human = await h.cli(['generations'])
    assert.match(human.stdout, new RegExp(`\\* +\\d+ +${good2.replaceAll('.', '\\.')}`))

    const diff = await h.cli(['generations', 'diff', String(gens[0].number), String(gens[1].number)])
    assert.equal(diff.code, 0, diff.stderr)

    const back = await h.json<{ generation: { number: number, path: string }, healthy: boolean }>(['rollback', '--to', String(gens[0].number)])
    assert.deepEqual(back.generation, { number: gens[0].number, path: good })
    assert.equal(back.healthy, true)
    assert.equal(await h.activeVersion(), `cli-good-${stamp}`)
    assert.equal((await h.json<Gen[]>(['generations'])).find((g) => g.current)?.number, gens[0].number)

    const kinds = (await h.cli(['audit', 'log', '--json'])).stdout.trim().split('\n').map((l) => (JSON.parse(l) as { kind: string }).kind)
    assert.ok(kinds.includes('local-apply') && kinds.includes('local-rollback'), 'every step is in the audit trail')
  } finally {
    await fleet.close()
  }
})

test('audit verify names an entry edited inside LevelDB; an export verifies alone and a tampered one does not', { timeout: 300_000 }, async () => {
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b' }] })
  try {
    await fleet.pairAll()
    for (let i = 0; i < 3; i++) await fleet.founder.json(['invite', '--tag', `t${i}`])
    const b = fleet.host('b')
    const invitesOn = async (host: typeof b): Promise<number> => (await host.cli(['audit', 'log', '--kind', 'invite', '--json'])).stdout.trim().split('\n').filter(Boolean).length
    await fleet.waitFor('b to hold a\'s invites', async () => await invitesOn(b) === 4)

    const ok = await b.json<{ ok: boolean, entries: number }>(['audit', 'verify'])
    assert.equal(ok.ok, true)
    const exported = await b.cli(['audit', 'export'])
    assert.equal(exported.code, 0, exported.stderr)
    const file = join(fleet.dir, 'trail.jsonl')
    await writeFile(file, exported.stdout)
    assert.equal((await b.json<{ ok: boolean, entries: number }>(['audit', 'verify', '--file', file])).entries, ok.entries)

    // A checkpoint on demand: only an admin signs one; the trail verifies across it, live and exported.
    const notAdmin = await b.cli(['audit', 'checkpoint'])
    assert.notEqual(notAdmin.code, 0)
    assert.match(notAdmin.stderr, /only admins may write checkpoints/)
    const cp = await fleet.founder.json<{ number: number, covered: number, retained: number }>(['audit', 'checkpoint'])
    assert.equal(cp.number, 1)
    assert.ok(cp.covered >= 1 && cp.retained >= 2, JSON.stringify(cp))
    await fleet.waitFor('b to hold the checkpoint', async () => (await b.cli(['audit', 'log', '--kind', 'checkpoint', '--json'])).stdout.trim() !== '')
    assert.equal((await fleet.founder.json<{ ok: boolean }>(['audit', 'verify'])).ok, true)
    const across = join(fleet.dir, 'across.jsonl')
    await writeFile(across, (await fleet.founder.cli(['audit', 'export'])).stdout)
    assert.equal((await fleet.founder.json<{ ok: boolean }>(['audit', 'verify', '--file', across])).ok, true)
    assert.equal((await fleet.founder.json<{ number: number }>(['audit', 'checkpoint'])).number, 2, 'numbered above the last one')

    // Change one byte of one entry's body inside the export: the third party's check fails there.
    const lines = (await readFile(file, 'utf8')).trim().split('\n')
    const i = lines.findIndex((l) => (JSON.parse(l) as { kind: string }).kind === 'invite')
    const line = JSON.parse(lines[i]) as { feed: string, seq: number, cbor: string }
    const bytes = Buffer.from(line.cbor, 'base64')
    const at = bytes.indexOf(Buffer.from('t1'))
    if (at >= 0) bytes[at + 1] = '9'.charCodeAt(0)
    else bytes[bytes.length - 70] ^= 1
    lines[i] = JSON.stringify({ ...line, cbor: bytes.toString('base64') })
    await writeFile(file, lines.join('\n') + '\n')
    const bad = await b.cli(['audit', 'verify', '--file', file, '--json'])
    assert.equal(bad.code, 5)
    assert.equal((JSON.parse(bad.stdout) as { seq: number }).seq, line.seq)

    // Now edit the stored value itself, with b's daemon stopped, through LevelDB.
    await fleet.stop('b')
    const db = new Level<string, Uint8Array>(join(b.dataDir, 'db'), { valueEncoding: 'view' })
    const audit = db.sublevel<string, Uint8Array>('audit', { keyEncoding: 'utf8', valueEncoding: 'view' })
    let edited: string | undefined
    for await (const [key, value] of audit.iterator({ gt: `e!${line.feed}!`, lt: `e!${line.feed}!\xff` })) {
      if (!key.endsWith(String(line.seq).padStart(16, '0'))) continue
      const copy = new Uint8Array(value)
      copy[copy.length - 80] ^= 0x01
      await audit.put(key, copy)
      edited = key
    }
    await db.close()
    assert.ok(edited !== undefined, 'found the stored entry')
    const offline = await b.cli(['audit', 'verify', '--json'])
    assert.equal(offline.code, 5, offline.stdout + offline.stderr)
    const named = JSON.parse(offline.stdout) as { ok: boolean, feed: string, seq: number }
    assert.equal(named.ok, false)
    assert.equal(named.feed, line.feed)
    assert.equal(named.seq, line.seq)
    const human = await b.cli(['audit', 'verify'])
    assert.match(human.stdout, new RegExp(`FAILED at feed ${line.feed} seq ${line.seq}`))
  } finally {
    await fleet.close()
  }
})
