// One daemon per data dir. The lock file holds the owner's pid; a lock left by a process
// that no longer exists (kill -9, power loss) is taken over instead of blocking forever.
import { promises as fs } from 'node:fs'
import { NodeError } from './errors.js'

export interface DataDirLock { release: () => Promise<void> }

export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The data dir holds the API token, the invite book and the log: other users may not even
 * list it. Checked by every daemon start, so a dir loosened after `init` is refused too.
 */
export async function assertPrivateDataDir (dataDir: string): Promise<void> {
  const mode = (await fs.stat(dataDir)).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new NodeError('DATA_DIR_INSECURE', `data dir ${dataDir} is accessible by other users (mode ${mode.toString(8)}); run "chmod 700 ${dataDir}"`)
  }
}

/**
 * Whether process `pid` was already running at `atMs`. A pid the kernel reused after its
 * owner died belongs to a process started later. Where /proc cannot tell, only liveness is known.
 */
export async function startedBy (pid: number, atMs: number): Promise<boolean> {
  if (!alive(pid)) return false
  let stat: string
  let boot: string
  try {
    [stat, boot] = await Promise.all([fs.readFile(`/proc/${pid}/stat`, 'utf8'), fs.readFile('/proc/stat', 'utf8')])
  } catch {
    return true
  }
  // Field 22 (after the parenthesised command, which may hold spaces) is the start time in
  // clock ticks since boot; /proc reports ticks at USER_HZ, 100 on Linux.
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  const btime = Number(/^btime (\d+)$/m.exec(boot)?.[1])
  if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return true
  // btime is whole seconds and the two clocks drift a little: two seconds of slack.
  return btime * 1000 + ticks * 10 <= atMs + 2000
}

export async function lockDataDir (path: string, dataDir: string): Promise<DataDirLock> {
  await assertPrivateDataDir(dataDir)
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
