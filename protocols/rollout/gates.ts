// Wave gates, evaluated incrementally. The evaluator belongs to one rollout state: per release it
// keeps each plan host's class and per-wave counts of them, fed from the fold's pending changes,
// overdue entries, accepting resumes and other releases' first outcomes, each read once with a
// cursor; so a decision costs O(new entries + waves), which is what lets a simulator run 10,000
// hosts on this same code. Nothing here reads a clock or compares a timestamp (DESIGN §8): a
// gate is met by signed attestations alone (apply-ok, and `soaked` when the gate has a soak),
// silent and overdue hosts by `overdue` entries. Which release counts is the caller's judgement:
// the evaluator is handed the candidate and the counted releases.
import { outranks } from './order.js'
import type { Plan, PlanCache } from './plan.js'
import type { Entry } from '../audit/types.js'
import type { ControlRecord, FirstOutcome, MembershipView, ReleaseCandidate, ReleaseOutcomes, Wave } from './types.js'

/** What one plan host is for its wave's gate; the first that applies, in this order. */
export const HostClass = {
  /** its failure was accepted by an admin's resume: out of the gate and the budget */
  accepted: 0,
  /** wrote apply-failed or rollback, or was declared overdue ('deadline') after it started */
  failed: 1,
  /** declared silent by an overdue entry: out of the gate for good (unless it fails), so a halt never lifts by itself */
  silent: 2,
  /** apply-ok, soaked when the gate has a soak, no failing health report since */
  healthy: 3,
  /** not healthy or failed here, and has an outcome for a newer release: out of the gate */
  movedOn: 4,
  /** has written nothing for the release */
  quiet: 5,
  /** apply-start with no outcome yet */
  applying: 6,
  /** apply-ok, its `soaked` not yet written */
  soaking: 7,
  /** a failing health report after its apply-ok */
  unhealthy: 8,
  /** has written nothing for the release and an admin's pin holds it on another path: out of the gate, neither pending nor failed */
  pinned: 9,
  /** has written nothing for the release but its verdict that it held it only after its freshness window (fresh.ts): out of the gate */
  stale: 10
} as const
export type HostClass = typeof HostClass[keyof typeof HostClass]
const CLASSES = 11
const OUT_OF_GATE: readonly HostClass[] = [HostClass.accepted, HostClass.silent, HostClass.movedOn, HostClass.pinned, HostClass.stale]

/** What the decisions read of a wave's aggregate. */
export interface WaveTally {
  readonly wave: Wave
  readonly hosts: string[]
  /** hosts per HostClass */
  readonly n: Int32Array
  /** hosts of the wave that have written something for the release: grows with every first apply-start */
  readonly started: number
}

interface WaveAgg extends WaveTally {
  started: number
}

interface ReleaseGates {
  candidate: ReleaseCandidate
  plan: Plan
  /** the view it was built under (the key changes with it) */
  membership: MembershipView
  /** the membership revision and counted releases it was built under */
  key: string | undefined
  pins: PinLookup | undefined
  stale: GateContext['stale']
  /** plan hosts of any class but quiet (most of a fresh plan's hosts: not stored, so a state costs O(hosts that spoke)) */
  cls: Map<string, HostClass>
  /** plan hosts with a counted outcome */
  spoke: Set<string>
  silent: Set<string>
  deadline: Set<string>
  accepted: Set<string>
  movedOn: Set<string>
  overdueAt: number
  controlAt: number
  firstAt: number
  waves: WaveAgg[]
}

export interface GateView {
  /** hosts the gate is judged on (accepted, silent and moved-on hosts are out) */
  counted: number
  need: number
  met: boolean
  /**
   * Too many of its hosts failed for the gate ever to be met by the hosts it is judged on (a host
   * that moved on will never be healthy here). Hosts only ever leave that set (silent, moved on)
   * one at a time, which never brings a lost gate back: a halt is sticky until a resume accepts
   * the failed hosts.
   */
  lost: boolean
}

export interface Halt { halted: boolean, reason?: string }

export interface Progress {
  plan: Plan
  waves: readonly WaveTally[]
  /** the gate of every wave */
  gates: GateView[]
  /** index of the first wave whose gate is not met (waves.length when all are): waves up to it are open */
  firstUnmet: number
  /** plan hosts failed for the release (not accepted), across its waves: the budget counts them */
  failed: number
  halt: Halt
}

/** What the evaluator is told about authority: which releases count, and a key that changes with it. */
export interface GateContext {
  membership: MembershipView
  /** counted release by id */
  releases: ReadonlyMap<string, ReleaseCandidate>
  /** changes whenever membership, the counted releases or the pins may have; undefined: rebuild on every call */
  key: string | undefined
  /** the pinned hosts, and whether a pin holds `host` off `path` (holds.ts); absent: nothing is pinned */
  pins?: PinLookup
  /** whether `host` attested that it held `release` only after its freshness window (fresh.ts); absent: none did */
  stale?: (release: string, host: string) => boolean
}

