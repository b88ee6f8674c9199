// `fleetmesh pin|unpin|pins`, `fleetmesh quarantine add|clear|list` and `fleetmesh release-floor`: admin-signed holds that
// every host's rollout decisions read (protocols/rollout/holds.ts). Every command talks to the
// running daemon, which signs the entry into its own feed.
import type { Command } from 'commander'
import type { ControlClient } from '../client.js'
import { rowLabels } from '../host-names.js'
import type { MemberRow } from '../routes.js'
import { parseCount, parseDuration, usage } from '../cli-parse.js'
import { STORE_PATH_RE } from '../../crypto/ids.js'
import type { PinBody, PinStatus, QuarantineBody, QuarantineStatus, ReleaseFloorBody } from '../../protocols/rollout/index.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }

function storePath (flag: string, text: string): string {
  if (!STORE_PATH_RE.test(text)) usage(`${flag}: "${text}" is not a store path (/nix/store/<hash>-<name>)`)
  return text
}

function ago (ms: number): string {
  const d = ms / 86_400_000
  return d >= 1 && Number.isInteger(d) ? `${d}d` : `${Math.round(ms / 1000)} s`
}

export function registerHoldCommands (program: Command, client: () => Promise<ControlClient>): void {
  program.command('pin')
    .description('hold a host on its generation: every release skips it and counts it "pinned" (admins only)')
    .argument('<host>', 'the host: its name, peer id or a unique id prefix')
    .requiredOption('--path <storePath>', 'the generation it holds (releases to this same path still apply)')
    .requiredOption('--reason <text>', 'why, shown in status')
    .option('--expires <duration>', 'the host lifts the pin itself after this long on its own clock (e.g. 7d)')
    .option('--json', 'machine-readable output')
    .action(async (host: string, o: { path: string, reason: string, expires?: string, json?: boolean }) => {
      const expiresMs = o.expires !== undefined ? parseDuration('--expires', o.expires) : undefined
      if (expiresMs === 0) usage('--expires must be longer than 0')
      const body = await (await client()).post<PinBody>('/v1/pins', { host, path: storePath('--path', o.path), reason: o.reason, ...(expiresMs !== undefined ? { expiresMs } : {}) })
      if (o.json === true) return out(JSON.stringify(body))
      out(`pinned ${body.host} to ${body.path}${body.expiresMs !== undefined ? ` for ${ago(body.expiresMs)}` : ''}; every host honours it as the entry reaches it`)
    })

  program.command('unpin')
    .description('lift every pin of a host (admins only)')
    .argument('<host>', 'the host: its name, peer id or a unique id prefix')
    .option('--json', 'machine-readable output')
    .action(async (host: string, o: { json?: boolean }) => {
      const r = await (await client()).delete<{ host: string, lifts: string[] }>(`/v1/pins/${encodeURIComponent(host)}`)
      if (o.json === true) return out(JSON.stringify(r))
      out(`unpinned ${r.host} (lifts ${r.lifts.join(', ')})`)
    })

  program.command('pins')
    .description('hosts pinned now')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const c = await client()
      const r = await c.get<{ pins: PinStatus[] }>('/v1/pins')
      if (o.json === true) return out(JSON.stringify(r))
      if (r.pins.length === 0) return out('no pins')
      const labels = rowLabels(await c.get<MemberRow[]>('/v1/members'))
      for (const p of r.pins) out(`${labels.get(p.host) ?? p.host}  ${p.host}  ${p.path}  by ${labels.get(p.by) ?? p.by}${p.expiresMs !== undefined ? `  expires ${ago(p.expiresMs)} after the host saw it` : ''}  ${p.reason}`)
    })

  const quarantine = program.command('quarantine')
    .description('store paths no host applies in any release until cleared')
  quarantine.command('add')
    .description('quarantine a store path by hand (admins only)')
    .argument('<path>', 'store path')
    .requiredOption('--reason <text>', 'why, shown in status')
    .option('--json', 'machine-readable output')
    .action(async (path: string, o: { reason: string, json?: boolean }) => {
      const body = await (await client()).post<QuarantineBody>('/v1/quarantine', { path: storePath('path', path), reason: o.reason })
      if (o.json === true) return out(JSON.stringify(body))
      out(`quarantined ${body.path}; every host refuses it as the entry reaches it`)
    })
  quarantine.command('clear')
    .description('lift a path\'s quarantine: by hand or by failures after activation (admins only)')
    .argument('<path>', 'store path')
    .option('--json', 'machine-readable output')
    .action(async (path: string, o: { json?: boolean }) => {
      const r = await (await client()).delete<{ path: string, clears: string[] }>('/v1/quarantine', { path: storePath('path', path) })
      if (o.json === true) return out(JSON.stringify(r))
      out(`cleared ${r.path} (lifts ${r.clears.join(', ')})`)
    })
  quarantine.command('list')
    .description('paths quarantined now, and why')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const r = await (await client()).get<{ quarantined: QuarantineStatus[] }>('/v1/quarantine')
      if (o.json === true) return out(JSON.stringify(r))
      if (r.quarantined.length === 0) return out('nothing quarantined')
      for (const q of r.quarantined) out(`${q.path}  ${q.reasons.join('; ')}`)
    })

  program.command('release-floor')
    .description('show the release floor, or raise it: every host refuses releases numbered below it (admins only)')
    .argument('[number]', 'the new floor: releases numbered below it are refused')
    .option('--reason <text>', 'why, shown in status (required to set a floor)')
    .option('--json', 'machine-readable output')
    .action(async (number: string | undefined, o: { reason?: string, json?: boolean }) => {
      const c = await client()
      if (number === undefined) {
        const r = await c.get<{ floor: { number: number, reason: string, by: string } | null }>('/v1/release-floor')
        if (o.json === true) return out(JSON.stringify(r))
        return out(r.floor === null ? 'no release floor' : `releases below #${r.floor.number} are refused (set by ${r.floor.by}: ${r.floor.reason})`)
      }
      const n = parseCount('release-floor', number, 1)
      if (o.reason === undefined) usage('release-floor: --reason is required to set a floor')
      const body = await c.post<ReleaseFloorBody>('/v1/release-floor', { number: n, reason: o.reason })
      if (o.json === true) return out(JSON.stringify(body))
      out(`release floor #${body.number} signed; every host refuses releases numbered below it as the entry reaches it`)
    })
}
