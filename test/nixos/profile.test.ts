// The Nix profile backend on real Nix: generations, exact rollback, retention, previews,
// and fetching from a file:// binary cache into a separate store root.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { NixProfileBackend } from '../../nixos/index.js'
import { runNix } from '../../nixos/nix.js'
import { buildGeneration, ensureNix } from '../fixtures/nix/fixtures.js'

describe('NixProfileBackend', () => {
  let dir: string
  const paths: string[] = []
  before(async () => {
    await ensureNix()
    dir = await mkdtemp(join(tmpdir(), 'fleetmesh-profile-'))
    for (const v of ['p1', 'p2', 'p3', 'p4']) paths.push(await buildGeneration(v, 'good'))
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })
  const at = (i: number): string => paths[i] as string

  it('records generations and rolls back to an exact one', async () => {
    const b = new NixProfileBackend({ profile: join(dir, 'exact', 'system') })
    assert.equal(await b.current(), null)
    assert.deepEqual(await b.list(), [])
    for (const p of paths.slice(0, 3)) await b.switch(p)
    assert.deepEqual(await b.current(), { number: 3, path: at(2) })
    assert.deepEqual((await b.list()).map(g => g.number), [1, 2, 3])
    assert.deepEqual(await b.rollback({ number: 1, path: at(0) }), { number: 1, path: at(0) })
    assert.deepEqual(await b.current(), { number: 1, path: at(0) })
    await assert.rejects(b.rollback({ number: 2, path: at(0) }), { code: 'GENERATION_NOT_FOUND' })
    await assert.rejects(b.rollback({ number: 9, path: at(0) }), { code: 'GENERATION_NOT_FOUND' })
    await assert.rejects(b.switch('/etc/passwd'), { code: 'INVALID_STORE_PATH' })
  })

  it('keeps the last N generations, never the current one', async () => {
    const b = new NixProfileBackend({ profile: join(dir, 'keep', 'system') })
    for (const p of [...paths, ...paths]) await b.switch(p)
    assert.equal((await b.list()).length, 8)
    assert.deepEqual(await b.gc(3), [1, 2, 3, 4, 5])
    assert.deepEqual((await b.list()).map(g => g.number), [6, 7, 8])
    await b.rollback({ number: 6, path: at(1) })
    await b.switch(at(0))
    assert.deepEqual((await b.list()).map(g => g.number), [6, 7, 8, 9])
    assert.deepEqual(await b.gc(1), [6, 7, 8])
    await assert.rejects(b.gc(0), { code: 'INVALID_CONFIG' })
  })

  it('previews the closure difference', async () => {
    const b = new NixProfileBackend({ profile: join(dir, 'preview', 'system') })
    assert.match(await b.preview(at(0)), /new system/)
    await b.switch(at(0))
    const diff = await b.preview(at(1))
    assert.match(diff, /fleetmesh-fixture-system-p1/)
    assert.match(diff, /fleetmesh-fixture-system-p2/)
  })

  it('fetches from a file:// binary cache into a separate store root', async () => {
    const cache = `file://${join(dir, 'cache')}`
    await runNix('nix', ['copy', '--to', cache, at(3)])
    const store = join(dir, 'store')
    const b = new NixProfileBackend({ profile: join(dir, 'fetch', 'system'), store })
    await b.fetch(at(3), [`file://${join(dir, 'empty-cache')}`, cache])
    await runNix('nix-store', ['--store', store, '--check-validity', at(3)])
    // Gone from this store, then fetched back.
    await runNix('nix-store', ['--store', store, '--delete', at(3)])
    await assert.rejects(runNix('nix-store', ['--store', store, '--check-validity', at(3)]), { code: 'NIX_COMMAND_FAILED' })
    await b.fetch(at(3), [cache])
    await runNix('nix-store', ['--store', store, '--check-validity', at(3)])

    const other = new NixProfileBackend({ store: join(dir, 'store2') })
    await assert.rejects(other.fetch(at(3), [`file://${join(dir, 'empty-cache')}`]), { code: 'PATH_NOT_FETCHED' })
    await assert.rejects(other.fetch(at(3), []), { code: 'PATH_NOT_FETCHED' })
    // With a trusted key configured, the unsigned cache is refused by Nix itself.
    const signedOnly = new NixProfileBackend({ store: join(dir, 'store3'), trustedPublicKeys: ['fleet-1:OhT34anJ2RxofWyVF0oavk4lT/KdNd3ynkxaz8DsuoA='] })
    await assert.rejects(signedOnly.fetch(at(3), [cache]), { code: 'PATH_NOT_FETCHED', message: /lacks a valid signature/ })
  })
})
