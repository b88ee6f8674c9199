// What the engine knows of boots: the kernel's boot id (a new one every boot), the running
// system, a monotonic clock that processes of one boot share, and whether a new generation
// changes what only a reboot brings up (kernel, initrd, systemd), as NixOS toplevels link them.
import { readFile, readlink, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import { NixosError } from './errors.js'

export const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id'

export interface BootInfo {
  /** the running boot's id */
  id: () => Promise<string>
  /** the store path of the running system; null when the host has none (not NixOS) */
  running: () => Promise<string | null>
}

export interface BootInfoOptions {
  /** default BOOT_ID_PATH */
  bootIdPath?: string
  /** the link to the activated system, e.g. /run/current-system */
  currentSystem: string
}

export function bootInfo (opts: BootInfoOptions): BootInfo {
  const path = opts.bootIdPath ?? BOOT_ID_PATH
  return {
    id: async () => {
      const id = (await readFile(path, 'utf8').catch((err: Error) => { throw new NixosError('INVALID_CONFIG', `cannot read the boot id at ${path}: ${err.message}`) })).trim()
      if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new NixosError('INVALID_CONFIG', `${path} holds no boot id`)
      return id
    },
    running: async () => await realpath(opts.currentSystem).catch(() => null)
  }
}

/**
 * CLOCK_MONOTONIC in ms: unlike performance.now() it does not restart with the process, so a
 * daemon restarted within one boot measures a window it opened before (never across boots).
 */
export function monotonicMs (): number {
  return Number(process.hrtime.bigint() / 1_000_000n)
}

/** The links of a system toplevel that only a reboot brings up. */
export const BOOT_LINKS = ['kernel', 'initrd', 'systemd'] as const

/** Which of BOOT_LINKS point elsewhere in `to` than in `from` (a link present in one only counts). */
export async function bootChanges (from: string, to: string): Promise<string[]> {
  const target = async (p: string, name: string): Promise<string | null> => await readlink(join(p, name)).catch(() => null)
  const changed: string[] = []
  for (const name of BOOT_LINKS) {
    if (await target(from, name) !== await target(to, name)) changed.push(name)
  }
  return changed
}
