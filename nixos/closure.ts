// Peer-fetch support without networking: a closure leaves one store as a
// `nix-store --export` stream and enters another through `importClosure`, which stages it in
// a throw-away store, checks every path against metadata the caller trusts (NAR hashes from
// a signed release or the sender, optionally Nix signatures by trusted keys) and only then
// copies it into the target store: a corrupted stream never registers anything there.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ed25519 } from '@noble/curves/ed25519.js'
import { ClosureError, NixCommandError, NixosError } from './errors.js'
import { assertStorePath, commandLine, runNix, spawnNix, storeArgs, waitNix, type NixOptions } from './nix.js'

/** One store path's metadata, as `nix path-info --json --sigs` reports it. */
export interface PathInfo {
  path: string
  /** SRI form, e.g. `sha256-…=`. */
  narHash: string
  narSize: number
  references: string[]
  signatures: string[]
}

export interface ImportOptions extends NixOptions {
  /** Metadata of every path the stream may carry; a path not listed is rejected. */
  expected: PathInfo[]
  /** When set, each imported path needs a valid signature (in `expected`) by one of these (`name:base64`). */
  trustedPublicKeys?: string[]
  /** Upper bound on the stream's size; default 16 GiB. */
  maxBytes?: number
  /** Where the staging store is created; default the OS temp dir. */
  tmpDir?: string
}

const DEFAULT_MAX_BYTES = 16 * 1024 ** 3
const SRI_SHA256_RE = /^sha256-[A-Za-z0-9+/]{43}=$/

/** The metadata of `path`'s closure, to send beside the export stream. */
export async function closureInfo (path: string, opts: NixOptions = {}): Promise<PathInfo[]> {
  assertStorePath(path)
  const { stdout } = await runNix('nix', ['path-info', ...storeArgs(opts), '--json', '--recursive', '--sigs', path], opts)
  return parsePathInfos(stdout)
}

/** The closure of `path` as a `nix-store --export` stream (what `nix-store --import` reads). */
export async function * exportClosure (path: string, opts: NixOptions = {}): AsyncGenerator<Uint8Array> {
  assertStorePath(path)
  const { stdout } = await runNix('nix-store', [...storeArgs(opts), '--query', '--requisites', path], opts)
  const paths = stdout.split('\n').filter(p => p !== '').map(assertStorePath)
  const args = [...storeArgs(opts), '--export', ...paths]
  const child = spawnNix('nix-store', args, opts, 'ignore')
  const done = waitNix(child, commandLine('nix-store', args))
  // If the consumer stops early, the export must not linger.
  done.catch(() => {})
  try {
    for await (const chunk of child.stdout) yield chunk as Uint8Array
    await done
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
}

/**
 * Imports an exported closure whose top path is `expectedPath` into the configured store.
 * Returns the verified metadata of the imported paths.
 */
export async function importClosure (source: AsyncIterable<Uint8Array>, expectedPath: string, opts: ImportOptions): Promise<PathInfo[]> {
  assertStorePath(expectedPath)
  const expected = new Map(opts.expected.map(i => [i.path, validateInfo(i)]))
  const keys = opts.trustedPublicKeys?.map(parsePublicKey)
  const staging = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'fleetmesh-import-'))
  const stagingOpts: NixOptions = { ...opts, store: staging }
  try {
    const imported = await importInto(source, stagingOpts, opts.maxBytes ?? DEFAULT_MAX_BYTES)
    if (!imported.includes(expectedPath)) throw new ClosureError('CLOSURE_MALFORMED', `stream does not contain ${expectedPath}`)
    const staged = await closureInfo(expectedPath, stagingOpts)
    if (staged.length !== imported.length) throw new ClosureError('CLOSURE_MALFORMED', `stream carries ${imported.length} paths, the closure of ${expectedPath} has ${staged.length}`)
    for (const got of staged) {
      const want = expected.get(got.path)
      if (want === undefined) throw new ClosureError('CLOSURE_HASH_MISMATCH', `${got.path} is not in the expected closure`)
      if (got.narHash !== want.narHash || got.narSize !== want.narSize || !sameSet(got.references, want.references)) {
        throw new ClosureError('CLOSURE_HASH_MISMATCH', `${got.path}: received NAR ${got.narHash} (${got.narSize} bytes), expected ${want.narHash} (${want.narSize} bytes)`)
      }
      if (keys !== undefined && !hasTrustedSignature(got, want.signatures, keys)) {
        throw new ClosureError('CLOSURE_SIGNATURE_INVALID', `${got.path} has no valid signature by a trusted key`)
      }
    }
    // Checked above against the caller's metadata, so Nix's own signature policy is not needed.
    await runNix('nix', ['copy', '--no-check-sigs', '--from', staging, ...(opts.store === undefined ? [] : ['--to', opts.store]), expectedPath], opts)
    await runNix('nix-store', [...storeArgs(opts), '--verify-path', expectedPath], opts)
    return staged.map(i => ({ ...i, signatures: expected.get(i.path)?.signatures ?? [] }))
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

export interface NixClosureStoreOptions {
  /** The store root, Nix config and timeouts of every command. */
  nix?: NixOptions
  /** When set, every imported path needs a Nix signature by one of these keys (`name:base64`). */
  trustedPublicKeys?: string[]
  /** Where imports are staged; default the OS temp dir. */
  tmpDir?: string
}

/** One Nix store as the mesh's closure transfer sees it: what it serves and what it takes in. */
export class NixClosureStore {
  private readonly nix: NixOptions

  constructor (private readonly opts: NixClosureStoreOptions = {}) {
    this.nix = opts.nix ?? {}
  }

  /** The closure's metadata when `path` is valid in this store, else null. */
  async info (path: string): Promise<PathInfo[] | null> {
    try {
      return await closureInfo(path, this.nix)
    } catch (err) {
      if (err instanceof NixCommandError && err.code === 'NIX_COMMAND_FAILED' && err.stderrTail.includes('is not valid')) return null
      throw err
    }
  }

  export (path: string): AsyncIterable<Uint8Array> {
    return exportClosure(path, this.nix)
  }

  async import (source: AsyncIterable<Uint8Array>, path: string, expected: PathInfo[], opts: { maxBytes?: number } = {}): Promise<PathInfo[]> {
    return await importClosure(source, path, { ...this.nix, expected, trustedPublicKeys: this.opts.trustedPublicKeys, tmpDir: this.opts.tmpDir, maxBytes: opts.maxBytes })
  }
}

async function importInto (source: AsyncIterable<Uint8Array>, opts: NixOptions, maxBytes: number): Promise<string[]> {
  const args = [...storeArgs(opts), '--import']
  const child = spawnNix('nix-store', args, opts, 'pipe')
  const stdin = child.stdin
  if (stdin === null) throw new NixosError('NIX_COMMAND_FAILED', 'nix-store --import has no stdin')
  const done = waitNix(child, commandLine('nix-store', args))
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d: string) => { out += d })
  stdin.on('error', () => {}) // a refused stream closes stdin early; `done` carries the reason
  let size = 0
  try {
    for await (const chunk of source) {
      size += chunk.byteLength
      if (size > maxBytes) throw new ClosureError('CLOSURE_TOO_LARGE', `closure stream exceeds ${maxBytes} bytes`)
      if (!stdin.write(chunk)) await new Promise<void>((resolve) => { stdin.once('drain', resolve); child.once('close', resolve) })
      if (child.exitCode !== null) break
    }
    stdin.end()
    await done
  } catch (err) {
    child.kill('SIGKILL')
    await done.catch(() => {})
    if (err instanceof ClosureError) throw err
    throw new ClosureError('CLOSURE_MALFORMED', `closure stream rejected: ${(err as Error).message}`, { cause: err })
  }
  return out.split('\n').filter(p => p !== '').map(assertStorePath)
}

