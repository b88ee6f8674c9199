// The flags of `release publish`, which `release plan` takes too (one parser for both): targets,
// sources, waves and their gates (per wave too), the quarantine threshold, freshness windows,
// ordering edges and the disruption budget. Each refuses what it cannot read with a usage error
// (exit 2). Waves are numbered from 1 in flags, as people count them; bodies keep 0-based indexes.
import type { Command } from 'commander'
import { MAX_CONFIRM_WINDOW_MS, MAX_FRESH_FOR_MS, MIN_FRESH_FOR_MS, parseReleaseId, type Budget, type Gate, type ReleaseBody, type Wave } from '../../protocols/rollout/index.js'
import { STORE_PATH_RE, TAG_RE } from '../../crypto/ids.js'
import { collect, parseCount, parseDuration, parsePercentOrCount, usage } from '../cli-parse.js'
import { PEERS_SOURCE } from './sources.js'
import type { PublishParams } from './releases.js'

export const DEFAULT_GATE = 'healthy=100%,soak=0s'

/** Nix store URL schemes a substituter can have (`nix help-stores`). */
const STORE_SCHEMES = ['http:', 'https:', 'file:', 's3:', 'gs:', 'ssh:', 'ssh-ng:', 'daemon:', 'local:', 'unix:']

export function parseSource (text: string): string {
  if (text === PEERS_SOURCE || (URL.canParse(text) && STORE_SCHEMES.includes(new URL(text).protocol))) return text
  usage(`--source: "${text}" is neither a substituter URL (https://cache.example.org, s3://bucket, ssh://host, file:///path) nor "${PEERS_SOURCE}"`)
}

export function parseStorePath (flag: string, text: string): string {
  if (!STORE_PATH_RE.test(text)) usage(`${flag}: "${text}" is not a Nix store path; write /nix/store/HASH-NAME (what "nix build --print-out-paths" prints)`)
  return text
}

/** `--gate healthy=100%,soak=30s` */
export function parseGate (text: string): Wave['gate'] {
  const gate = { healthy: 100, soakMs: 0 }
  for (const part of text.split(',')) {
    const [k, v] = part.split('=')
    if (k === 'healthy' && v !== undefined && /^\d+%?$/.test(v)) gate.healthy = Number(v.replace('%', ''))
    else if (k === 'soak' && v !== undefined) gate.soakMs = parseDuration('--gate soak', v)
    else usage(`--gate: cannot read "${part}"; write healthy=N%,soak=DURATION (e.g. healthy=90%,soak=5m)`)
  }
  if (gate.healthy > 100) usage(`--gate: healthy=${gate.healthy}% is more than 100%`)
  return gate
}

/** `--waves 1,25%,100%` or `tag:canary,50%,100%` or `host:ID,...`: each wave's selector. */
export function parseWaves (text: string, gate: Wave['gate'], waitOfflineMs?: number): Wave[] {
  return text.split(',').map((w) => {
    const base = { gate, ...(waitOfflineMs !== undefined ? { waitOfflineMs } : {}) }
    if (/^\d+%?$/.test(w)) return { ...base, ...parsePercentOrCount('--waves', w) }
    if (/^tag:./.test(w)) return { ...base, tag: w.slice(4) }
    if (/^host:[^+]+(\+[^+]+)*$/.test(w)) return { ...base, hosts: w.slice(5).split('+') }
    usage(`--waves: cannot read "${w}"; write a comma-separated list of N (hosts), N% (of the fleet, cumulative), tag:T or host:ID+ID (e.g. 1,25%,100%)`)
  })
}

/** `--target tag:web=/nix/store/…` / `host:ID=/nix/store/…`; or --tag/--host with --path. */
export function parseTargets (o: { target?: string[], tag?: string, host?: string, path?: string }, sources: string[]): ReleaseBody['targets'] {
  const targets: ReleaseBody['targets'] = []
  for (const t of o.target ?? []) {
    const m = /^(tag|host):([^=]+)=(\/nix\/store\/\S+)$/.exec(t)
    if (m === null) usage(`--target: cannot read "${t}"; write tag:T=/nix/store/… or host:ID=/nix/store/…`)
    targets.push({ [m[1]]: m[2], path: parseStorePath('--target', m[3]), sources })
  }
  if (o.path !== undefined) {
    if (o.tag !== undefined && o.host !== undefined) usage('--tag and --host together: publish one target per selector with --target')
    targets.push({ ...(o.tag !== undefined ? { tag: o.tag } : {}), ...(o.host !== undefined ? { host: o.host } : {}), path: parseStorePath('--path', o.path), sources })
  } else if (o.tag !== undefined || o.host !== undefined) usage(`--${o.tag !== undefined ? 'tag' : 'host'} needs --path: the generation those hosts get`)
  if (targets.length === 0) usage('name what to deploy: --path /nix/store/… (with --tag T or --host ID), or --target tag:T=/nix/store/… (repeatable)')
  return targets
}

