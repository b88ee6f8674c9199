// The operator's single entry point. Human output by default, --json on every query, and
// exit codes scripts can rely on: 0 ok, 1 failed, 2 usage, 3 daemon not running, 4 locked,
// 5 refused (pairing refused, verification failed).
// `--help` and the commands that only call the daemon load commander and the client alone: the
// node (libp2p, level, the protocols) is imported inside the actions that run it or open its store.
import { Command, CommanderError } from 'commander'
import { existsSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { SYSTEM_CONFIG, dataPaths, defaultDataDir } from './config.js'
import { VERSION } from './version.js'
import { SHELLS, completionScript } from './cli-completion.js'
import { NodeError, fileErrorLine } from './errors.js'
import { collect, parseChoice, parseCount, parseDuration, parseMultiaddrs, parseTag, readableFile, usage } from './cli-parse.js'
import { registerAuditCommands } from './cli-audit.js'
import { rowLabels, shortId } from './host-names.js'
import { HOST_NAME_RULE, isHostName } from '../protocols/membership/host-name.js'
import { ControlClient, runningDaemon } from './client.js'
import { registerRoomCommands } from './cli-rooms.js'
import { registerUiCommand } from './cli-ui.js'
import { registerDriftCommands } from './drift/cli.js'
import { registerAgentCommands } from './agents/cli.js'
import { registerDeployCommands } from './deploy/cli.js'
import { registerHoldCommands } from './deploy/cli-holds.js'
import type { MemberRow, NodeStatus, PeerInfo } from './routes.js'
import type { InviteRow, IssuedInvite, JoinResult } from './pairing.js'

// Refusals of what the operator wrote (a config, a flag the daemon checks) are usage errors too.
const EXIT: Record<string, number> = { CONFIG_INVALID: 2, API_BAD_REQUEST: 2, DAEMON_NOT_RUNNING: 3, DATA_DIR_LOCKED: 4, REFUSED: 5 }
const PAIRING_CODES = new Set(['INVITE_UNKNOWN', 'INVITE_EXPIRED', 'INVITE_REVOKED', 'WELCOME_MISMATCH', 'INVITE_USED_UP', 'PROOF_INVALID', 'WRONG_MESH', 'RATE_LIMITED', 'INVITER_NOT_ADMIN', 'INVITER_UNREACHABLE', 'NAME_INVALID', 'INVITE_TYPO', 'INVITE_MALFORMED', 'INVITE_VERSION', 'INVITE_TOO_LARGE'])

const out = (line: string): void => { process.stdout.write(line + '\n') }

interface GlobalOpts { dataDir: string, config?: string }

const ROLES = ['host', 'admin'] as const
const MESH_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** `--name` of init and join: refused before anything is written or sent. */
function hostName (name: string | undefined): void {
  if (name !== undefined && !isHostName(name)) usage(`--name: "${name}" is not a host name; write ${HOST_NAME_RULE}`)
}

/** A data dir that is a file fails every command in its own errno: say it once, plainly. */
function checkDataDir (dataDir: string): void {
  const stat = statSync(dataDir, { throwIfNoEntry: false })
  if (stat !== undefined && !stat.isDirectory()) throw new NodeError('DATA_DIR_INVALID', `the data dir ${dataDir} is a file, not a directory; choose another with --data-dir (or FLEETMESH_DATA_DIR)`)
}

/**
 * libp2p's listen failure is a multi-line message about its own settings with a stack trace per
 * address: the operator needs the address and what to do.
 */
function listenFailure (err: unknown): NodeError | undefined {
  if ((err as Error).name !== 'UnsupportedListenAddressesError') return undefined
  const failed = [...(err as Error).message.matchAll(/^\s*(\/\S+): (?:\w*Error: )?(.*)$/gm)].map(([, addr, why]) => {
    if (why.includes('EADDRINUSE')) return `${addr}: the address is in use by another process (another fleetmesh daemon?)`
    if (why.includes('EADDRNOTAVAIL')) return `${addr}: this host has no such address`
    if (why.includes('EACCES')) return `${addr}: permission denied (ports below 1024 need privileges)`
    return `${addr}: ${why}`
  })
  return new NodeError('LISTEN_FAILED', `cannot listen on ${failed.join('; ') || 'the configured addresses'}; stop what holds it, or choose another address with --listen or "listen" in config.json`)
}

/** With no daemon running, `join` runs the node just long enough to pair and catch up. */
async function joinWithoutDaemon (dataDir: string, code: string, name: string | undefined): Promise<JoinResult> {
  const [{ MeshNode }, { pino }] = await Promise.all([import('./mesh.js'), import('pino')])
  const node = await MeshNode.start({ dataDir, logger: pino({ level: 'warn' }, pino.destination(2)) })
  try {
    return await node.join(code, name)
  } finally {
    await node.stop()
  }
}

export function buildCli (): Command {
  const program = new Command('fleetmesh')
    .description('a private post-quantum mesh for a fleet of servers')
    .version(VERSION, '-V, --version', 'print the version')
    .option('-d, --data-dir <dir>', 'the host\'s data dir (env FLEETMESH_DATA_DIR)', defaultDataDir())
    .option('-c, --config <file>', `the config file (env FLEETMESH_CONFIG); default: the data dir's config.json, else ${SYSTEM_CONFIG}`)
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `
Exit codes: 0 ok, 1 failed, 2 usage (a flag or config that does not read), 3 no daemon running,
4 data dir locked by another daemon, 5 refused (pairing refused, an apply that did not end
healthy, an audit trail that does not verify); release status --watch: 6 halted, 7 aborted,
8 superseded.

Config: --config FILE, else FLEETMESH_CONFIG, else the data dir's config.json (written by init),
else ${SYSTEM_CONFIG}. "fleetmesh config check" validates it without starting anything.`)
    .exitOverride()
    .hook('preAction', () => {
      const g = globals()
      checkDataDir(g.dataDir)
      // The flag is the variable spelled out: everything that reads the config (the daemon too) sees it.
      if (g.config !== undefined) process.env.FLEETMESH_CONFIG = resolve(g.config)
    })

  const globals = (): GlobalOpts => program.opts<GlobalOpts>()
  const client = async (): Promise<ControlClient> => ControlClient.forDataDir(globals().dataDir)

  program.command('init')
    .description('create the data dir, the host identity and a default config')
    .option('--mesh <name>', 'found a new mesh with this host as its first admin')
    .option('--tag <tag>', 'with --mesh: a tag of the founding host (repeatable)', collect)
    .option('--name <name>', 'this host\'s name, carried in its admission and accepted by every command that names a host (default: the hostname)')
    .option('--listen <multiaddr>', 'listen address (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .addHelpText('after', `
Examples:
  fleetmesh init --mesh prod --tag web      the first host: founds mesh "prod" and is its admin
  fleetmesh init                            any other host, then "fleetmesh join CODE"
  fleetmesh -d /srv/fm init --listen /ip4/0.0.0.0/tcp/4001`)
    .action(async (o: { mesh?: string, tag?: string[], name?: string, listen?: string[], json?: boolean }) => {
      hostName(o.name)
      if (o.tag !== undefined && o.mesh === undefined) usage('--tag needs --mesh (other hosts get their tags from their invite): fleetmesh init --mesh NAME --tag T')
      if (o.mesh !== undefined && !MESH_NAME_RE.test(o.mesh)) usage(`--mesh: "${o.mesh}" is not a mesh name; write 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`)
      const tags = o.tag?.map(parseTag)
      const listen = await parseMultiaddrs('--listen', o.listen)
      const { initHost } = await import('./init.js')
      const r = await initHost(globals().dataDir, { listen, mesh: o.mesh, tags, name: o.name })
      if (o.json === true) return out(JSON.stringify(r))
      out(`initialised ${r.dataDir}\nname:    ${r.name}\npeer id: ${r.peerId}\nconfig:  ${r.config}`)
      if (r.mesh !== null) out(`founded mesh ${r.mesh.name} (${r.mesh.id}); this host is its admin`)
    })

  program.command('start')
    .description('run the node in the foreground')
    .option('--listen <multiaddr>', 'listen address (repeatable; overrides the config)', collect)
    .option('--bootstrap <multiaddr>', 'peer to dial, with /p2p/ID (repeatable)', collect)
    .option('--health <file>', 'JSON {soakMs, checks} replacing the config\'s health checks')
    .option('--init', 'initialise the data dir first when it is not (embedded defaults)')
    .addHelpText('after', `
Examples:
  fleetmesh start                                         on the data dir's config
  fleetmesh start --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/10.0.0.1/tcp/4001/p2p/12D3KooW…
  fleetmesh --config /etc/fleetmesh/config.json start --health /etc/fleetmesh/health.json`)
    .action(async (o: { listen?: string[], bootstrap?: string[], health?: string, init?: boolean }) => {
      const dataDir = globals().dataDir
      const listen = await parseMultiaddrs('--listen', o.listen)
      const bootstrap = await parseMultiaddrs('--bootstrap', o.bootstrap, true)
      if (o.health !== undefined) await readableFile('--health', o.health)
      if (o.init === true && !existsSync(dataPaths(dataDir).identity)) {
        const { initHost } = await import('./init.js')
        out(`initialised ${(await initHost(dataDir, {})).dataDir}`)
      }
      const { runDaemon } = await import('./daemon.js')
      await runDaemon({ dataDir, listen, bootstrap, healthFile: o.health }, out).catch((err: unknown) => { throw listenFailure(err) ?? err })
    })

  program.command('status')
    .description('this host\'s identity, mesh, addresses and connections')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const s = await (await client()).get<NodeStatus>('/v1/status')
      if (o.json === true) return out(JSON.stringify(s))
      out(`name:      ${s.name ?? '-'}`)
      out(`peer id:   ${s.peerId}`)
      out(`mesh:      ${s.mesh === null ? '(none: join one with "fleetmesh join CODE")' : `${s.mesh.name} (${s.mesh.id})`}`)
      out(`role:      ${s.role ?? '-'}`)
      out(`members:   ${s.members}`)
      out(`peers:     ${s.connectedPeers}`)
      out(`audit log: ${s.entries} entries in ${s.feeds} feeds`)
      if (s.deploy === null) out('deploys:   disabled (Nix is not installed)')
      else {
        out(`current:   ${s.deploy.current !== null ? `generation ${s.deploy.current.number} ${s.deploy.current.path}` : '-'}`)
        out(`desired:   ${s.deploy.desired !== null ? `${s.deploy.desired.path} (release ${s.deploy.desired.release})` : '-'}`)
        if (s.deploy.decision !== null) out(`decision:  ${s.deploy.decision.action}${'reason' in s.deploy.decision ? `: ${s.deploy.decision.reason}` : ''}`)
      }
      if (s.equivocatingFeeds.length > 0) out(`ALERT:     equivocating feeds: ${s.equivocatingFeeds.join(', ')}`)
      if (s.revoked !== null) out(`REVOKED:   this host was revoked by ${s.revoked.by} at ${new Date(s.revoked.at).toISOString()}${s.revoked.reason !== null ? ` (${s.revoked.reason})` : ''}; members refuse it`)
      if (s.meshUnreachable !== null) out(`WARNING:   no member reachable since ${new Date(s.meshUnreachable.since).toISOString()} (${s.meshUnreachable.addressesTried} addresses tried): ${s.meshUnreachable.hint}`)
      out(`up since:  ${new Date(s.startedAt).toISOString()}   version ${s.version}`)
      for (const a of s.addresses) out(`listening: ${a}`)
    })

  program.command('peers')
    .description('peers this host is connected to')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const peers = await (await client()).get<PeerInfo[]>('/v1/peers')
      if (o.json === true) return out(JSON.stringify(peers))
      if (peers.length === 0) return out('no connected peers')
      const labels = rowLabels(peers)
      for (const p of peers) {
        out(`${(p.name !== null ? labels.get(p.peerId)! : '-').padEnd(16)} ${shortId(p.peerId)}  ${p.member ? 'member  ' : 'stranger'} ${p.direction.padEnd(8)} ${(p.encryption ?? '?').padEnd(26)} ${p.rttMs != null ? `${p.rttMs} ms` : ''}  ${p.addresses.join(' ')}`)
      }
    })

  program.command('members')
    .description('members of the mesh, as this host\'s copy of the log says')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const rows = await (await client()).get<MemberRow[]>('/v1/members')
      if (o.json === true) return out(JSON.stringify(rows))
      if (rows.length === 0) return out('no members (this host is not in a mesh yet)')
      const labels = rowLabels(rows)
      out(`${'NAME'.padEnd(16)} ${'ID'.padEnd(15)}  ${'ROLE'.padEnd(7)} ${'TAGS'.padEnd(16)} ${'ADMITTED BY'.padEnd(16)} ${'AT'.padEnd(24)}  SEEN`)
      for (const m of rows) {
        const seen = m.online ? 'online' : m.lastSeen !== null ? `seen ${new Date(m.lastSeen).toISOString()}` : 'offline'
        out(`${(m.name !== null ? labels.get(m.peerId)! : '-').padEnd(16)} ${shortId(m.peerId)}  ${m.role.padEnd(7)} ${(m.tags.join(',') || '-').padEnd(16)} ${(labels.get(m.admittedBy) ?? shortId(m.admittedBy)).padEnd(16)} ${new Date(m.admittedAt).toISOString()}  ${seen}`)
      }
    })

  const invite = program.command('invite')
    .description('print an invite code for a new host (admins only); see also "invite list|revoke"')
    .option('--ttl <duration>', 'how long the code stays valid (90s, 30m, 1h, 7d; at most 7d)', '1h')
    .option('--uses <n>', 'how many hosts may join with it', '1')
    .option('--role <role>', 'host or admin', 'host')
    .option('--tag <tag>', 'tag granted to the new host (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action(async (o: { ttl: string, uses: string, role: string, tag?: string[], json?: boolean }) => {
      parseDuration('--ttl', o.ttl)
      const body = { ttl: o.ttl, uses: parseCount('--uses', o.uses, 1), role: parseChoice('--role', o.role, ROLES, 'a role'), tags: (o.tag ?? []).map(parseTag) }
      const inv = await (await client()).post<IssuedInvite>('/v1/invites', body)
      if (o.json === true) return out(JSON.stringify(inv))
      out(inv.code)
      process.stderr.write(`invite ${inv.inviteId}: ${inv.role}${inv.tags.length > 0 ? ` [${inv.tags.join(',')}]` : ''}, ${inv.uses} use(s), expires ${new Date(inv.expiresAt * 1000).toISOString()}\n`)
    })
  invite.command('list')
    .description('invites this host issued: open, used up, expired or revoked')
    .option('--json', 'machine-readable output')
    // `--json` after a subcommand is taken by `invite` itself, which has one too.
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ json?: boolean }>()
      const rows = await (await client()).get<InviteRow[]>('/v1/invites')
      if (o.json === true) return out(JSON.stringify(rows))
      if (rows.length === 0) return out('no invites')
      for (const r of rows) {
        out(`${r.inviteId}  ${r.state.padEnd(8)} ${r.role.padEnd(6)} ${(r.tags.join(',') || '-').padEnd(16)} ${r.usesLeft} use(s) left  expires ${new Date(r.expiresAt * 1000).toISOString()}`)
      }
    })
  invite.command('revoke')
    .description('revoke an invite: its code pairs no one from now on')
    .argument('<id>', 'the invite id (from "invite list")')
    .option('--json', 'machine-readable output')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ json?: boolean }>()
      const r = await (await client()).post<InviteRow>(`/v1/invites/${encodeURIComponent(id)}/revoke`)
      if (o.json === true) return out(JSON.stringify(r))
      out(`revoked invite ${r.inviteId}`)
    })

  program.command('join')
    .description('join a mesh with an invite code (after "fleetmesh init")')
    .argument('<code>', 'the invite code printed by "fleetmesh invite"')
    .option('--name <name>', 'the name to be admitted under (default: the one "init" gave this host)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `
Examples:
  fleetmesh invite --tag web                on an admin: prints the code (fm2-…)
  fleetmesh init && fleetmesh join fm2-…    on the new host, with or without its daemon running

A refused code exits 5 with its reason (expired, used up, revoked, a typo).`)
    .action(async (code: string, o: { name?: string, json?: boolean }) => {
      const dataDir = globals().dataDir
      hostName(o.name)
      let r: JoinResult
      try {
        const daemon = await runningDaemon(dataDir)
        r = daemon !== undefined ? await daemon.post<JoinResult>('/v1/join', { code, name: o.name }) : await joinWithoutDaemon(dataDir, code, o.name)
      } catch (err) {
        const c = (err as { code?: string }).code ?? ''
        if (PAIRING_CODES.has(c)) throw new NodeError('REFUSED', `join refused (${c}): ${(err as Error).message}`)
        throw err
      }
      if (o.json === true) return out(JSON.stringify(r))
      out(`joined mesh ${r.name} (${r.meshId}) as ${r.host} through ${r.inviter}`)
      if (!r.named) out(`the inviter runs a release from before host names: the admission does not carry "${r.host}", so members show this host by its id`)
      out(r.admitted ? 'admitted: this host is a member' : 'paired; the admit entry has not reached this host yet (it will on the next sync)')
    })

  program.command('grant')
    .description('change a member\'s role or tags (admins only)')
    .argument('<host>', 'the member: its name, peer id or a unique id prefix')
    .option('--role <role>', 'admin or host')
    .option('--tag <tag>', 'the member\'s tags from now on (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action(async (peer: string, o: { role?: string, tag?: string[], json?: boolean }) => {
      const role = o.role === undefined ? undefined : parseChoice('--role', o.role, ROLES, 'a role')
      const r = await (await client()).post<{ peer: string, role?: string, tags?: string[] }>('/v1/grant', { peer, role, tags: o.tag?.map(parseTag) })
      if (o.json === true) return out(JSON.stringify(r))
      out(`granted ${r.peer}${r.role !== undefined ? ` role ${r.role}` : ''}${r.tags !== undefined ? ` tags ${r.tags.join(',') || '(none)'}` : ''}`)
    })

  program.command('revoke')
    .description('revoke a member (admins only); every host disconnects it')
    .argument('<host>', 'the member: its name, peer id or a unique id prefix')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(async (peer: string, o: { reason?: string, json?: boolean }) => {
      const r = await (await client()).post<{ peer: string, after: number }>('/v1/revoke', { peer, reason: o.reason })
      if (o.json === true) return out(JSON.stringify(r))
      out(`revoked ${r.peer} (its entries after seq ${r.after} carry no authority)`)
    })

  registerAuditCommands(program, () => globals().dataDir, client)
  registerDeployCommands(program, client)
  registerHoldCommands(program, client)
  registerRoomCommands(program, client)
  registerDriftCommands(program, client)
  registerAgentCommands(program, client)
  registerUiCommand(program, () => globals().dataDir, client)

  program.command('config')
    .description('validate a config file without starting anything')
    .command('check')
    .description('check FILE, or the config this host would run on (--config, FLEETMESH_CONFIG, the data dir\'s, /etc/fleetmesh); exit 0 valid, 2 invalid')
    .argument('[file]', 'the config file to check')
    .action(async (file: string | undefined) => {
      const { findConfig, parseConfig } = await import('./config-file.js')
      const found = file !== undefined ? { path: file, text: await readFile(file, 'utf8').catch((err: unknown) => usage(fileErrorLine(err) ?? (err as Error).message)) } : await findConfig(globals().dataDir)
      parseConfig(found.path, found.text)
      out(`ok: ${found.path}`)
    })

  program.command('completion')
    .description('print a shell completion script: eval "$(fleetmesh completion bash)"')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => { out(completionScript(program, parseChoice('completion', shell, SHELLS, 'a shell'))) })

  return program
}

export async function main (argv: string[]): Promise<number> {
  const program = buildCli()
  try {
    await program.parseAsync(argv, { from: 'user' })
    // Commands that ran but were refused (an apply that rolled back) set the code themselves.
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander prints its own parse errors (and help) before it throws; the usage errors our
      // actions throw it does not, and exitOverride hands them here: they were lost.
      if (err.code.startsWith('commander.')) return err.exitCode === 0 ? 0 : 2
      process.stderr.write(`fleetmesh: ${err.message}\n`)
      return err.exitCode
    }
    const code = (err as { code?: string }).code ?? ''
    process.stderr.write(`fleetmesh: ${fileErrorLine(err) ?? (err as Error).message}\n`)
    return EXIT[code] ?? 1
  }
}

const code = await main(process.argv.slice(2))
// process.exit() drops what a pipe has not taken yet, silently cutting the end of a long
// `audit log --json`: exit once what was written to stdout and stderr has been handed over.
for (const stream of [process.stdout, process.stderr]) await new Promise<void>((resolve) => { stream.write('', () => { resolve() }) })
process.exit(code)
