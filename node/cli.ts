// The operator's single entry point. Human output by default, --json on every query, and
// exit codes scripts can rely on: 0 ok, 1 failed, 2 usage, 3 daemon not running, 4 locked,
// 5 refused (pairing refused, verification failed).
// `--help` and the commands that only call the daemon load commander and the client alone: the
// node (libp2p, level, the protocols) is imported inside the actions that run it or open its store.
import { Command, CommanderError } from 'commander'
import { createReadStream, existsSync } from 'node:fs'
import { dataPaths, defaultDataDir } from './config.js'
import { ControlClient, runningDaemon } from './client.js'
import { registerRoomCommands } from './cli-rooms.js'
import { registerDeployCommands } from './deploy/cli.js'
import type { OfflineStore } from './offline.js'
import type { EntryRow, MemberRow, NodeStatus, PeerInfo } from './routes.js'
import type { InviteRow, IssuedInvite, JoinResult } from './pairing.js'
import type { VerifyAllResult } from '../protocols/audit/index.js'

const EXIT: Record<string, number> = { DAEMON_NOT_RUNNING: 3, DATA_DIR_LOCKED: 4, REFUSED: 5 }
const PAIRING_CODES = new Set(['INVITE_UNKNOWN', 'INVITE_EXPIRED', 'INVITE_REVOKED', 'WELCOME_MISMATCH', 'INVITE_USED_UP', 'PROOF_INVALID', 'WRONG_MESH', 'RATE_LIMITED', 'INVITER_NOT_ADMIN', 'INVITER_UNREACHABLE', 'INVITE_TYPO', 'INVITE_MALFORMED', 'INVITE_VERSION', 'INVITE_TOO_LARGE'])

const out = (line: string): void => { process.stdout.write(line + '\n') }

class Refused extends Error { readonly code = 'REFUSED' }

interface GlobalOpts { dataDir: string }

function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

