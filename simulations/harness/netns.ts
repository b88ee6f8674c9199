// A host in its own network namespace, reached from the others over a veth pair: an activation
// that takes its end of the pair down really cuts it off the mesh (test/deploy/confirm.test.ts,
// the safety scenario). Its daemon and CLI run inside the namespace; its control API (loopback of
// the namespace) is out of reach from outside, so what it did is read from the others' logs.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { cliArgv, type CliResult } from './processes.js'
import type { FleetHost } from '../harness/fleet.js'

const run = promisify(execFile)
const tag = process.pid % 100000

export class Netns {
  readonly name: string
  /** [outside end, inside end] */
  readonly veth: [string, string]
  readonly subnet: string

  /** `prefix`: 2 or 3 letters, so that two users of this on one machine do not meet */
  constructor (prefix: string, subnetBase: number) {
    this.name = `${prefix}ns${tag}`
    this.veth = [`${prefix}${tag}a`, `${prefix}${tag}b`]
    this.subnet = `10.${subnetBase + (process.pid % 50)}.${process.pid % 250}`
  }

  get outsideIp (): string { return `${this.subnet}.1` }
  get insideIp (): string { return `${this.subnet}.2` }

  async create (): Promise<void> {
    const [a, b] = this.veth
    await run('ip', ['netns', 'add', this.name])
    await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b])
    await run('ip', ['link', 'set', b, 'netns', this.name])
    await run('ip', ['addr', 'add', `${this.outsideIp}/24`, 'dev', a])
    await run('ip', ['link', 'set', a, 'up'])
    await run('ip', ['netns', 'exec', this.name, 'ip', 'addr', 'add', `${this.insideIp}/24`, 'dev', b])
    await run('ip', ['netns', 'exec', this.name, 'ip', 'link', 'set', b, 'up'])
    await run('ip', ['netns', 'exec', this.name, 'ip', 'link', 'set', 'lo', 'up'])
  }

  async remove (): Promise<void> {
    await run('ip', ['netns', 'del', this.name]).catch(() => {})
    await run('ip', ['link', 'del', this.veth[0]]).catch(() => {})
  }

  spawnCli (args: string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, process.execPath, ...cliArgv(), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env })
  }

  async cli (host: FleetHost, args: string[]): Promise<CliResult> {
    const child = this.spawnCli(['--data-dir', host.dataDir, ...args])
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const code = await new Promise<number>((resolve) => child.on('close', (c) => { resolve(c ?? 128) }))
    return { code, stdout, stderr }
  }
}

/** A daemon inside the namespace; its output is kept (JSON log lines) for what only it says. */
export class NsDaemon {
  out = ''
  private readonly exited: Promise<void>

  private constructor (readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { this.out += d })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.out += d })
    this.exited = new Promise((resolve) => child.on('exit', () => { resolve() }))
  }

  static async start (ns: Netns, host: FleetHost, bootstrap: string): Promise<NsDaemon> {
    const d = new NsDaemon(ns.spawnCli(['--data-dir', host.dataDir, 'start', '--bootstrap', bootstrap]))
    const deadline = Date.now() + 90_000
    while (!d.out.includes('control api:')) {
      if (Date.now() > deadline || d.child.exitCode !== null) throw new Error(`${host.name} did not start in its namespace: ${d.out.slice(-2000)}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return d
  }

  /** The JSON log lines whose msg starts with `prefix`. */
  lines (prefix: string): Array<Record<string, unknown>> {
    return this.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => typeof l.msg === 'string' && l.msg.startsWith(prefix))
  }

  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null) this.child.kill(signal)
    await this.exited
  }
}
