// `fleetmesh audit …`: the trail as this host holds it, read through the daemon when one runs
// and straight from the store when none does (LevelDB admits one process at a time).
import type { Command } from 'commander'
import { createReadStream } from 'node:fs'
import { didYouMean } from './config.js'
import { NodeError } from './errors.js'
import { parseCount, parseSince, readableFile, usage } from './cli-parse.js'
import { runningDaemon, type ControlClient } from './client.js'
import type { OfflineStore } from './offline.js'
import { hostLabels, resolveHost, rowHosts, shortId as short, type NamedHost } from './host-names.js'
import type { EntryRow, MemberRow } from './routes.js'
import type { VerifyAllResult } from '../protocols/audit/index.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }


function printVerify (r: VerifyAllResult | { ok: false, entries: number, feed: string, seq: number, code: string, reason: string }, json: boolean): void {
  if (json) out(JSON.stringify(r.ok ? r : { ok: false, entries: r.entries, feed: r.feed, seq: r.seq, code: 'error' in r ? r.error.code : r.code, reason: 'error' in r ? r.error.message : r.reason }))
  else if (r.ok) out(`ok: ${r.entries} entries in ${r.feeds} feeds verify (signatures, hash links, sequence)`)
  else out(`FAILED at feed ${r.feed} seq ${r.seq}: ${'error' in r ? `${r.error.code}: ${r.error.message}` : `${r.code}: ${r.reason}`} (${r.entries} entries checked before it)`)
  if (!r.ok) throw new NodeError('REFUSED', `audit verification failed at ${r.feed}#${r.seq}`)
}

/**
 * An empty answer to `--kind` may be a typo: the kinds are those this build registers and
 * those the log holds (some kinds are written without a schema), read only on this path.
 */
async function checkKind (kind: string, inLog: () => Promise<string[]>): Promise<void> {
  const { createNodeKindRegistry } = await import('./store.js')
  const registry = createNodeKindRegistry()
  if (registry.has(kind)) return
  const kinds = new Set([...registry.kinds(), ...await inLog()])
  if (kinds.has(kind)) return
  usage(`--kind: no kind "${kind}"${didYouMean(kind, kinds)}; the kinds are ${[...kinds].sort().join(', ')}`)
}

/** Runs `online` against the daemon when one answers, else `offline` on the store itself. */
async function viaDaemonOrStore<T> (dataDir: string, online: (c: ControlClient) => Promise<T>, offline: (s: OfflineStore) => Promise<T>): Promise<T> {
  const daemon = await runningDaemon(dataDir)
  if (daemon !== undefined) return online(daemon)
  const { withOfflineStore } = await import('./offline.js')
  return withOfflineStore(dataDir, offline)
}

export function registerAuditCommands (program: Command, dataDir: () => string, client: () => Promise<ControlClient>): void {
  const audit = program.command('audit').description('the signed, replicated audit trail')
  audit.command('log')
    .description('entries, oldest first')
    .option('--feed <host>', 'only this author\'s feed: its name, peer id or a unique id prefix')
    .option('--kind <kind>', 'only this kind')
    .option('--since <time>', 'ISO time, epoch ms, or a duration back (2h)')
    .option('--limit <n>', 'at most this many')
    .option('--json', 'one JSON object per line')
    .action(async (o: { feed?: string, kind?: string, since?: string, limit?: string, json?: boolean }) => {
      const since = o.since !== undefined ? parseSince('--since', o.since) : undefined
      const limit = o.limit !== undefined ? parseCount('--limit', o.limit, 1) : undefined
      // The daemon resolves --feed against its members; without one, the store's own fold does.
      const query = async (kind: string | undefined, max: number | undefined): Promise<{ rows: EntryRow[], hosts: NamedHost[] }> => viaDaemonOrStore(dataDir(), async (c) => {
        const q = new URLSearchParams()
        if (o.feed !== undefined) q.set('feed', o.feed)
        if (kind !== undefined) q.set('kind', kind)
        if (since !== undefined) q.set('since', String(since))
        if (max !== undefined) q.set('limit', String(max))
        const rows = await c.get<EntryRow[]>(`/v1/audit/log?${q.toString()}`)
        const members = o.json === true ? [] : await c.get<MemberRow[]>('/v1/members')
        return { rows, hosts: rowHosts(members) }
      }, async ({ store, meta }) => {
        const [{ entryRow }, { storedHosts }] = await Promise.all([import('./routes.js'), import('./membership.js')])
        const hosts = o.json === true && o.feed === undefined ? [] : await storedHosts(store, await meta.mesh())
        const feed = o.feed === undefined ? undefined : resolveHost(hosts, o.feed)
        const rows: EntryRow[] = []
        for await (const s of store.log({ kind, since, limit: max })) {
          if (feed === undefined || s.entry.feed === feed) rows.push(entryRow(s))
        }
        return { rows, hosts }
      })
      const { rows, hosts } = await query(o.kind, limit)
      if (rows.length === 0 && o.kind !== undefined) await checkKind(o.kind, async () => (await query(undefined, undefined)).rows.map((r) => r.kind))
      const labels = hostLabels(hosts)
      for (const r of rows) {
        if (o.json === true) out(JSON.stringify(r))
        else out(`${new Date(r.ts).toISOString()}  ${(labels.get(r.feed) ?? '-').padEnd(12)} ${short(r.feed)}#${String(r.seq).padEnd(5)} ${r.kind.padEnd(15)} ${JSON.stringify(r.body).slice(0, 120)}`)
      }
    })

  audit.command('verify')
    .description('re-check every entry: signatures, hash links, sequence; names the first bad entry')
    .option('--file <jsonl>', 'verify an export file instead of this host\'s store')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `
Exits 0 when every entry verifies, 5 naming the first that does not (or an empty file).

Examples:
  fleetmesh audit verify                              this host's copy of the trail
  fleetmesh audit export > trail.jsonl && fleetmesh audit verify --file trail.jsonl`)
    .action(async (o: { file?: string, json?: boolean }) => {
      if (o.file !== undefined) {
        await readableFile('--file', o.file)
        const { verifyJsonl } = await import('../protocols/audit/index.js')
        const r = await verifyJsonl(createReadStream(o.file))
        // Nothing verifies vacuously: an export holds at least the founder's genesis.
        if (r.ok && r.entries === 0) {
          if (o.json === true) out(JSON.stringify({ ok: false, entries: 0, code: 'EMPTY', reason: `${o.file} holds no entries` }))
          else out(`FAILED: ${o.file} holds no entries (an export holds at least the genesis)`)
          throw new NodeError('REFUSED', `${o.file} is empty: nothing to verify`)
        }
        return printVerify(r, o.json === true)
      }
      const r = await viaDaemonOrStore(dataDir(),
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
      await viaDaemonOrStore(dataDir(), async (c) => {
        const res = await fetch(`${c.url}/v1/audit/export`, { headers: { authorization: `Bearer ${c.token}` } })
        if (!res.ok || res.body === null) throw new Error(`export failed: HTTP ${res.status}`)
        for await (const chunk of res.body) if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve))
      }, async ({ store }) => {
        const { exportJsonl } = await import('../protocols/audit/index.js')
        await exportJsonl(store, process.stdout)
      })
    })

}
