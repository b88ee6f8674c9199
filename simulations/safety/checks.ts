// What the safety scenario judges from the audit trail, written independently of
// protocols/rollout's folds. Cross-host order: every host of the scenario runs on this one
// machine and stamps its entries with its wall clock when it writes them (the one whose clock the
// scenario sets ahead writes none of the entries compared here), so entry timestamps share one
// clock, and a host that decided on another's entry wrote its own later. A tie in the same ms is
// read as "apart" (the lenient reading), so what is flagged is a violation under any.
import type { EntryRow } from '../../node/routes.js'
import type { PlanReport } from '../../node/deploy/plan.js'
import type { ReleaseStatus } from '../../protocols/rollout/index.js'

type Body = Record<string, unknown>
const body = (e: EntryRow): Body => e.body as Body

/** One attempt from its apply-start to what ends it in its host's feed (Infinity: still in flight). */
export interface Attempt { host: string, release: string, start: number, end: number, endKind: string }

/** What ends an attempt in the host's own feed, by feed order: its outcome (apply-ok is final with no gate soak, as every release here has), or the host's next start. */
const ENDS = new Set(['apply-ok', 'soaked', 'apply-failed', 'rollback', 'apply-start'])

export function attempts (log: EntryRow[], hosts: string[]): Attempt[] {
  const out: Attempt[] = []
  for (const host of hosts) {
    const feed = log.filter((e) => e.feed === host).sort((a, b) => a.seq - b.seq)
    feed.forEach((s, i) => {
      if (s.kind !== 'apply-start') return
      const end = feed.slice(i + 1).find((e) => ENDS.has(e.kind) || (e.kind === 'release-seen' && body(e).stale === true))
      out.push({ host, release: String(body(s).release), start: s.ts, end: end?.ts ?? Infinity, endKind: end?.kind ?? 'none' })
    })
  }
  return out
}

/** Pairs of attempts of different hosts in flight at once (each beyond a budget of 1). */
export function overlaps (att: Attempt[]): Array<[Attempt, Attempt]> {
  const out: Array<[Attempt, Attempt]> = []
  for (let i = 0; i < att.length; i++) {
    for (let j = i + 1; j < att.length; j++) {
      const [a, b] = [att[i], att[j]]
      if (a.host !== b.host && a.start < b.end && b.start < a.end) out.push([a, b])
    }
  }
  return out
}

/** Starts of `release` by hosts not in `first` that came before every `first` host's apply-ok in it (or with one missing). */
export function edgeViolations (log: EntryRow[], release: string, first: string[], then: string[]): string[] {
  const ofRelease = log.filter((e) => body(e).release === release)
  const oks = first.map((h) => ofRelease.find((e) => e.feed === h && e.kind === 'apply-ok')?.ts)
  if (oks.some((t) => t === undefined)) return [`not every host of the first group wrote apply-ok in ${release}`]
  const allHealthy = Math.max(...(oks as number[]))
  const starts = ofRelease.filter((e) => e.kind === 'apply-start' && then.includes(e.feed))
  if (starts.length === 0) return [`no host of the waiting group started ${release}`]
  return starts.filter((s) => s.ts < allHealthy).map((s) => `${s.feed} started at ${s.ts}, before the last db apply-ok at ${allHealthy}`)
}

/**
 * Where `release plan` and what then happened differ. Per host of the plan: pinned, quarantined
 * or offline at the start → it wrote no apply-start (and status names it pinned / refused);
 * held only by a budget or an edge → it started, after a host that nothing held; nothing held
 * it → it started. The waves and their hosts are the status's, and the id is the one published.
 */
export function planMismatches (plan: PlanReport, status: ReleaseStatus, log: EntryRow[], label: (peer: string) => string): string[] {
  const out: string[] = []
  if (plan.id !== status.id) out.push(`plan id ${plan.id}, published ${status.id}`)
  const hostsOf = (hs: Array<{ host: string }>): string => hs.map((h) => h.host).sort().join(',')
  if (plan.waves.length !== status.waves.length) out.push(`plan ${plan.waves.length} wave(s), status ${status.waves.length}`)
  plan.waves.forEach((w, k) => {
    if (status.waves[k] !== undefined && hostsOf(w.hosts) !== hostsOf(status.waves[k].hostStates)) out.push(`wave ${k + 1}: plan and status list other hosts`)
  })
  const startOf = (h: string): number | undefined => log.find((e) => e.feed === h && e.kind === 'apply-start' && body(e).release === status.id)?.ts
  const hosts = plan.waves.flatMap((w) => w.hosts)
  const free = hosts.filter((h) => h.holds.length === 0).map((h) => startOf(h.host)).filter((t): t is number => t !== undefined)
  const stateOf = (h: string): string | undefined => status.waves.flatMap((w) => w.hostStates).find((x) => x.host === h)?.state
  for (const h of hosts) {
    const held = (word: string): boolean => h.holds.some((x) => x.startsWith(word))
    const start = startOf(h.host)
    const who = label(h.host)
    if (held('pinned')) {
      if (start !== undefined) out.push(`${who}: planned pinned, but started`)
      if (!status.pinnedHosts.includes(h.host)) out.push(`${who}: planned pinned, status does not say pinned`)
    } else if (held('path quarantined')) {
      if (start !== undefined) out.push(`${who}: planned quarantined, but started`)
      if (stateOf(h.host) !== 'quarantined-refused') out.push(`${who}: planned quarantined, status says ${String(stateOf(h.host))}`)
    } else if (held('offline')) {
      if (start !== undefined) out.push(`${who}: planned offline, but started`)
    } else if (start === undefined) {
      out.push(`${who}: planned to start${h.holds.length > 0 ? ' once released by a budget or edge' : ''}, never started`)
    } else if (h.holds.length > 0 && !free.some((t) => t < start)) {
      out.push(`${who}: planned held (${h.holds.join('; ')}), but started before every host nothing held`)
    }
  }
  return out
}
