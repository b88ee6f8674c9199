// Running the Nix tools: argv only (execFile/spawn, never a shell string), an explicit
// NIX_CONFIG, a timeout per call, and errors that carry the tail of stderr.
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import { STORE_PATH_RE } from '../crypto/ids.js'
import { NixCommandError, NixosError } from './errors.js'

/**
 * Single-user Nix as root without a daemon (Debian's nix-bin, CI): the new CLI enabled,
 * no build users, no sandbox; no default substituters so an offline host never waits on
 * cache.nixos.org retries: the engine always names its sources explicitly.
 */
export const DEFAULT_NIX_CONFIG = 'experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters ='

export interface NixOptions {
  /** Replaces DEFAULT_NIX_CONFIG (e.g. on NixOS, where the daemon's nix.conf should rule). */
  nixConfig?: string
  /** A chroot store root (`--store /tmp/x`); default: the system store (/nix/store). */
  store?: string
  /** Per-command timeout; default 10 minutes (copies of large closures are slow). */
  timeoutMs?: number
}

export interface RunResult { stdout: string, stderr: string }

const TAIL_CHARS = 2000
const DEFAULT_TIMEOUT_MS = 10 * 60_000

export function tail (text: string, max = TAIL_CHARS): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`
}

export function nixEnv (opts: NixOptions, extraConfig = ''): NodeJS.ProcessEnv {
  const config = (opts.nixConfig ?? DEFAULT_NIX_CONFIG) + (extraConfig === '' ? '' : `\n${extraConfig}`)
  return { ...process.env, NIX_CONFIG: config }
}

/** `--store ROOT` when a separate store root is configured. */
export function storeArgs (opts: NixOptions): string[] {
  return opts.store === undefined ? [] : ['--store', opts.store]
}

export interface RunOptions extends NixOptions {
  extraConfig?: string
  input?: string
}

export async function runNix (bin: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = commandLine(bin, args)
  return await new Promise((resolve, reject) => {
    const child = execFile(bin, args, {
      env: nixEnv(opts, opts.extraConfig),
      timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
      encoding: 'utf8'
    }, (err, stdout, stderr) => {
      if (err === null) { resolve({ stdout, stderr }); return }
      reject(toNixError(command, err, stderr))
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}

interface ChildFailure extends Error { code?: unknown, killed?: boolean, signal?: unknown }

export function toNixError (command: string, err: ChildFailure, stderr: string): NixosError {
  if (err.code === 'ENOENT') {
    return new NixCommandError('NIX_MISSING', command, null, `${command.split(' ')[0]} not found on PATH; run nixos/ensure-nix.sh`, { cause: err })
  }
  if (err.killed === true && err.signal === 'SIGKILL') {
    return new NixCommandError('NIX_TIMEOUT', command, null, tail(stderr), { cause: err })
  }
  return new NixCommandError('NIX_COMMAND_FAILED', command, typeof err.code === 'number' ? err.code : null, tail(stderr), { cause: err })
}

/** For error messages: argv here holds store paths and options, never secrets. */
export function commandLine (bin: string, args: string[]): string {
  const line = [bin, ...args].join(' ')
  return line.length <= 300 ? line : `${line.slice(0, 300)}…`
}

export type NixChild = ChildProcessByStdio<Writable | null, Readable, Readable>

/** A streaming Nix process (export/import of closures); the caller wires stdin/stdout. */
export function spawnNix (bin: string, args: string[], opts: NixOptions, stdin: 'pipe' | 'ignore'): NixChild {
  return spawn(bin, args, {
    env: nixEnv(opts),
    stdio: [stdin, 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: 'SIGKILL'
  }) as NixChild
}

/** Waits for a spawned Nix process; rejects with its stderr tail when it fails. */
export async function waitNix (child: NixChild, command: string): Promise<void> {
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => { stderr = tail(stderr + d, TAIL_CHARS * 2) })
  await new Promise<void>((resolve, reject) => {
    child.once('error', (err) => { reject(toNixError(command, err, stderr)) })
    child.once('close', (code, signal) => {
      if (code === 0) { resolve(); return }
      const timedOut = signal === 'SIGKILL'
      reject(new NixCommandError(timedOut ? 'NIX_TIMEOUT' : 'NIX_COMMAND_FAILED', command, code, tail(stderr)))
    })
  })
}


/** Rejects anything that is not a top-level store path, before it reaches a Nix argv. */
export function assertStorePath (path: string): string {
  if (typeof path !== 'string' || !STORE_PATH_RE.test(path) || path.endsWith('.drv')) {
    throw new NixosError('INVALID_STORE_PATH', `not a store path: ${JSON.stringify(String(path).slice(0, 300))}`)
  }
  return path
}