/** `--since` takes an ISO time, epoch milliseconds, or a duration back from now (90s, 2h, 7d). */
function parseSince (text: string): number {
  const d = /^(\d+)(s|m|h|d)$/.exec(text)
  if (d !== null) return Date.now() - Number(d[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[d[2] as 's' | 'm' | 'h' | 'd']
  if (/^\d+$/.test(text)) return Number(text)
  const t = Date.parse(text)
  if (Number.isNaN(t)) throw new CommanderError(2, 'fleetmesh.since', `--since: cannot read "${text}" as a time`)
  return t
}

function short (id: string): string {
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
}

function printVerify (r: VerifyAllResult | { ok: false, entries: number, feed: string, seq: number, code: string, reason: string }, json: boolean): void {
  if (json) out(JSON.stringify(r.ok ? r : { ok: false, entries: r.entries, feed: r.feed, seq: r.seq, code: 'error' in r ? r.error.code : r.code, reason: 'error' in r ? r.error.message : r.reason }))
  else if (r.ok) out(`ok: ${r.entries} entries in ${r.feeds} feeds verify (signatures, hash links, sequence)`)
  else out(`FAILED at feed ${r.feed} seq ${r.seq}: ${'error' in r ? `${r.error.code}: ${r.error.message}` : `${r.code}: ${r.reason}`} (${r.entries} entries checked before it)`)
  if (!r.ok) throw new Refused(`audit verification failed at ${r.feed}#${r.seq}`)
}

/** With no daemon running, `join` runs the node just long enough to pair and catch up. */
async function joinWithoutDaemon (dataDir: string, code: string): Promise<JoinResult> {
  const [{ MeshNode }, { pino }] = await Promise.all([import('./mesh.js'), import('pino')])
  const node = await MeshNode.start({ dataDir, logger: pino({ level: 'warn' }, pino.destination(2)) })
  try {
    return await node.join(code)
  } finally {
    await node.stop()
  }
}

/** Runs `online` against the daemon when one answers, else `offline` on the store itself. */
async function viaDaemonOrStore<T> (dataDir: string, online: (c: ControlClient) => Promise<T>, offline: (s: OfflineStore) => Promise<T>): Promise<T> {
  const daemon = await runningDaemon(dataDir)
  if (daemon !== undefined) return online(daemon)
  const { withOfflineStore } = await import('./offline.js')
  return withOfflineStore(dataDir, offline)
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
    .option('--mesh <name>', 'found a new mesh with this host as its first admin')
    .option('--tag <tag>', 'with --mesh: a tag of the founding host (repeatable)', collect)
    .option('--listen <multiaddr>', 'listen address (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action(async (o: { mesh?: string, tag?: string[], listen?: string[], json?: boolean }) => {
      if (o.tag !== undefined && o.mesh === undefined) throw new CommanderError(2, 'fleetmesh.usage', '--tag needs --mesh (other hosts get their tags from their invite)')
      const { initHost } = await import('./init.js')
      const r = await initHost(globals().dataDir, { listen: o.listen, mesh: o.mesh, tags: o.tag })
      if (o.json === true) return out(JSON.stringify(r))
      out(`initialised ${r.dataDir}\npeer id: ${r.peerId}`)
      if (r.mesh !== null) out(`founded mesh ${r.mesh.name} (${r.mesh.id}); this host is its admin`)
    })

  program.command('start')
    .description('run the node in the foreground')
    .option('--listen <multiaddr>', 'listen address (repeatable; overrides the config)', collect)
    .option('--bootstrap <multiaddr>', 'peer to dial, with /p2p/ID (repeatable)', collect)
    .option('--health <file>', 'JSON {soakMs, checks} replacing the config\'s health checks')
    .option('--init', 'initialise the data dir first when it is not (embedded defaults)')
    .action(async (o: { listen?: string[], bootstrap?: string[], health?: string, init?: boolean }) => {
      const dataDir = globals().dataDir
      if (o.init === true && !existsSync(dataPaths(dataDir).config)) {
        const { initHost } = await import('./init.js')
        out(`initialised ${(await initHost(dataDir, {})).dataDir}`)
      }
      const { runDaemon } = await import('./daemon.js')
      await runDaemon({ dataDir, listen: o.listen, bootstrap: o.bootstrap, healthFile: o.health }, out)
    })

  program.command('status')
    .description('this host\'s identity, mesh, addresses and connections')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const s = await (await client()).get<NodeStatus>('/v1/status')
      if (o.json === true) return out(JSON.stringify(s))
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
      for (const p of peers) {
        out(`${p.peerId}  ${p.member ? 'member  ' : 'stranger'} ${p.direction.padEnd(8)} ${(p.encryption ?? '?').padEnd(26)} ${p.rttMs != null ? `${p.rttMs} ms` : ''}  ${p.addresses.join(' ')}`)
      }
    })

  program.command('members')
    .description('members of the mesh, as this host\'s copy of the log says')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const rows = await (await client()).get<MemberRow[]>('/v1/members')
      if (o.json === true) return out(JSON.stringify(rows))
      if (rows.length === 0) return out('no members (this host is not in a mesh yet)')
      for (const m of rows) {
        const seen = m.online ? 'online' : m.lastSeen !== null ? `seen ${new Date(m.lastSeen).toISOString()}` : 'offline'
        out(`${m.peerId}  ${m.role.padEnd(7)} ${(m.tags.join(',') || '-').padEnd(16)} by ${short(m.admittedBy)} ${new Date(m.admittedAt).toISOString()}  ${seen}`)
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
      const inv = await (await client()).post<IssuedInvite>('/v1/invites', { ttl: o.ttl, uses: Number(o.uses), role: o.role, tags: o.tag ?? [] })
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
    .option('--json', 'machine-readable output')
    .action(async (code: string, o: { json?: boolean }) => {
      const dataDir = globals().dataDir
      let r: JoinResult
      try {
        const daemon = await runningDaemon(dataDir)
        r = daemon !== undefined ? await daemon.post<JoinResult>('/v1/join', { code }) : await joinWithoutDaemon(dataDir, code)
      } catch (err) {
        const c = (err as { code?: string }).code ?? ''
        if (PAIRING_CODES.has(c)) throw new Refused(`join refused (${c}): ${(err as Error).message}`)
        throw err
      }
      if (o.json === true) return out(JSON.stringify(r))
      out(`joined mesh ${r.name} (${r.meshId}) through ${r.inviter}`)
      out(r.admitted ? 'admitted: this host is a member' : 'paired; the admit entry has not reached this host yet (it will on the next sync)')
    })

  program.command('grant')
    .description('change a member\'s role or tags (admins only)')
    .argument('<peer>', 'the member\'s peer id')
    .option('--role <role>', 'admin or host')
    .option('--tag <tag>', 'the member\'s tags from now on (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action(async (peer: string, o: { role?: string, tag?: string[], json?: boolean }) => {
      const r = await (await client()).post<{ peer: string, role?: string, tags?: string[] }>('/v1/grant', { peer, role: o.role, tags: o.tag })
      if (o.json === true) return out(JSON.stringify(r))
      out(`granted ${r.peer}${r.role !== undefined ? ` role ${r.role}` : ''}${r.tags !== undefined ? ` tags ${r.tags.join(',') || '(none)'}` : ''}`)
    })

  program.command('revoke')
    .description('revoke a member (admins only); every host disconnects it')
    .argument('<peer>', 'the member\'s peer id')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'machine-readable output')
    .action(async (peer: string, o: { reason?: string, json?: boolean }) => {
      const r = await (await client()).post<{ peer: string, after: number }>('/v1/revoke', { peer, reason: o.reason })
      if (o.json === true) return out(JSON.stringify(r))
      out(`revoked ${r.peer} (its entries after seq ${r.after} carry no authority)`)
    })

  const audit = program.command('audit').description('the signed, replicated audit trail')
  audit.command('log')
    .description('entries, oldest first')
    .option('--feed <peer>', 'only this author\'s feed')
    .option('--kind <kind>', 'only this kind')
    .option('--since <time>', 'ISO time, epoch ms, or a duration back (2h)')
    .option('--limit <n>', 'at most this many')
    .option('--json', 'one JSON object per line')
    .action(async (o: { feed?: string, kind?: string, since?: string, limit?: string, json?: boolean }) => {
      const since = o.since !== undefined ? parseSince(o.since) : undefined
      const rows = await viaDaemonOrStore<EntryRow[]>(globals().dataDir, async (c) => {
        const q = new URLSearchParams()
        if (o.feed !== undefined) q.set('feed', o.feed)
        if (o.kind !== undefined) q.set('kind', o.kind)
        if (since !== undefined) q.set('since', String(since))
        if (o.limit !== undefined) q.set('limit', o.limit)
        return c.get<EntryRow[]>(`/v1/audit/log?${q.toString()}`)
      }, async ({ store }) => {
        const { entryRow } = await import('./routes.js')
        const rows: EntryRow[] = []
        for await (const s of store.log({ kind: o.kind, since, limit: o.limit !== undefined ? Number(o.limit) : undefined })) {
          if (o.feed === undefined || s.entry.feed === o.feed) rows.push(entryRow(s))
        }
        return rows
      })
      for (const r of rows) {
        if (o.json === true) out(JSON.stringify(r))
        else out(`${new Date(r.ts).toISOString()}  ${short(r.feed)}#${String(r.seq).padEnd(5)} ${r.kind.padEnd(15)} ${JSON.stringify(r.body).slice(0, 120)}`)
      }
    })

  audit.command('verify')
    .description('re-check every entry: signatures, hash links, sequence; names the first bad entry')
    .option('--file <jsonl>', 'verify an export file instead of this host\'s store')
    .option('--json', 'machine-readable output')
    .action(async (o: { file?: string, json?: boolean }) => {
      if (o.file !== undefined) {
        const { verifyJsonl } = await import('../protocols/audit/index.js')
        return printVerify(await verifyJsonl(createReadStream(o.file)), o.json === true)
      }
      const r = await viaDaemonOrStore(globals().dataDir,
        async (c) => c.post<VerifyAllResult | { ok: false, entries: number, feed: string, seq: number, code: string, reason: string }>('/v1/audit/verify'),
        async ({ store }) => store.verifyAll())
      printVerify(r, o.json === true)
    })

  audit.command('checkpoint')
    .description('sign a checkpoint now (admins only; the daemon writes one every audit.checkpointIntervalMs), then drop what the history window lets go')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const r = await (await client()).post<{ number: number, feed: string, seq: number, covered: number, retained: number }>('/v1/audit/checkpoint')
      if (o.json === true) return out(JSON.stringify(r))
      out(`checkpoint ${r.number} written at ${short(r.feed)}#${r.seq}: ${r.covered} feeds covered, ${r.retained} entries retained below them`)
    })

  audit.command('export')
    .description('write every entry as JSON lines (see README: verifying an export)')
    .action(async () => {
      await viaDaemonOrStore(globals().dataDir, async (c) => {
        const res = await fetch(`${c.url}/v1/audit/export`, { headers: { authorization: `Bearer ${c.token}` } })
        if (!res.ok || res.body === null) throw new Error(`export failed: HTTP ${res.status}`)
        for await (const chunk of res.body) if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve))
      }, async ({ store }) => {
        const { exportJsonl } = await import('../protocols/audit/index.js')
        await exportJsonl(store, process.stdout)
      })
    })

  registerDeployCommands(program, client)
  registerRoomCommands(program, client)
  return program
}

export async function main (argv: string[]): Promise<number> {
  const program = buildCli()
  try {
    await program.parseAsync(argv, { from: 'user' })
    // Commands that ran but were refused (an apply that rolled back) set the code themselves.
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    const code = (err as { code?: string }).code ?? ''
    process.stderr.write(`fleetmesh: ${(err as Error).message}\n`)
    return EXIT[code] ?? 1
  }
}

const code = await main(process.argv.slice(2))
// process.exit() drops what a pipe has not taken yet, silently cutting the end of a long
// `audit log --json`: exit once what was written to stdout and stderr has been handed over.
for (const stream of [process.stdout, process.stderr]) await new Promise<void>((resolve) => { stream.write('', () => { resolve() }) })
process.exit(code)