export function parsePathInfos (json: string): PathInfo[] {
  let v: unknown
  try {
    v = JSON.parse(json)
  } catch (err) {
    throw new ClosureError('CLOSURE_MALFORMED', 'path-info is not valid JSON', { cause: err })
  }
  if (!Array.isArray(v)) throw new ClosureError('CLOSURE_MALFORMED', 'path-info is not a list')
  return v.map(i => validateInfo({ signatures: [], ...(i as object) } as unknown as PathInfo))
}

function validateInfo (i: PathInfo): PathInfo {
  const bad = (why: string): never => { throw new ClosureError('CLOSURE_MALFORMED', `path info: ${why}`) }
  if (typeof i !== 'object' || i === null) bad('not an object')
  try {
    assertStorePath(i.path)
    for (const r of i.references) assertStorePath(r)
  } catch {
    bad('bad store path')
  }
  if (typeof i.narHash !== 'string' || !SRI_SHA256_RE.test(i.narHash)) bad(`bad narHash for ${i.path}`)
  if (!Number.isSafeInteger(i.narSize) || i.narSize <= 0) bad(`bad narSize for ${i.path}`)
  if (!Array.isArray(i.signatures) || i.signatures.some(s => typeof s !== 'string' || s.length > 256)) bad(`bad signatures for ${i.path}`)
  return { path: i.path, narHash: i.narHash, narSize: i.narSize, references: [...i.references], signatures: [...i.signatures] }
}

function sameSet (a: string[], b: string[]): boolean {
  const sa = new Set(a)
  return sa.size === new Set(b).size && b.every(x => sa.has(x))
}

interface PublicKey { name: string, key: Uint8Array }

function parsePublicKey (s: string): PublicKey {
  const i = s.indexOf(':')
  const key = i > 0 ? Buffer.from(s.slice(i + 1), 'base64') : Buffer.alloc(0)
  if (key.length !== 32) throw new NixosError('INVALID_CONFIG', `trusted public key must be name:base64(32 bytes), got ${JSON.stringify(s.slice(0, 80))}`)
  return { name: s.slice(0, i), key }
}

/** Nix's signed fingerprint of a path: `1;PATH;sha256:NIXBASE32;NARSIZE;REF,REF`. */
export function fingerprint (info: Pick<PathInfo, 'path' | 'narHash' | 'narSize' | 'references'>): string {
  const digest = Buffer.from(info.narHash.slice('sha256-'.length), 'base64')
  return `1;${info.path};sha256:${nixBase32(digest)};${info.narSize};${[...info.references].sort().join(',')}`
}

function hasTrustedSignature (info: PathInfo, signatures: string[], keys: PublicKey[]): boolean {
  const msg = new TextEncoder().encode(fingerprint(info))
  return signatures.some((sig) => {
    const i = sig.indexOf(':')
    const key = keys.find(k => k.name === sig.slice(0, i))
    if (i <= 0 || key === undefined) return false
    const raw = Buffer.from(sig.slice(i + 1), 'base64')
    try {
      return raw.length === 64 && ed25519.verify(raw, msg, key.key)
    } catch {
      return false
    }
  })
}

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz'

/** Nix's base-32 (its own alphabet, least significant bits first). */
export function nixBase32 (bytes: Uint8Array): string {
  const len = Math.ceil(bytes.length * 8 / 5)
  let out = ''
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5
    const i = b >> 3
    const j = b & 7
    const c = ((bytes[i] ?? 0) >> j) | ((bytes[i + 1] ?? 0) << (8 - j))
    out += NIX32[c & 0x1f]
  }
  return out
}
