import { test } from 'node:test'
import assert from 'node:assert/strict'
import { stat, writeFile, chmod, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createIdentity, loadIdentity } from '../../crypto/identity.js'
import { IdentityError } from '../../crypto/errors.js'
import { tempDir } from '../../simulations/harness/processes.js'

async function rejectsWith (p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof IdentityError && err.code === code)
}

test('an identity is written 0600 and loads back to the same keys', async () => {
  const path = join(await tempDir(), 'id', 'identity.json')
  const made = await createIdentity(path)
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  const loaded = await loadIdentity(path)
  assert.equal(loaded.peerId.toString(), made.peerId.toString())
  assert.deepEqual(loaded.xwingPublicKey, made.xwingPublicKey)
  assert.equal(loaded.xwingPublicKey.length, 1216)
})

test('an existing identity is never replaced', async () => {
  const path = join(await tempDir(), 'identity.json')
  await createIdentity(path)
  const before = await readFile(path, 'utf8')
  await rejectsWith(createIdentity(path), 'IDENTITY_EXISTS')
  assert.equal(await readFile(path, 'utf8'), before)
})

test('missing, insecure, corrupt and oversize identity files are refused with their codes', async () => {
  const dir = await tempDir()
  const path = join(dir, 'identity.json')
  await rejectsWith(loadIdentity(path), 'IDENTITY_MISSING')
  await createIdentity(path)
  await chmod(path, 0o640)
  await rejectsWith(loadIdentity(path), 'IDENTITY_INSECURE_MODE')
  const cases = ['not json', '{"v":2,"ed25519":"","xwing":""}', '{"v":1,"ed25519":"AAAA","xwing":"AAAA"}', 'x'.repeat(5000), 'null']
  for (const text of cases) {
    await writeFile(path, text)
    await chmod(path, 0o600)
    await rejectsWith(loadIdentity(path), 'IDENTITY_CORRUPT')
  }
})
