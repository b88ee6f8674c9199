// A local fleet of real fleetmesh processes: one founder, members paired through real invite
// codes, each host with its own Nix profile and a fixture "system service" on its own port,
// so releases are applied, health-checked and rolled back for real. Used by the multi-process
// tests, the demo and the rollout simulation.
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { HostProcess, runCli, tempDir, waitFor, type CliResult } from './processes.js'
import { readConfig, writeConfig } from '../../node/config-file.js'
import { createServer } from 'node:net'
import type { AgentSpec } from '../../node/agents/spec.js'
import { ControlClient } from '../../node/client.js'

export interface HostSpec {
  name: string
  tags?: string[]
  role?: 'host' | 'admin'
  /** the agents this host supervises ("agents" in its config) */
  agents?: (host: FleetHost) => AgentSpec[]
}

export interface FleetOptions {
  hosts: HostSpec[]
  mesh?: string
  /** soak of every new generation on each host (the engine's own verification) */
  soakMs?: number
  dir?: string
  /** extra environment of every host process */
  env?: NodeJS.ProcessEnv
  onProgress?: (line: string) => void
}

/** ports already given out by this process: free until their service starts, so never twice */
const handedOut = new Set<number>()

/**
 * A port for a host's fixture service (or agent), below Linux's ephemeral range (32768+) so that no
 * libp2p or API listener on port 0 can take it between now and the service's start.
 */
export async function servicePort (): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (handedOut.has(port)) continue
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
    })
    if (free) {
      handedOut.add(port)
      return port
    }
  }
}

export class FleetHost {
  process: HostProcess | null = null
  peerId = ''

  constructor (readonly name: string, readonly dataDir: string, readonly port: number, readonly spec: HostSpec) {}

  get serviceDir (): string { return join(this.dataDir, 'service') }
  get profile (): string { return join(this.dataDir, 'nix', 'profiles', 'system') }
  get healthUrl (): string { return `http://127.0.0.1:${this.port}/health` }
  get online (): boolean { return this.process !== null }
  get address (): string {
    if (this.process === null) throw new Error(`${this.name} is not running`)
    return this.process.addresses[0]
  }

  async cli (args: string[]): Promise<CliResult> {
    return runCli(['--data-dir', this.dataDir, ...args])
  }