export interface PinLookup {
  hosts: () => Iterable<string>
  holds: (host: string, path: string) => boolean
}

export function secs (ms: number): string {
  return `${Math.ceil(ms / 1000)} s`
}

/** Healthy for a gate with this soak: soaked (or apply-ok for no soak), no failing health report since. */
function isHealthy (latest: Entry | undefined, health: Entry | undefined, soakMs: number): boolean {
  if (latest === undefined) return false
  const ok = (latest.kind === 'soaked' && (latest.body as { soakMs: number }).soakMs >= soakMs) || (latest.kind === 'apply-ok' && soakMs === 0)
  if (!ok) return false
  return health === undefined || health.seq < latest.seq || (health.body as { ok: boolean }).ok
}

/** Hosts of a wave that must be healthy: 0 for a 0 % gate or an empty wave, else at least one. */
function needOf (wave: Wave, counted: number): number {
  if (wave.gate.healthy === 0 || counted === 0) return 0
  return Math.max(1, Math.ceil(wave.gate.healthy * counted / 100))
}

function countedOf (n: Int32Array): number {
  let c = 0
  for (let k = 0; k < CLASSES; k++) if (!OUT_OF_GATE.includes(k as HostClass)) c += n[k]
  return c
}

export class GateEvaluator {
  private readonly releases = new Map<string, ReleaseGates>()

  /** The fold's maps, read (and the outcomes' pending changes drained) by this evaluator alone. */
  constructor (
    private readonly outcomes: ReadonlyMap<string, ReleaseOutcomes>,
    private readonly controls: ReadonlyMap<string, ControlRecord[]>,
    private readonly firstOutcomes: readonly FirstOutcome[],
    readonly plans: PlanCache
  ) {}

  /** The gates of `candidate`'s waves and whether it has halted; undefined while its plan waits for its basis. */
  progress (ctx: GateContext, candidate: ReleaseCandidate): Progress | undefined {
    const rg = this.gatesOf(ctx, candidate)
    if (rg === undefined) return undefined
    const gates: GateView[] = []
    let firstUnmet = rg.waves.length
    let failed = 0
    rg.waves.forEach((agg, j) => {
      const counted = countedOf(agg.n)
      const need = needOf(agg.wave, counted)
      const g = { counted, need, met: agg.n[HostClass.healthy] >= need, lost: counted - agg.n[HostClass.failed] < need }
      gates.push(g)
      if (!g.met && firstUnmet === rg.waves.length) firstUnmet = j
      failed += agg.n[HostClass.failed]
    })
    return { plan: rg.plan, waves: rg.waves, gates, firstUnmet, failed, halt: haltOf(rg, gates, failed) }
  }

  /** The plan hosts of wave `j` of a release that are of class `cls` now (O(wave)). */
  hostsOf (releaseId: string, j: number, cls: HostClass): string[] {
    const rg = this.releases.get(releaseId)
    return rg === undefined ? [] : rg.waves[j].hosts.filter(h => (rg.cls.get(h) ?? HostClass.quiet) === cls)
  }

  classOf (releaseId: string, host: string): HostClass | undefined {
    const rg = this.releases.get(releaseId)
    if (rg === undefined || !rg.plan.waveOf.has(host)) return undefined
    return rg.cls.get(host) ?? HostClass.quiet
  }

  private gatesOf (ctx: GateContext, candidate: ReleaseCandidate): ReleaseGates | undefined {
    const id = candidate.body.id
    const plan = this.plans.of(candidate.body, ctx.membership)
    if (plan === undefined) return undefined
    let rg = this.releases.get(id)
    if (rg === undefined || rg.candidate !== candidate || rg.plan !== plan || rg.key !== ctx.key || ctx.key === undefined) {
      rg = {
        candidate,
        plan,
        membership: ctx.membership,
        key: ctx.key,
        pins: ctx.pins,
        stale: ctx.stale,
        cls: new Map(),
        spoke: new Set(),
        silent: new Set(),
        deadline: new Set(),
        accepted: new Set(),
        movedOn: new Set(),
        overdueAt: 0,
        controlAt: 0,
        firstAt: 0,
        waves: candidate.body.waves.map((wave, i) => {
          const n = new Int32Array(CLASSES)
          n[HostClass.quiet] = plan.waves[i].length
          return { wave, hosts: plan.waves[i], n, started: 0 }
        })
      }
      this.releases.set(id, rg)
      const o = this.outcomes.get(id)
      if (o !== undefined) o.pending.length = 0
      // every plan host starts quiet; only those that wrote something can be of another class yet
      if (o !== undefined) for (const h of new Set([...o.latest.keys(), ...o.failed])) this.reclassify(rg, h)
      for (const h of ctx.pins?.hosts() ?? []) this.reclassify(rg, h)
      if (ctx.stale !== undefined) for (const h of plan.waveOf.keys()) if (ctx.stale(id, h)) this.reclassify(rg, h)
    } else {
      const o = this.outcomes.get(id)
      if (o !== undefined) {
        for (const ch of o.pending) this.reclassify(rg, ch.host)
        o.pending.length = 0
      }
    }
    this.readOverdue(ctx, rg)
    this.readAccepts(ctx, rg)
    this.readMovedOn(ctx, rg)
    return rg
  }

