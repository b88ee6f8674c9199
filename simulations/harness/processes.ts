// Real fleetmesh processes for tests, the demo and benchmarks: each host is its own Node
// process running the real CLI on its own data dir, talking over loopback TCP.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SOURCES = ['node', 'protocols', 'crypto', 'nixos']

/**
 * Hosts run the CLI compiled by `npm run build` (which `npm ci`, `npm test`, the demo, `bench`
 * and `sim` run first), as an installed host does: a TypeScript loader costs each of the suite's
 * hundreds of CLI processes about 0.6 s of CPU. Hosts must run the tree under test, so while any
 * source file is newer than the build (an edit not yet built) they run the sources under tsx.
 */
export const CLI = join(ROOT, 'dist/node/cli.js')
const CLI_SOURCE = join(ROOT, 'node/cli.ts')

/** The first source file newer than the last build, if any. */
function staleSource (): string | undefined {
  let at = 0
  try { at = statSync(join(ROOT, 'dist/.tsbuildinfo')).mtimeMs } catch { /* never built: every source is newer */ }
  for (const dir of SOURCES) {
    for (const f of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if ((f.endsWith('.ts') || f.startsWith('web/')) && statSync(join(ROOT, dir, f)).mtimeMs > at) return `${dir}/${f}`
    }
  }
  return undefined
}

let argv: string[] | undefined
/** The argv that runs the CLI on this Node: spawn(process.execPath, [...cliArgv(), ...args]). */
export function cliArgv (): string[] {
  argv ??= staleSource() === undefined ? [CLI] : ['--import', 'tsx', CLI_SOURCE]
  return argv
}

/** For what must run the installed command itself (the bin wrapper runs dist/): refuse a stale build. */
export function assertBuilt (): void {
  const stale = staleSource()
  if (stale !== undefined) throw new Error(`dist/ is older than ${stale}: run "npm run build" (npm test, the demo, bench and sim do)`)
}

export interface CliResult { code: number, stdout: string, stderr: string }

/** Runs one CLI command to completion. */
export async function runCli (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [...cliArgv(), ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  // Destroying the pipes too: a grandchild that inherited them would otherwise hold off 'close'.
  const timer = setTimeout(() => { child.kill('SIGKILL'); child.stdout.destroy(); child.stderr.destroy() }, opts.timeoutMs ?? 60_000)
  // 'close', not 'exit': 'exit' can come before the last of stdout and stderr has been read.
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 128)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Polls `fn` every 250 ms until it returns a value, or fails after `timeoutMs` naming `what`. */
export async function waitFor<T> (fn: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

export async function tempDir (prefix = 'fleetmesh-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

export class HostProcess {
  peerId = ''
  addresses: string[] = []
  stdout = ''
  stderr = ''
  private exited: Promise<number>

  private constructor (readonly dataDir: string, readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig != null ? 128 : 0))))
  }

  /** Starts `fleetmesh start` and resolves once it has printed its identity and addresses. */
  static async start (dataDir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<HostProcess> {
    const child = spawn(process.execPath, [...cliArgv(), '--data-dir', dataDir, 'start', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const host = new HostProcess(dataDir, child)
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { host.stderr += d })
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        host.stdout += d
        if (host.stdout.includes('control api:')) resolve()
      })
      void host.exited.then((code) => reject(new Error(`fleetmesh start exited with ${code}: ${host.stderr.trim().split('\n').pop() ?? ''}`)))
    })
    host.peerId = /peer id: (\S+)/.exec(host.stdout)?.[1] ?? ''
    host.addresses = [...host.stdout.matchAll(/listening: (\S+)/g)].map((m) => m[1])
    return host
  }

  async cli (args: string[]): Promise<CliResult> {
    return runCli(['--data-dir', this.dataDir, ...args])
  }

  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
    if (this.child.exitCode == null && this.child.signalCode == null) this.child.kill(signal)
    return this.exited
  }
}
