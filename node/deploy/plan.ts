// `release plan`, `release diff` and `release why` as the daemon answers them: the pure parts are
// protocols/rollout (preview.ts, why.ts); this module adds what only a host has — who is
// reachable, and `nix store diff-closures` over its own store: exact for this host's current
// generation, and for another host's only when this store holds both closures (else it says so
// rather than guess).
import { currentPaths, planOf, previewRelease, effectiveRelease, why, type PreviewWave, type Why } from '../../protocols/rollout/index.js'
import { NodeError } from '../errors.js'
import { draftRelease, type PublishParams, type ReleaseDesk } from './releases.js'

/** `nix store diff-closures FROM TO` summarised; `error` when it could not be computed here. */
export interface ClosureChange {
  from?: string
  to: string
  /** packages whose version or size changed (lines of diff-closures) */
  changed?: number
  /** the closure's size change in bytes (sum of the lines' deltas) */
  bytes?: number
  /** the first few changed package names */
  names?: string[]
  /** why there is no diff: no current path known, or a closure not in this store */
  note?: string
}

export interface PlanHost { host: string, path: string, holds: string[], change: ClosureChange }
export interface PlanReport { id: string, number: number, after?: string, unassigned: string[], waves: Array<Omit<PreviewWave, 'hosts'> & { hosts: PlanHost[] }> }

/** What these reports read of the host: its fold, who is reachable, and its Nix store. */
export interface PlanDeps {
  desk: Pick<ReleaseDesk, 'self' | 'state' | 'view'>
  online: (peer: string) => boolean
  /** absent without Nix: changes say so */
  nix?: {
    /** this host's current system path, from its profile */
    current: () => Promise<string | undefined>
    /** `nix store diff-closures FROM TO` (throws when a closure is not in this store) */
    diff: (from: string, to: string) => Promise<string>
  }
}

const NAMES_SHOWN = 5
const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }

/** `name: 1.0 → 2.0, +12.3 KiB` lines → how many, the size change, the first names. */
export function summariseDiff (text: string): { changed: number, bytes: number, names: string[] } {
  const lines = text.split('\n').map(l => l.trim()).filter(l => l.includes(':'))
  let bytes = 0
  for (const l of lines) {
    const m = /([+-]\d+(?:\.\d+)?) (B|KiB|MiB|GiB|TiB)\s*$/.exec(l)
    if (m !== null) bytes += Number(m[1]) * UNITS[m[2]]
  }
  return { changed: lines.length, bytes: Math.round(bytes), names: lines.slice(0, NAMES_SHOWN).map(l => l.slice(0, l.indexOf(':'))) }
}

/** One closure diff per (from, to), however many hosts share it. */
class Differ {
  private readonly memo = new Map<string, Promise<ClosureChange>>()
  constructor (private readonly nix: PlanDeps['nix']) {}

  change (from: string | undefined, to: string, unknown: string): Promise<ClosureChange> {
    if (from === undefined) return Promise.resolve({ to, note: unknown })
    if (from === to) return Promise.resolve({ from, to, changed: 0, bytes: 0, names: [] })
    const key = `${from} ${to}`
    let p = this.memo.get(key)
    if (p === undefined) {
      p = this.compute(from, to)
      this.memo.set(key, p)
    }
    return p
  }

  private async compute (from: string, to: string): Promise<ClosureChange> {
    if (this.nix === undefined) return { from, to, note: 'Nix is not installed here' }
    try {
      return { from, to, ...summariseDiff(await this.nix.diff(from, to)) }
    } catch {
      return { from, to, note: 'closure not in the local store' }
    }
  }
}

/** The current path of every host: this one's from its profile, the others' from their own outcome entries. */
async function currents (d: PlanDeps): Promise<(host: string) => string | undefined> {
  const logged = currentPaths(d.desk.state)
  const mine = await d.nix?.current().catch(() => undefined)
  return (host) => host === d.desk.self ? mine ?? logged.get(host)?.path : logged.get(host)?.path
}

/** `release plan`: the draft a publish would sign now, its waves, what holds each host and what would change on it. */
export async function planReport (d: PlanDeps, p: PublishParams): Promise<PlanReport> {
  const body = draftRelease(d.desk, p)
  const preview = previewRelease(d.desk.state, d.desk.view, body, d.online)
  const current = await currents(d)
  const differ = new Differ(d.nix)
  const waves = await Promise.all(preview.waves.map(async (w) => ({
    ...w,
    hosts: await Promise.all(w.hosts.map(async (h) => ({ ...h, change: await differ.change(current(h.host), h.path, 'no current generation known: it has applied no release yet') })))
  })))
  return { id: preview.id, number: preview.number, ...(preview.after !== undefined ? { after: preview.after } : {}), unassigned: preview.unassigned, waves }
}

export interface DiffRow { host: string, a?: string, b?: string, change?: ClosureChange }

/** `release diff A B`: per host of either plan, its path in each and, where they differ, the closure diff. */
export async function diffReport (d: PlanDeps, a: string, b: string): Promise<{ a: string, b: string, hosts: DiffRow[] }> {
  const plans = [a, b].map((id) => {
    const c = effectiveRelease(d.desk.state, d.desk.view, id)
    if (c === undefined) throw new NodeError('API_NOT_FOUND', `no release ${id}`)
    const plan = planOf(d.desk.state, c.body, d.desk.view)
    if (plan === undefined) throw new NodeError('API_NOT_FOUND', `release ${id}: this host does not hold its basis yet`)
    return plan
  })
  const differ = new Differ(d.nix)
  const hosts = [...new Set([...plans[0].targetOf.keys(), ...plans[1].targetOf.keys()])].sort()
  return {
    a,
    b,
    hosts: await Promise.all(hosts.map(async (host): Promise<DiffRow> => {
      const [pa, pb] = plans.map(p => p.targetOf.get(host)?.path)
      const row = { host, ...(pa !== undefined ? { a: pa } : {}), ...(pb !== undefined ? { b: pb } : {}) }
      if (pa === undefined || pb === undefined || pa === pb) return row
      return { ...row, change: await differ.change(pa, pb, '') }
    }))
  }
}

/** `release why ID [HOST]`: the host's decision and its reasons, from this host's log (no local timers of another host). */
export function whyReport (d: PlanDeps, release: string, host: string, now: number): Why {
  if (effectiveRelease(d.desk.state, d.desk.view, release) === undefined) throw new NodeError('API_NOT_FOUND', `no release ${release}`)
  return why(d.desk.state, d.desk.view, host, release, now)
}
