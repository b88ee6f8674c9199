// Small files the node rewrites (config, API endpoint) are replaced atomically: write a
// temp file, fsync it, rename over the target, fsync the directory. A crash leaves either
// the old or the new file, never a torn one.
import { promises as fs } from 'node:fs'
import { dirname } from 'node:path'
import { randomBytes } from 'node:crypto'

export async function writeFileAtomic (path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await fs.open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await fs.rm(tmp, { force: true })
    throw err
  }
  await fh.close()
  await fs.rename(tmp, path)
  const dir = await fs.open(dirname(path), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
