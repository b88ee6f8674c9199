// `fleetmesh release status`: per wave and per host, where a release stands. The rendering is pure
// (a status in, lines out; two statuses in, the lines of what changed) so that the terminal modes
// are tested without a terminal: `--watch` on a terminal redraws the block in place, elsewhere (a
// pipe, a CI log, TERM=dumb) it prints the block once and then one line per change.
// Waves are numbered from 1 here as everywhere people read them; --json keeps the 0-based index.
import type { Command } from 'commander'
import type { ControlClient } from '../client.js'
import type { MemberRow } from '../routes.js'
import { hostLabels, shortId } from '../host-names.js'
import { watchExitCode, type ReleaseStatus } from '../../protocols/rollout/index.js'

const POLL_MS = 1000

/** How a host is shown: its name when it has one, else a short id (node/host-names.ts). */
export type HostLabel = (peer: string) => string

/** Labels from GET /v1/members rows; a host that is no member (any more) by its short id. */
export function labelsOf (members: ReadonlyArray<{ peerId: string, name?: string | null }>): HostLabel {
  const labels = hostLabels(members.map((m) => ({ peer: m.peerId, ...(m.name != null ? { name: m.name } : {}) })))
  return (peer) => labels.get(peer) ?? shortId(peer)
}

const SGR: Record<string, string> = {
  healthy: '32', done: '32',
  applying: '33', soaking: '33', confirming: '33', rolling: '33', paused: '33',
  'pending-reboot': '34',
  failed: '31', unhealthy: '31', halted: '31', aborted: '31', refused: '31',
  offline: '90', silent: '90', 'moved-on': '90', accepted: '90', stale: '90', superseded: '90',
  pinned: '36',
  'quarantined-refused': '35'
}

/** `text` in the colour of `state` (none for a state without one, e.g. pending). */
function paint (colour: boolean, state: string, text: string): string {
  const code = SGR[state]
  return colour && code !== undefined ? `\x1b[${code}m${text}\x1b[0m` : text
}

function bar (done: number, failed: number, total: number, width = 24): string {
  if (total === 0) return '[' + ' '.repeat(width) + ']'
  const ok = Math.round(done / total * width)
  const bad = Math.min(width - ok, Math.round(failed / total * width))
  return '[' + '#'.repeat(ok) + 'x'.repeat(bad) + '.'.repeat(width - ok - bad) + ']'
}

export interface RenderOptions { label?: HostLabel, colour?: boolean }

/** The status block: the release, each wave with its hosts and their states, what holds it. */
export function renderRelease (s: ReleaseStatus, o: RenderOptions = {}): string[] {
  const label = o.label ?? shortId
  const colour = o.colour === true
  const lines = [`release ${s.id} #${s.number}  ${paint(colour, s.state, s.state.toUpperCase())}${s.reason !== undefined ? `: ${s.reason}` : ''}`,
    `  signed by ${label(s.signer)}; failures ${s.failed}/${s.maxFailures} allowed`]
  const width = Math.max(0, ...s.waves.flatMap((w) => w.hostStates.map((h) => label(h.host).length)))
  for (const w of s.waves) {
    lines.push(`  wave ${w.index + 1} ${bar(w.healthy, w.failed, w.hosts)} ${w.healthy}/${w.hosts} healthy  ${w.applying} applying  ${w.pending} pending  ${w.failed} failed  ${w.offline} offline  gate ${w.gateMet ? 'met' : `needs ${w.need}`}${w.waits !== undefined && !w.gateMet ? `  (${w.waits})` : ''}`)
    for (const h of w.hostStates) {
      lines.push(`    ${label(h.host).padEnd(width)}  ${paint(colour, h.state, h.state)}${h.superseded === true ? paint(colour, 'superseded', ' (superseded by a newer release)') : ''}`)
    }
  }
  if (s.unassigned.length > 0) lines.push(`  not in any wave: ${s.unassigned.map(label).join(', ')}`)
  if (s.pinnedHosts.length > 0) lines.push(`  pinned (skipped, neither pending nor failed): ${s.pinnedHosts.map(label).join(', ')}`)
  if (s.quarantinedPaths.length > 0) lines.push(`  quarantined (refused by every host until cleared): ${s.quarantinedPaths.join(', ')}`)
  if (s.budget !== undefined) lines.push(`  in flight ${s.budget.inFlight} of at most ${s.budget.max} at once (--max-in-flight)`)
  for (const b of s.budgets ?? []) lines.push(`  budget ${b.selector}: ${b.inFlight.length} of at most ${b.max} in flight${b.inFlight.length > 0 ? ` (${b.inFlight.map(label).join(', ')})` : ''}`)
  if (s.staleHosts.length > 0) lines.push(`  stale (learned of it after its freshness window and refused it, neither pending nor failed): ${s.staleHosts.map(label).join(', ')}`)
  return lines
}

const hostWord = (h: { state: string, superseded?: true }): string => h.state + (h.superseded === true ? ' (superseded)' : '')

