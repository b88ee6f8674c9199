// Real fleetmesh processes for tests, the demo and benchmarks: each host is its own Node
// process running the real CLI on its own data dir, talking over loopback TCP.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../node/cli.ts', import.meta.url))

export interface CliResult { code: number, stdout: string, stderr: string }

/** Runs one CLI command to completion. */
export async function runCli (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
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
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--data-dir', dataDir, 'start', ...args], {
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
