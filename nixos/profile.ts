// The Nix profile backend: generations are the profile's `NAME-N-link` symlinks, as
// nix-env lays them out; every change goes through nix-env so Nix's own locking and
// GC roots stay authoritative.
import { mkdir, readdir, readlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { activateDetached } from './activation.js'
import { NixosError } from './errors.js'
import { assertStorePath, runNix, storeArgs, tail, type NixOptions } from './nix.js'
import type { Backend, Generation } from './types.js'

export const DEFAULT_PROFILE = '/nix/var/nix/profiles/system'
export const DEFAULT_KEEP = 20

export interface ActivationOptions {
  /** argv to activate a generation; default `PATH/bin/switch-to-configuration switch`. */
  command?: (path: string) => string[]
  /** argv to make a generation the next boot's without activating it; default `PATH/bin/switch-to-configuration boot`. */
  bootCommand?: (path: string) => string[]
  /** Extra environment for the activation command. */
  env?: Record<string, string>
  /** Default 5 minutes: a stuck activation must not hold the host forever. */
  timeoutMs?: number
  /**
   * Where detached activations leave their pid, output and exit code (see activation.ts);
   * default `.NAME-activations` beside the profile.
   */
  dir?: string
}

export interface ProfileOptions extends NixOptions {
  profile?: string
  activation?: ActivationOptions
  /** When set, fetched paths must carry a signature by one of these keys (`name:base64`). */
  trustedPublicKeys?: string[]
}

const ACTIVATION_TIMEOUT_MS = 5 * 60_000

export class NixProfileBackend implements Backend {
  readonly profile: string
  private readonly opts: ProfileOptions

  constructor (opts: ProfileOptions = {}) {
    this.profile = opts.profile ?? DEFAULT_PROFILE
    this.opts = opts
  }

  async fetch (path: string, sources: string[]): Promise<void> {
    assertStorePath(path)
    if (await this.isValid(path)) return
    const failures: string[] = []
    for (const source of sources) {
      try {
        await runNix('nix', ['copy', ...storeArgs(this.opts), ...this.sigArgs(), '--from', source, path], this.nixOpts())
      } catch (err) {
        failures.push(`${source}: ${(err as Error).message}`)
        continue
      }
      // A cache can claim success for a path it did not deliver; only the store decides.
      if (await this.isValid(path)) return
      failures.push(`${source}: copy finished but ${path} is not valid`)
    }
    throw new NixosError('PATH_NOT_FETCHED', `could not fetch ${path} from ${sources.length} source(s)${failures.length > 0 ? `: ${tail(failures.join('; '))}` : ''}`)
  }

  async switch (path: string): Promise<Generation> {
    assertStorePath(path)
    await mkdir(dirname(this.profile), { recursive: true })
    await runNix('nix-env', ['-p', this.profile, '--set', path], this.opts)
    return await this.requireCurrent()
  }

  async activate (id: string, mode: 'switch' | 'boot' = 'switch'): Promise<void> {
    const gen = await this.requireCurrent()
    const activation = this.opts.activation ?? {}
    const command = mode === 'boot' ? activation.bootCommand ?? defaultBoot : activation.command ?? defaultActivation
    await activateDetached({
      dir: activation.dir ?? join(dirname(this.profile), `.${basename(this.profile)}-activations`),
      id,
      argv: command(gen.path),
      env: activation.env ?? {},
      timeoutMs: activation.timeoutMs ?? ACTIVATION_TIMEOUT_MS,
      what: `generation ${gen.number} (${gen.path})`
    })
  }

  async current (): Promise<Generation | null> {
    let link: string
    try {
      link = await readlink(this.profile)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    const number = this.linkNumber(basename(link))
    if (number === null) throw new NixosError('GENERATION_NOT_FOUND', `profile ${this.profile} points at ${link}, not a generation link`)
    return { number, path: await readlink(this.linkPath(number)) }
  }

  async list (): Promise<Generation[]> {
    let names: string[]
    try {
      names = await readdir(dirname(this.profile))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const gens: Generation[] = []
    for (const name of names) {
      const number = this.linkNumber(name)
      if (number !== null) gens.push({ number, path: await readlink(this.linkPath(number)) })
    }
    return gens.sort((a, b) => a.number - b.number)
  }

  async rollback (to: Generation): Promise<Generation> {
    const target = (await this.list()).find(g => g.number === to.number)
    // Exactness: the number alone could have been reused after deletion; the path must match too.
    if (target === undefined || target.path !== to.path) {
      throw new NixosError('GENERATION_NOT_FOUND', `generation ${to.number} (${to.path}) no longer exists in ${this.profile}`)
    }
    await runNix('nix-env', ['-p', this.profile, '--switch-generation', String(to.number)], this.opts)
    const now = await this.requireCurrent()
    if (now.number !== to.number || now.path !== to.path) {
      throw new NixosError('GENERATION_NOT_FOUND', `after switching, ${this.profile} is at ${now.number}, not ${to.number}`)
    }
    return now
  }

  async gc (keep = DEFAULT_KEEP): Promise<number[]> {
    if (!Number.isInteger(keep) || keep < 1) throw new NixosError('INVALID_CONFIG', `keep must be a positive integer, got ${keep}`)
    const before = await this.list()
    await runNix('nix-env', ['-p', this.profile, '--delete-generations', `+${keep}`], this.opts)
    const after = new Set((await this.list()).map(g => g.number))
    return before.filter(g => !after.has(g.number)).map(g => g.number)
  }

  async preview (path: string): Promise<string> {
    assertStorePath(path)
    const cur = await this.current()
    if (cur === null) return `new system: ${path}`
    return this.diff(cur.path, path)
  }

  /** `nix store diff-closures` between two store paths: what changes from `from` to `to`. */
  async diff (from: string, to: string): Promise<string> {
    assertStorePath(from)
    assertStorePath(to)
    const { stdout } = await runNix('nix', ['store', 'diff-closures', ...storeArgs(this.opts), from, to], this.opts)
    return stdout
  }

  private async isValid (path: string): Promise<boolean> {
    try {
      await runNix('nix-store', [...storeArgs(this.opts), '--check-validity', path], this.opts)
      return true
    } catch (err) {
      if ((err as NixosError).code === 'NIX_COMMAND_FAILED') return false
      throw err
    }
  }

  private async requireCurrent (): Promise<Generation> {
    const cur = await this.current()
    if (cur === null) throw new NixosError('GENERATION_NOT_FOUND', `profile ${this.profile} has no current generation`)
    return cur
  }

  private sigArgs (): string[] {
    // Without configured keys the operator chose unsigned sources (e.g. a local file:// cache);
    // with keys, Nix itself refuses any path lacking a valid signature.
    return this.opts.trustedPublicKeys === undefined ? ['--no-check-sigs'] : []
  }

  private nixOpts (): NixOptions & { extraConfig?: string } {
    const keys = this.opts.trustedPublicKeys
    return keys === undefined ? this.opts : { ...this.opts, extraConfig: `require-sigs = true\ntrusted-public-keys = ${keys.join(' ')}` }
  }

  private linkNumber (name: string): number | null {
    const prefix = `${basename(this.profile)}-`
    if (!name.startsWith(prefix) || !name.endsWith('-link')) return null
    const digits = name.slice(prefix.length, -'-link'.length)
    return /^[0-9]{1,9}$/.test(digits) ? Number(digits) : null
  }

  private linkPath (number: number): string {
    return join(dirname(this.profile), `${basename(this.profile)}-${number}-link`)
  }
}

function defaultActivation (path: string): string[] {
  return [join(path, 'bin', 'switch-to-configuration'), 'switch']
}

function defaultBoot (path: string): string[] {
  return [join(path, 'bin', 'switch-to-configuration'), 'boot']
}
