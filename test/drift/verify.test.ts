// Nix's own verification of a closure and the system link, against the real store: a path this
// test built is altered on disk and found, then put back and found clean.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NixosError, readSystemLink, verifyClosure } from '../../nixos/index.js'
import { buildUnique, tamper } from './helpers.js'

test('verifyClosure finds a store path whose content was altered, and nothing once it is restored', { timeout: 120_000 }, async () => {
  const path = await buildUnique('verify')
  const clean = await verifyClosure(path)
  assert.deepEqual({ paths: clean.paths, modified: clean.modified, modifiedCount: clean.modifiedCount }, { paths: 1, modified: [], modifiedCount: 0 })
  const restore = await tamper(join(path, 'etc', 'release'), 'tampered\n')
  try {
    const found = await verifyClosure(path)
    assert.equal(found.modifiedCount, 1)
    assert.equal(found.modified[0].path, path)
    assert.notEqual(found.modified[0].expected, found.modified[0].got)
  } finally {
    await restore()
  }
  assert.equal((await verifyClosure(path)).modifiedCount, 0, 'restored byte for byte, the path verifies again')
})

test('verifyClosure refuses a path the store does not hold with a typed error', { timeout: 60_000 }, async () => {
  const missing = '/nix/store/00000000000000000000000000000000-fleetmesh-drift-absent'
  await assert.rejects(verifyClosure(missing), (err: NixosError) => err.code === 'STORE_VERIFY_FAILED')
  await assert.rejects(verifyClosure('/etc/passwd'), (err: NixosError) => err.code === 'INVALID_STORE_PATH')
})

test('readSystemLink: the link\'s absolute target, null without a link, the path itself when it is no link', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-drift-link-'))
  try {
    const link = join(dir, 'current-system')
    assert.equal(await readSystemLink(link), null)
    await symlink('/nix/store/00000000000000000000000000000000-system', link)
    assert.equal(await readSystemLink(link), '/nix/store/00000000000000000000000000000000-system')
    const relative = join(dir, 'relative')
    await symlink('elsewhere/system', relative)
    assert.equal(await readSystemLink(relative), join(dir, 'elsewhere', 'system'))
    assert.equal(await readSystemLink(dir), dir, 'a directory put where the link was is reported, not followed')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
