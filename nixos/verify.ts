// What a host actually runs, as Nix sees it: the activated system link (/run/current-system on
// NixOS) and whether the store paths of a closure still hold what the Nix database recorded
// for them (`nix store verify`: each path's NAR hash recomputed from disk).
import { readlink } from 'node:fs/promises'
import { resolve, dirname } from 'node:path'
import { NixosError } from './errors.js'
import { assertStorePath, commandLine, runNix, spawnNix, storeArgs, tail, type NixOptions } from './nix.js'

/** Modified paths kept by name; the rest are only counted, so a rotting disk cannot grow the report. */
export const MAX_MODIFIED_LISTED = 64
/** Longest link target reported: a link is the attacker's to write. */
const MAX_LINK_CHARS = 1024

export interface ModifiedPath { path: string, expected: string, got: string }

export interface StoreVerification {
  /** the closure's top path */
  root: string
  /** paths in the closure, all checked */
  paths: number
  /** paths whose content no longer matches their recorded hash, at most MAX_MODIFIED_LISTED */
  modified: ModifiedPath[]
  modifiedCount: number
}

/**
 * Where the system link points (one level: NixOS points it straight at the system's store path),
 * absolute; null when there is no link. A target that is no store path is returned as it is:
 * that is drift to report, not an error.
 */
export async function readSystemLink (link: string): Promise<string | null> {
  let target: string
  try {
    target = await readlink(link)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return null
    if (code === 'EINVAL') return link.slice(0, MAX_LINK_CHARS)
    throw new NixosError('STORE_VERIFY_FAILED', `cannot read the system link ${link}: ${(err as Error).message}`, { cause: err })
  }
  return resolve(dirname(link), target).slice(0, MAX_LINK_CHARS)
}

const MODIFIED_RE = /^path '(\/nix\/store\/[^']+)' was modified! expected hash '([^']+)', got '([^']+)'$/

/**
 * Recomputes the hash of every path in `root`'s closure from disk and compares it with the Nix
 * database (`nix store verify --no-trust --recursive`: content only; signatures are the fetch's
 * business). Resolves with the modified paths; rejects with STORE_VERIFY_FAILED when Nix could
 * not verify (root not valid, I/O error).
 */
export async function verifyClosure (root: string, opts: NixOptions = {}): Promise<StoreVerification> {
  assertStorePath(root)
  const paths = await closureSize(root, opts)
  const args = ['store', 'verify', ...storeArgs(opts), '--no-trust', '--recursive', root]
  const child = spawnNix('nix', args, opts, 'ignore')
  const modified: ModifiedPath[] = []
  let modifiedCount = 0
  let others = ''
  let partial = ''
  const onLine = (line: string): void => {
    const m = MODIFIED_RE.exec(line)
    if (m === null) { if (line !== '') others = tail(`${others}\n${line}`); return }
    modifiedCount++
    if (modified.length < MAX_MODIFIED_LISTED) modified.push({ path: m[1], expected: m[2], got: m[3] })
  }
  child.stdout.resume()
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => {
    const lines = (partial + d).split('\n')
    partial = (lines.pop() ?? '').slice(-4096)
    for (const l of lines) onLine(l)
  })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => { reject(new NixosError('STORE_VERIFY_FAILED', `${commandLine('nix', args)}: ${err.message}`, { cause: err })) })
    child.once('close', (c) => { onLine(partial); resolve(c) })
  })
  // Exit status: 1 corrupted (the lines above say which), 4 not verifiable, 2 untrusted (off).
  if (code !== 0 && (code === null || (code & 4) !== 0 || modifiedCount === 0)) {
    throw new NixosError('STORE_VERIFY_FAILED', `${commandLine('nix', args)} failed (exit ${code ?? 'signal'}): ${others.trim()}`)
  }
  return { root, paths, modified, modifiedCount }
}

/** Also proves `root` is a valid path: a system whose path the store forgot cannot be verified. */
async function closureSize (root: string, opts: NixOptions): Promise<number> {
  try {
    const { stdout } = await runNix('nix-store', [...storeArgs(opts), '--query', '--requisites', root], opts)
    return stdout.split('\n').filter((p) => p !== '').length
  } catch (err) {
    throw new NixosError('STORE_VERIFY_FAILED', `cannot list the closure of ${root}: ${(err as Error).message}`, { cause: err })
  }
}