const PER_WAVE = /^(\d+):(.*)$/

/** The `--gate` without a wave number: every wave without its own gate gets it. */
export function defaultGate (texts: string[] | undefined): string {
  const plain = (texts ?? []).filter((t) => !PER_WAVE.test(t))
  if (plain.length > 1) usage(`--gate: ${plain.length} gates without a wave number; give one default and N:… for wave N`)
  return plain[0] ?? DEFAULT_GATE
}

/**
 * A wave number as people write it (1 is the first wave, as `release status` shows them) → the
 * 0-based index the release body and JSON use.
 */
function waveIndex (flag: string, text: string, t: string, waves: number): number {
  const n = Number(text)
  if (n === 0) usage(`${flag} ${t}: waves are numbered from 1 (wave 1 is the first, the canary); write ${flag} 1:… for it`)
  if (n > waves) usage(`${flag} ${t}: there is no wave ${n}; the waves are numbered 1 to ${waves}`)
  return n - 1
}

/** `--gate N:healthy=…,soak=…` replaces the gate of wave N (1 is the first wave). */
export function withWaveGates (waves: Wave[], texts: string[] | undefined, parseGate: (text: string) => Gate): Wave[] {
  const own = new Map<number, Gate>()
  for (const t of texts ?? []) {
    const m = PER_WAVE.exec(t)
    if (m === null) continue
    const n = waveIndex('--gate', m[1], t, waves.length)
    if (own.has(n)) usage(`--gate: wave ${n + 1} has two gates`)
    own.set(n, parseGate(m[2]))
  }
  return waves.map((w, i) => own.has(i) ? { ...w, gate: own.get(i) as Gate } : w)
}

/** `--fresh-for 7d`: hosts that first decide on the release later than this after it was signed refuse it. */
export function parseFreshFor (text: string): number {
  const ms = parseDuration('--fresh-for', text)
  if (ms < MIN_FRESH_FOR_MS) usage(`--fresh-for: ${text} is shorter than ${MIN_FRESH_FOR_MS / 60_000}m, twice the clock skew the mesh tolerates; write e.g. --fresh-for 7d`)
  if (ms > MAX_FRESH_FOR_MS) usage(`--fresh-for: ${text} is longer than ten years`)
  return ms
}

/** `--max-in-flight 2` or `10%` (of the release's hosts, rounded up). */
export function parseMaxInFlight (text: string): Budget {
  const v = parsePercentOrCount('--max-in-flight', text)
  if ('count' in v) {
    if (v.count < 1) usage('--max-in-flight: must be at least 1 host, or a percentage like 10%')
    return { maxInFlight: v.count }
  }
  if (v.percent < 1) usage('--max-in-flight: must be at least 1%')
  return { maxInFlightPercent: v.percent }
}

function isReleaseId (text: string): boolean {
  try {
    parseReleaseId(text)
    return true
  } catch {
    return false
  }
}

const WAVE_EDGE = /^(?:(\d+):)?tag:(.*)$/

/**
 * `--after RELEASE` (at most one: the release waits until RELEASE is complete), `--after tag:T`
 * (in every wave, hosts without tag T wait until every T host of this release is healthy) and
 * `--after N:tag:T` (in wave N only; 1 is the first wave).
 */
export function withEdges (waves: Wave[], texts: string[] | undefined): { waves: Wave[], after?: string } {
  const own = new Map<number, string>()
  let every: string | undefined
  let after: string | undefined
  for (const t of texts ?? []) {
    const m = WAVE_EDGE.exec(t)
    if (m === null) {
      if (after !== undefined) usage(`--after: a release waits for one release; "${after}" and "${t}" are two`)
      if (!isReleaseId(t)) usage(`--after: "${t}" is neither a release id (as "release list" shows) nor tag:T or N:tag:T`)
      after = t
      continue
    }
    if (!TAG_RE.test(m[2])) usage(`--after ${t}: "${m[2]}" is not a tag`)
    if (m[1] === undefined) {
      if (every !== undefined) usage('--after: give one tag:T for every wave, and N:tag:T for wave N')
      every = m[2]
      continue
    }
    const n = waveIndex('--after', m[1], t, waves.length)
    if (own.has(n)) usage(`--after: wave ${n + 1} has two edges`)
    own.set(n, m[2])
  }
  const tagOf = (i: number): string | undefined => own.get(i) ?? every
  return { waves: waves.map((w, i) => tagOf(i) !== undefined ? { ...w, after: { tag: tagOf(i) as string } } : w), ...(after !== undefined ? { after } : {}) }
}

export interface SafetyFlags { freshFor?: string, after?: string[], maxInFlight?: string }

