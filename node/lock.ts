// One daemon per data dir. The lock file holds the owner's pid; a lock left by a process
// that no longer exists (kill -9, power loss) is taken over instead of blocking forever.
import { promises as fs } from 'node:fs'
import { NodeError } from './errors.js'

export interface DataDirLock { release: () => Promise<void> }

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function lockDataDir (path: string, dataDir: string): Promise<DataDirLock> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(path, 'wx', 0o600)
      await fh.writeFile(`${process.pid}\n`)
      await fh.sync()
      await fh.close()
      return {
        release: async () => { await fs.rm(path, { force: true }) }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number.parseInt(await fs.readFile(path, 'utf8').catch(() => ''), 10)
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new NodeError('DATA_DIR_LOCKED', `another fleetmesh daemon (pid ${pid}) is already running on ${dataDir}`)
    }
    // Stale: its owner is gone. Removing and retrying with O_EXCL keeps two racing starters
    // from both believing they won.
    await fs.rm(path, { force: true })
  }
  throw new NodeError('DATA_DIR_LOCKED', `could not take the lock ${path}`)
}
