// Activation runs detached from the process that asked for it: NixOS's switch-to-configuration
// may restart the very service that runs the deploy engine, and a child of that service would be
// stopped with it (a stop that waits for the apply, which waits for the switch: a deadlock, then
// a kill, then a rollback of every release that changes the fleetmesh unit). Where systemd runs,
// the activation is its own transient unit (`systemd-run --unit`); elsewhere a process in its own
// session. Either way a small shell wrapper leaves its pid, output and exit code in files named
// by the activation id, so whichever process waits for it (the one that started it, or the one
// that restarted after it) learns the same result.
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { ActivationError, NixosError } from './errors.js'
import { SYSTEMD_RUNTIME_DIR } from './health.js'
import { tail } from './nix.js'

export interface DetachedActivation {
  /** Directory of the activation files; a finished activation's files go when the next one starts. */
  dir: string
  /** The activation id (`[A-Za-z0-9._:-]`): a second call with it waits instead of starting again. */
  id: string
  argv: string[]
  env: Record<string, string>
  timeoutMs: number
  /** Shown in errors: which generation this activates. */
  what: string
}

/** How long a started wrapper may take to write its pid before the activation counts as lost. */
const START_GRACE_MS = 30_000
const POLL_MS = 25
const OUTPUT_TAIL_BYTES = 4096

// $1 output file, $2 exit file, $3 pid file, then the activation's argv.
const WRAPPER = 'o="$1"; e="$2"; p="$3"; shift 3; echo "$$" > "$p.tmp" && mv "$p.tmp" "$p"; ' +
  '"$@" > "$o" 2>&1 < /dev/null; c=$?; echo "$c" > "$e.tmp" && mv "$e.tmp" "$e"'

interface Files { run: string, out: string, exit: string, pid: string }

function files (a: DetachedActivation): Files {
  const base = join(a.dir, a.id)
  return { run: `${base}.run`, out: `${base}.out`, exit: `${base}.exit`, pid: `${base}.pid` }
}

/** Starts the activation unless it was started already, and waits for its result. */
export async function activateDetached (a: DetachedActivation): Promise<void> {
  const f = files(a)
  const startedAt = await readStart(f) ?? await start(a, f)
  for (;;) {
    const code = await readExit(f)
    if (code !== null) {
      if (code === 0) return
      throw new ActivationError(`activation of ${a.what} exited ${code}`, await outputTail(f))
    }
    if (Date.now() - startedAt > a.timeoutMs) {
      await killGroup(f)
      throw new ActivationError(`activation of ${a.what} timed out after ${a.timeoutMs} ms`, await outputTail(f))
    }
    if (!await alive(f, a.id, startedAt)) {
      // It may have finished between the two reads.
      if (await readExit(f) !== null) continue
      throw new ActivationError(`activation of ${a.what} ended without a result (killed, or the host restarted)`, await outputTail(f))
    }
    await sleep(POLL_MS)
  }
}

async function start (a: DetachedActivation, f: Files): Promise<number> {
  const [bin] = a.argv
  if (bin === undefined) throw new NixosError('INVALID_CONFIG', 'activation command is empty')
  await mkdir(a.dir, { recursive: true, mode: 0o700 })
  // Earlier activations' files go once they have a result; one still running keeps its own.
  const names = await readdir(a.dir)
  const idOf = (name: string): string | undefined => /^(.+)\.(?:run|pid|out|exit)(?:\.tmp)?$/.exec(name)?.[1]
  const finished = new Set(names.filter((n) => n.endsWith('.exit')).map(idOf))
  for (const name of names) {
    const id = idOf(name)
    if (id !== a.id && finished.has(id)) await rm(join(a.dir, name), { force: true })
  }
  const startedAt = Date.now()
  // Written before the process exists: after a crash right here the activation counts as lost
  // (no pid within the grace), never as not started, so it is never run twice.
  await writeAtomic(f.run, JSON.stringify({ startedAt }))
  const args = ['-c', WRAPPER, 'fleetmesh-activate', f.out, f.exit, f.pid, ...a.argv]
  if (existsSync(SYSTEMD_RUNTIME_DIR)) {
    const env = { PATH: process.env.PATH ?? '/run/current-system/sw/bin', ...a.env }
    await promisify(execFile)('systemd-run', [
      `--unit=fleetmesh-activate-${a.id.replace(/[^A-Za-z0-9_-]/g, '_')}.service`, '--collect', '--quiet', '--property=Type=exec',
      ...Object.entries(env).map(([k, v]) => `--setenv=${k}=${v}`), '/bin/sh', ...args
    ]).catch((err: Error) => { throw new ActivationError(`systemd-run for ${a.what} failed`, err.message, { cause: err }) })
  } else {
    const child = spawn('/bin/sh', args, { detached: true, stdio: 'ignore', env: { ...process.env, ...a.env } })
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', (err) => { reject(new ActivationError(`activation of ${a.what} could not start`, err.message, { cause: err })) })
    })
    child.unref()
  }
  return startedAt
}

async function readStart (f: Files): Promise<number | null> {
  const raw = await readFile(f.run, 'utf8').catch(() => null)
  if (raw === null) return null
  const startedAt = (JSON.parse(raw) as { startedAt?: unknown }).startedAt
  if (typeof startedAt !== 'number') throw new NixosError('JOURNAL_CORRUPT', `${f.run} is malformed`)
  return startedAt
}

async function readExit (f: Files): Promise<number | null> {
  const raw = await readFile(f.exit, 'utf8').catch(() => null)
  return raw === null ? null : Number(raw.trim())
}

/** The wrapper still runs: its pid is alive and is still this activation's wrapper. */
async function alive (f: Files, id: string, startedAt: number): Promise<boolean> {
  const pid = await readPid(f)
  if (pid === null) return Date.now() - startedAt < START_GRACE_MS
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  return cmdline.includes(`${id}.exit`) && !await isZombie(pid)
}

async function isZombie (pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return /^State:\s*Z/m.test(status)
}

async function readPid (f: Files): Promise<number | null> {
  const raw = await readFile(f.pid, 'utf8').catch(() => null)
  const pid = raw === null ? NaN : Number(raw.trim())
  return Number.isInteger(pid) && pid > 1 ? pid : null
}

/** The wrapper leads its own session (setsid, or systemd's per-unit session): its group is the activation. */
async function killGroup (f: Files): Promise<void> {
  const pid = await readPid(f)
  if (pid === null) return
  try { process.kill(-pid, 'SIGKILL') } catch { /* already gone */ }
}

async function outputTail (f: Files): Promise<string> {
  const fh = await open(f.out, 'r').catch(() => null)
  if (fh === null) return ''
  try {
    const { size } = await fh.stat()
    const buf = Buffer.alloc(Math.min(size, OUTPUT_TAIL_BYTES))
    await fh.read(buf, 0, buf.length, size - buf.length)
    return tail(buf.toString('utf8'))
  } finally {
    await fh.close()
  }
}

async function writeAtomic (path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text, { mode: 0o600 })
  await rename(`${path}.tmp`, path)
}