  /** Runs a query command with --json and parses it; throws with the command's stderr. */
  async json<T> (args: string[]): Promise<T> {
    const r = await this.cli([...args, '--json'])
    if (r.code !== 0) throw new Error(`${this.name}: fleetmesh ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
    return JSON.parse(r.stdout) as T
  }

  /** GET on this host's control API with the operator token: a quick query where no CLI output is shown. */
  async get<T> (path: string): Promise<T> {
    return await (await ControlClient.forDataDir(this.dataDir)).get<T>(path)
  }

  /** The version string the fixture service of the active generation reports, if any. */
  async activeVersion (): Promise<string | null> {
    try {
      return (await readFile(join(this.serviceDir, 'active-version'), 'utf8')).trim()
    } catch {
      return null
    }
  }

  async killService (): Promise<void> {
    try {
      const pid = Number((await readFile(join(this.serviceDir, 'service.pid'), 'utf8')).trim())
      process.kill(pid, 'SIGKILL')
    } catch { /* no service running */ }
  }
}

export class Fleet {
  readonly hosts: FleetHost[] = []
  private constructor (readonly dir: string, private readonly opts: FleetOptions) {}

  host (name: string): FleetHost {
    const h = this.hosts.find((x) => x.name === name)
    if (h === undefined) throw new Error(`no host ${name}`)
    return h
  }

  get founder (): FleetHost { return this.hosts[0] }

  private say (line: string): void { this.opts.onProgress?.(line) }

  /** Initialises every data dir and configures its deploys; the first host founds the mesh. */
  static async create (opts: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(opts.dir ?? await tempDir('fleetmesh-fleet-'), opts)
    for (const [i, spec] of opts.hosts.entries()) {
      const host = new FleetHost(spec.name, join(fleet.dir, spec.name), await servicePort(), spec)
      const init = await runCli(['--data-dir', host.dataDir, 'init', '--json', '--name', spec.name, ...(i === 0 ? ['--mesh', opts.mesh ?? 'fleet', ...(spec.tags ?? []).flatMap((t) => ['--tag', t])] : [])])
      if (init.code !== 0) throw new Error(`init ${spec.name}: ${init.stderr}`)
      host.peerId = (JSON.parse(init.stdout) as { peerId: string }).peerId
      const config = await readConfig(host.dataDir)
      await writeConfig(host.dataDir, {
        ...config,
        deploy: {
          ...config.deploy,
          profile: host.profile,
          activationEnv: { FLEETMESH_FIXTURE_STATE: host.serviceDir, FLEETMESH_FIXTURE_PORT: String(host.port) },
          activationTimeoutMs: 30_000,
          // A fresh service process needs a moment to listen on a loaded machine: ten misses 200 ms apart.
          healthChecks: [{ kind: 'http', name: 'service', url: host.healthUrl, intervalMs: 200, retries: 10, timeoutMs: 1000 }],
          soakMs: opts.soakMs ?? 500
        },
        agents: spec.agents?.(host) ?? config.agents
      })
      fleet.hosts.push(host)
    }
    return fleet
  }

  async start (name: string): Promise<FleetHost> {
    const host = this.host(name)
    const bootstrap = this.hosts.filter((h) => h !== host && h.online).slice(0, 3).flatMap((h) => ['--bootstrap', h.address])
    host.process = await HostProcess.start(host.dataDir, bootstrap, this.opts.env)
    return host
  }

  async stop (name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const host = this.host(name)
    await host.process?.stop(signal)
    host.process = null
  }

  /** Starts the founder, then starts and pairs every other host with a fresh invite code. */
  async pairAll (): Promise<void> {
    await this.start(this.founder.name)
    this.say(`${this.founder.name}: founded the mesh (${this.founder.peerId})`)
    for (const host of this.hosts.slice(1)) {
      // Admins pair the hosts after them too: invites come from more than one inviter.
      const inviter = [...this.hosts].reverse().find((h) => h.online && h.spec.role === 'admin' && h !== host) ?? this.founder
      const args = ['invite', '--role', host.spec.role ?? 'host', ...(host.spec.tags ?? []).flatMap((t) => ['--tag', t])]
      const inv = await inviter.json<{ code: string }>(args)
      await this.start(host.name)
      const join = await host.json<{ admitted: boolean }>(['join', inv.code])
      if (!join.admitted) throw new Error(`${host.name} paired but its admit entry never arrived`)
      this.say(`${host.name}: joined with an invite from ${inviter.name} (${host.spec.role ?? 'host'}${host.spec.tags !== undefined ? `, tags ${host.spec.tags.join(',')}` : ''})`)
    }
    await this.waitFor("every host to see every member", async () => {
      for (const h of this.hosts.filter((x) => x.online)) {
        const members = await h.json<Array<{ peerId: string, revoked: boolean }>>(['members'])
        if (members.filter((m) => !m.revoked).length < this.hosts.length) return false
      }
      return true
    })
  }

  async waitFor (what: string, check: () => Promise<boolean>, timeoutMs = Number(process.env.FLEET_WAIT_MS ?? 60_000)): Promise<void> {
    await waitFor(async () => (await check()) ? true : undefined, what, timeoutMs)
  }

  async close (): Promise<void> {
    await Promise.all(this.hosts.map(async (h) => {
      await h.process?.stop().catch(() => {})
      h.process = null
      await h.killService()
    }))
    if (this.opts.dir === undefined) await rm(this.dir, { recursive: true, force: true })
  }
}
