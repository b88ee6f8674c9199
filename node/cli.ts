// The operator's single entry point. Human output by default, --json on every query, and
// exit codes scripts can rely on: 0 ok, 1 failed, 2 usage, 3 daemon not running, 4 locked.
import { Command, CommanderError } from 'commander'
import { promises as fs } from 'node:fs'
import { createIdentity } from '../crypto/identity.js'
import { DEFAULT_CONFIG, dataPaths, defaultDataDir, writeConfig } from './config.js'
import { ControlClient } from './client.js'
import { NodeError } from './errors.js'
import { runDaemon } from './daemon.js'
import type { NodeStatus, PeerInfo } from './mesh.js'

const EXIT: Record<string, number> = { DAEMON_NOT_RUNNING: 3, DATA_DIR_LOCKED: 4 }

const out = (line: string): void => { process.stdout.write(line + '\n') }

interface GlobalOpts { dataDir: string }

function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

export function buildCli (): Command {
  const program = new Command('fleetmesh')
    .description('a private post-quantum mesh for a fleet of servers')
    .option('-d, --data-dir <dir>', 'the host\'s data dir (env FLEETMESH_DATA_DIR)', defaultDataDir())
    .showHelpAfterError()
    .exitOverride()

  const globals = (): GlobalOpts => program.opts<GlobalOpts>()
  const client = async (): Promise<ControlClient> => ControlClient.forDataDir(globals().dataDir)

  program.command('init')
    .description('create the data dir, the host identity and a default config')
    .option('--listen <multiaddr>', 'listen address (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action(async (o: { listen?: string[], json?: boolean }) => {
      const { dataDir } = globals()
      const paths = dataPaths(dataDir)
      await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
      const identity = await createIdentity(paths.identity).catch((err: { code?: string }) => {
        if (err.code === 'IDENTITY_EXISTS') throw new NodeError('ALREADY_INITIALISED', `${dataDir} is already initialised`)
        throw err
      })
      await writeConfig(dataDir, { ...DEFAULT_CONFIG, listen: o.listen ?? DEFAULT_CONFIG.listen })
      const peerId = identity.peerId.toString()
      if (o.json === true) out(JSON.stringify({ peerId, dataDir }))
      else out(`initialised ${dataDir}\npeer id: ${peerId}`)
    })

  program.command('start')
    .description('run the node in the foreground')
    .option('--listen <multiaddr>', 'listen address (repeatable; overrides the config)', collect)
    .option('--bootstrap <multiaddr>', 'peer to dial, with /p2p/ID (repeatable)', collect)
    .action(async (o: { listen?: string[], bootstrap?: string[] }) => {
      await runDaemon({ dataDir: globals().dataDir, listen: o.listen, bootstrap: o.bootstrap }, out)
    })

  program.command('status')
    .description('this host\'s identity, addresses and connections')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const s = await (await client()).get<NodeStatus>('/v1/status')
      if (o.json === true) return out(JSON.stringify(s))
      out(`peer id:   ${s.peerId}`)
      out(`version:   ${s.version}`)
      out(`data dir:  ${s.dataDir}`)
      out(`up since:  ${new Date(s.startedAt).toISOString()}`)
      out(`peers:     ${s.connectedPeers}`)
      for (const a of s.addresses) out(`listening: ${a}`)
    })

  program.command('peers')
    .description('peers this host is connected to')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const peers = await (await client()).get<PeerInfo[]>('/v1/peers')
      if (o.json === true) return out(JSON.stringify(peers))
      if (peers.length === 0) return out('no connected peers')
      for (const p of peers) {
        out(`${p.peerId}  ${p.direction.padEnd(8)} ${(p.encryption ?? '?').padEnd(26)} ${p.rttMs != null ? `${p.rttMs} ms` : ''}  ${p.addresses.join(' ')}`)
      }
    })

  return program
}

export async function main (argv: string[]): Promise<number> {
  const program = buildCli()
  try {
    await program.parseAsync(argv, { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    const code = (err as { code?: string }).code ?? ''
    process.stderr.write(`fleetmesh: ${(err as Error).message}\n`)
    return EXIT[code] ?? 1
  }
}

process.exit(await main(process.argv.slice(2)))