/** The waves with their edges, and the release fields of --fresh-for, --after RELEASE and --max-in-flight. */
export function safetyFlags (waves: Wave[], o: SafetyFlags): { waves: Wave[], after?: string, freshForMs?: number, budget?: Budget } {
  return {
    ...withEdges(waves, o.after),
    ...(o.freshFor !== undefined ? { freshForMs: parseFreshFor(o.freshFor) } : {}),
    ...(o.maxInFlight !== undefined ? { budget: parseMaxInFlight(o.maxInFlight) } : {})
  }
}

export interface PublishOptions extends SafetyFlags {
  path?: string
  tag?: string
  host?: string
  target?: string[]
  source?: string[]
  waves: string
  gate?: string[]
  quarantineAfter?: string
  maxFailures: string
  waitOffline?: string
  applyDeadline?: string
  autoRevert?: boolean
  reboot?: boolean
  confirmWindow?: string
  json?: boolean
}

/** Adds the flags of a release to `cmd` (`release publish`, `release plan`). */
export function publishOptions (cmd: Command): Command {
  return cmd
    .option('--path <storePath>', 'the generation to deploy')
    .option('--tag <tag>', 'deploy to hosts with this tag (with --path)')
    .option('--host <host>', 'deploy to this host, by name, peer id or a unique prefix of one, as every command takes a host (with --path)')
    .option('--target <sel=path>', 'tag:T=/nix/store/… or host:H=/nix/store/…, H a name, peer id or unique prefix (repeatable)', collect)
    .option('--source <url>', 'substituter URL, or "peers" (repeatable; default peers)', collect)
    .option('--waves <list>', 'wave selectors: N hosts, N% cumulative, tag:T, host:H+H (hosts by name, peer id or unique prefix)', '1,100%')
    .option('--gate <gate>', 'gate of every wave: healthy=N%,soak=DURATION (default healthy=100%,soak=0s); N:healthy=…,soak=… for wave N only, wave 1 being the first (repeatable)', collect)
    .option('--max-failures <n>', 'hosts that may fail before the release halts', '0')
    .option('--wait-offline <duration>', 'after this long, hosts that said nothing leave a wave\'s gate')
    .option('--apply-deadline <duration>', 'a host whose apply has no outcome this long after it started counts as failed (default 30m)')
    .option('--auto-revert', 'hosts that applied a halted release revert by themselves')
    .option('--quarantine-after <n>', 'a path that fails after activation on this many hosts is refused fleet-wide until cleared (default 1)')
    .option('--fresh-for <duration>', 'a host that first learns of the release later than this after it was signed refuses it (at least 10m; e.g. 7d)')
    .option('--after <release|tag:T|N:tag:T>', 'wait until release RELEASE is complete; tag:T: in every wave (N:tag:T: in wave N, 1 the first) hosts without tag T wait until every T host of this release is healthy (repeatable)', collect)
    .option('--max-in-flight <N|P%>', 'at most N hosts (or P% of its hosts) of this release applying or soaking at once')
    .option('--reboot', 'hosts whose new generation changes the kernel, initrd or systemd reboot into it by themselves (default: staged for the next boot, pending until then)')
    .option('--confirm-window <duration>', 'after activating, a host that sees no member hold its outcome within this long rolls back by itself (0s: off; default the host\'s deploy.confirmWindowMs)')
}

/** `--confirm-window 2m`; 0s turns confirm-or-revert off for the release. */
export function parseConfirmWindow (text: string): number {
  const ms = parseDuration('--confirm-window', text)
  if (ms > MAX_CONFIRM_WINDOW_MS) usage(`--confirm-window: ${text} is longer than ${MAX_CONFIRM_WINDOW_MS / 60_000}m`)
  return ms
}

/** The release a command's flags describe, as the daemon takes it. */
export function publishParams (o: PublishOptions): PublishParams {
  const sources = (o.source ?? [PEERS_SOURCE]).map(parseSource)
  const gate = parseGate(defaultGate(o.gate))
  const { waves, ...safety } = safetyFlags(withWaveGates(parseWaves(o.waves, gate, o.waitOffline !== undefined ? parseDuration('--wait-offline', o.waitOffline) : undefined), o.gate, parseGate), o)
  const maxFailures = parseCount('--max-failures', o.maxFailures, 0)
  const applyDeadlineMs = o.applyDeadline !== undefined ? parseDuration('--apply-deadline', o.applyDeadline) : undefined
  if (applyDeadlineMs === 0) usage('--apply-deadline: must be longer than 0 (e.g. 30m)')
  return {
    targets: parseTargets(o, sources),
    waves,
    maxFailures,
    autoRevert: o.autoRevert === true,
    ...(o.reboot === true ? { reboot: true } : {}),
    ...(o.confirmWindow !== undefined ? { confirmWindowMs: parseConfirmWindow(o.confirmWindow) } : {}),
    ...(applyDeadlineMs !== undefined ? { applyDeadlineMs } : {}),
    ...(o.quarantineAfter !== undefined ? { quarantineAfter: parseCount('--quarantine-after', o.quarantineAfter, 1) } : {}),
    ...safety
  }
}
