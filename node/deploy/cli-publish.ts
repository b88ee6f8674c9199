// Flags of `release publish` for the rollout safety features (issue 14): per-wave gates, the
// quarantine threshold, freshness windows, ordering edges and the disruption budget. Each refuses
// what it cannot read with a usage error (exit 2).
import { MAX_FRESH_FOR_MS, MIN_FRESH_FOR_MS, parseReleaseId, type Budget, type Gate, type Wave } from '../../protocols/rollout/index.js'
import { TAG_RE } from '../../crypto/ids.js'
import { parseDuration, parsePercentOrCount, usage } from '../cli-parse.js'

export const DEFAULT_GATE = 'healthy=100%,soak=0s'

const PER_WAVE = /^(\d+):(.*)$/

/** The `--gate` without a wave number: every wave without its own gate gets it. */
export function defaultGate (texts: string[] | undefined): string {
  const plain = (texts ?? []).filter((t) => !PER_WAVE.test(t))
  if (plain.length > 1) usage(`--gate: ${plain.length} gates without a wave number; give one default and N:… for wave N`)
  return plain[0] ?? DEFAULT_GATE
}

/**
 * `--gate N:healthy=…,soak=…` replaces the gate of wave N, numbered as `release status` shows
 * them (0 is the first wave).
 */
export function withWaveGates (waves: Wave[], texts: string[] | undefined, parseGate: (text: string) => Gate): Wave[] {
  const own = new Map<number, Gate>()
  for (const t of texts ?? []) {
    const m = PER_WAVE.exec(t)
    if (m === null) continue
    const n = Number(m[1])
    if (n >= waves.length) usage(`--gate ${t}: there is no wave ${n}; the waves are numbered 0 to ${waves.length - 1}`)
    if (own.has(n)) usage(`--gate: wave ${n} has two gates`)
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
 * `--after N:tag:T` (in wave N only).
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
    const n = Number(m[1])
    if (n >= waves.length) usage(`--after ${t}: there is no wave ${n}; the waves are numbered 0 to ${waves.length - 1}`)
    if (own.has(n)) usage(`--after: wave ${n} has two edges`)
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