/** What changed from `prev` to `next`, one line each (without a time): per wave its hosts then its gate, then the release's state. */
export function releaseChanges (prev: ReleaseStatus, next: ReleaseStatus, label: HostLabel = shortId): string[] {
  const lines: string[] = []
  const before = new Map(prev.waves.flatMap((w) => w.hostStates.map((h) => [h.host, { wave: w.index, word: hostWord(h) }] as const)))
  for (const w of next.waves) {
    for (const h of w.hostStates) {
      const was = before.get(h.host)
      const now = hostWord(h)
      if (was === undefined) lines.push(`${label(h.host)} wave ${w.index + 1} ${now}`)
      else if (was.word !== now || was.wave !== w.index) lines.push(`${label(h.host)} wave ${w.index + 1} ${was.word} → ${now}`)
    }
    const old = prev.waves[w.index]
    if (old !== undefined && old.gateMet !== w.gateMet) lines.push(`wave ${w.index + 1} gate ${w.gateMet ? 'met' : `no longer met (needs ${w.need})`}`)
  }
  if (prev.state !== next.state) lines.push(`release ${next.id} ${prev.state} → ${next.state}${next.reason !== undefined ? `: ${next.reason}` : ''}`)
  return lines
}

/**
 * What a terminal is sent to replace the `drawn` lines last written (cursor at the line after
 * them) with `lines`: up to the first of them, clear to the end of the screen, write.
 */
export function redraw (drawn: number, lines: string[]): string {
  return (drawn > 0 ? `\x1b[${drawn}F\x1b[J` : '') + lines.map((l) => l + '\n').join('')
}

/** How a watch writes: redraw in place on a terminal that can, else lines of changes. */
export interface Terminal { tty: boolean, colour: boolean }
export function terminalOf (stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Terminal {
  const tty = stream.isTTY === true && env.TERM !== 'dumb'
  return { tty, colour: tty && (env.NO_COLOR ?? '') === '' }
}

const clock = (): string => new Date().toTimeString().slice(0, 8)
const write = (text: string): void => { process.stdout.write(text) }

async function watchRelease (c: ControlClient, id: string, json: boolean): Promise<void> {
  const term = terminalOf(process.stdout, process.env)
  let prev: ReleaseStatus | undefined
  let prevText = ''
  let drawn = 0
  for (;;) {
    const [s, members] = await Promise.all([c.get<ReleaseStatus>(`/v1/releases/${encodeURIComponent(id)}`), c.get<MemberRow[]>('/v1/members')])
    const label = labelsOf(members)
    if (json) {
      const text = JSON.stringify(s)
      if (text !== prevText) write(text + '\n')
      prevText = text
    } else if (term.tty) {
      const lines = renderRelease(s, { label, colour: term.colour })
      const text = lines.join('\n')
      if (text !== prevText) { write(redraw(drawn, lines)); drawn = lines.length }
      prevText = text
    } else if (prev === undefined) {
      write(renderRelease(s, { label }).map((l) => l + '\n').join(''))
    } else {
      const at = clock()
      for (const l of releaseChanges(prev, s, label)) write(`${at} ${l}\n`)
    }
    prev = s
    const code = watchExitCode(s.state)
    if (code !== undefined) { process.exitCode = code; return }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

export function registerStatusCommand (release: Command, client: () => Promise<ControlClient>): void {
  release.command('status')
    .description('per wave and per host: pending, applying, healthy, failed, offline, pinned…; why a wave waits')
    .argument('[id]', 'release id (default: the newest)')
    .option('--watch', 'follow it until the release ends; exit 0 only when done (6 halted, 7 aborted or refused, 8 superseded)')
    .option('--json', 'machine-readable output (waves keep their 0-based index)')
    .addHelpText('after', `
Waves are numbered from 1 (wave 1 is the first, the canary). With --watch the command keeps
waiting while the release rolls, is paused or soaks, and exits 0 only on DONE: 6 HALTED,
7 ABORTED, 8 SUPERSEDED (every host of it taken over by newer releases), so a CI job can gate on it.
On a terminal --watch redraws in place, in colour unless NO_COLOR is set; elsewhere (a pipe, a
log, TERM=dumb) it prints the status once, then one line per change:
  12:03:04 web-3 wave 2 applying → healthy
With --json it prints the status again only when it changed.`)
    .action(async (id: string | undefined, o: { watch?: boolean, json?: boolean }) => {
      const c = await client()
      const rid = id ?? (await c.get<{ releases: ReleaseStatus[] }>('/v1/releases')).releases[0]?.id
      if (rid === undefined) { write('no releases\n'); return }
      if (o.watch === true) return await watchRelease(c, rid, o.json === true)
      const [s, members] = await Promise.all([c.get<ReleaseStatus>(`/v1/releases/${encodeURIComponent(rid)}`), c.get<MemberRow[]>('/v1/members')])
      if (o.json === true) { write(JSON.stringify(s) + '\n'); return }
      const term = terminalOf(process.stdout, process.env)
      write(renderRelease(s, { label: labelsOf(members), colour: term.colour }).map((l) => l + '\n').join(''))
    })
}
