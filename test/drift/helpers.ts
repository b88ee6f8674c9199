// Real drift for tests: store paths only this test built, altered and put back byte for byte.
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { runNix } from '../../nixos/nix.js'
import { ensureNix } from '../fixtures/nix/fixtures.js'

/** A tiny derivation no other test builds (the nonce is in its name and content): a closure of one path. */
export async function buildUnique (name: string): Promise<string> {
  await ensureNix()
  const nonce = `${name}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`
  const expr = `derivation { name = "fleetmesh-drift-${name}"; system = builtins.currentSystem; builder = "/bin/sh"; nonce = "${nonce}"; args = [ "-c" "/bin/mkdir -p $out/etc && echo $nonce > $out/etc/release" ]; }`
  const { stdout } = await runNix('nix-build', ['-E', expr, '--no-out-link'])
  return stdout.trim()
}

/**
 * Rewrites `file` inside a store path this test built, the way an attacker with root would, and
 * returns what puts it back. The file is replaced by a new inode (written beside it, renamed
 * over it), so a hard link the store may share with another path is never written through.
 */
export async function tamper (file: string, append: string): Promise<() => Promise<void>> {
  const dir = dirname(file)
  const original = await readFile(file)
  const fileMode = (await stat(file)).mode & 0o7777
  const dirMode = (await stat(dir)).mode & 0o7777
  const replace = async (bytes: Uint8Array): Promise<void> => {
    await chmod(dir, dirMode | 0o200)
    try {
      const tmp = join(dir, `.drift-test-${process.pid}`)
      await writeFile(tmp, bytes, { mode: fileMode | 0o200 })
      await chmod(tmp, fileMode)
      await rename(tmp, file)
    } finally {
      await chmod(dir, dirMode)
    }
  }
  await replace(Buffer.concat([original, Buffer.from(append)]))
  return async () => { await replace(original) }
}