  private readOverdue (ctx: GateContext, rg: ReleaseGates): void {
    const list = this.outcomes.get(rg.candidate.body.id)?.overdue ?? []
    for (; rg.overdueAt < list.length; rg.overdueAt++) {
      const r = list[rg.overdueAt]
      const s = ctx.membership.standingAt(r.feed, r.seq, r.ts)
      if (!s.admin && !(s.member && rg.plan.waveOf.has(r.feed))) continue
      for (const h of r.body.hosts) {
        const k = rg.plan.waveOf.get(h)
        if (k === undefined) continue
        if (r.body.why === 'deadline') rg.deadline.add(h)
        else if (k === r.body.wave) rg.silent.add(h)
        else continue
        this.reclassify(rg, h)
      }
    }
  }

  private readAccepts (ctx: GateContext, rg: ReleaseGates): void {
    const list = this.controls.get(rg.candidate.body.id) ?? []
    for (; rg.controlAt < list.length; rg.controlAt++) {
      const c = list[rg.controlAt]
      if (c.action !== 'resume' || c.body.accept === undefined || !ctx.membership.standingAt(c.feed, c.seq, c.ts).admin) continue
      for (const h of c.body.accept) {
        if (!rg.plan.waveOf.has(h)) continue
        rg.accepted.add(h)
        this.reclassify(rg, h)
      }
    }
  }

  private readMovedOn (ctx: GateContext, rg: ReleaseGates): void {
    const list = this.firstOutcomes
    for (; rg.firstAt < list.length; rg.firstAt++) {
      const f = list[rg.firstAt]
      if (!rg.plan.waveOf.has(f.host) || rg.movedOn.has(f.host)) continue
      const newer = ctx.releases.get(f.release)
      if (newer === undefined || !outranks(newer, rg.candidate)) continue
      rg.movedOn.add(f.host)
      this.reclassify(rg, f.host)
    }
  }

  private reclassify (rg: ReleaseGates, h: string): void {
    const k = rg.plan.waveOf.get(h)
    if (k === undefined) return
    const agg = rg.waves[k]
    const o = this.outcomes.get(rg.candidate.body.id)
    let latest = o?.latest.get(h)
    // a frozen plan keeps a revoked host; what it wrote past its revoke's cut does not count
    if (latest !== undefined && !rg.membership.isMember(h) && !rg.membership.standingAt(h, latest.seq, latest.ts).member) latest = undefined
    const cls = classify(rg, agg.wave, h, o, latest)
    agg.n[rg.cls.get(h) ?? HostClass.quiet]--
    agg.n[cls]++
    if (cls === HostClass.quiet) rg.cls.delete(h)
    else rg.cls.set(h, cls)
    if (latest !== undefined && !rg.spoke.has(h)) {
      rg.spoke.add(h)
      agg.started++
    } else if (latest === undefined && rg.spoke.delete(h)) agg.started--
  }
}

function classify (rg: ReleaseGates, wave: Wave, h: string, o: ReleaseOutcomes | undefined, latest: Entry | undefined): HostClass {
  if (rg.accepted.has(h)) return HostClass.accepted
  if (o?.failed.has(h) === true || (latest !== undefined && rg.deadline.has(h))) return HostClass.failed
  if (rg.silent.has(h)) return HostClass.silent
  if (latest === undefined) {
    if (rg.pins?.holds(h, (rg.plan.targetOf.get(h) as { path: string }).path) === true) return HostClass.pinned
    if (rg.stale?.(rg.candidate.body.id, h) === true) return HostClass.stale
    return rg.movedOn.has(h) ? HostClass.movedOn : HostClass.quiet
  }
  const health = o?.health.get(h)
  if (isHealthy(latest, health, wave.gate.soakMs)) return HostClass.healthy
  if (rg.movedOn.has(h)) return HostClass.movedOn
  if (latest.kind === 'apply-start') return HostClass.applying
  if (health !== undefined && health.seq > latest.seq && !(health.body as { ok: boolean }).ok) return HostClass.unhealthy
  return HostClass.soaking
}

function haltOf (rg: ReleaseGates, gates: GateView[], failed: number): Halt {
  const body = rg.candidate.body
  if (failed > body.maxFailures) return { halted: true, reason: `${failed} hosts failed, the budget is ${body.maxFailures}` }
  for (let j = 0; j < gates.length - 1; j++) {
    const g = gates[j]
    if (g.lost) return { halted: true, reason: `wave ${j + 1} can no longer meet its gate: ${rg.waves[j].n[HostClass.failed]} of ${g.counted} failed, ${g.need} must be healthy` }
  }
  return { halted: false }
}
