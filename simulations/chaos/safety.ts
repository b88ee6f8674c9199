// The rollout-safety invariants of issue 14, judged from the audit trail every host holds
// (trail.ts) — apply-start and its outcomes by the causal order of DESIGN §8, never by claimed
// time — and written independently of protocols/rollout's budget, edge and hold folds:
//   budget:     no consistent cut of the trail has more than a release's maxInFlight of its hosts
//               in flight (an apply-start none of whose ends precedes it: an outcome of the
//               attempt, any later outcome or apply-start of the host, its stale verdict, or a
//               'deadline' overdue naming it — the overdue rule's bound);
//   edge:       a host without a wave's `after` tag starts only once every tagged plan host's
//               healthy outcome (or what takes it out of the gate) precedes the start;
//   pin:        a host writes no apply-start (but to the pinned path) while an admin's pin of it
//               stands, from when it held the pin until an unpin (an admin's, or its own at expiry) precedes the start;
//   quarantine: no apply-start for a path once its host held an admin quarantine of it, or as many
//               failures after activation (apply-failed + rollback of one attempt, by hosts the
//               release targets with that path) as a release's quarantineAfter, unless a clear
//               naming them precedes the start.
// Where a reading is open the lenient one is taken, so what is flagged is a violation under any.
// Pins and quarantines are judged on what the host held HOLD_GRACE_MS before it wrote the start:
// an entry stored between its decision and its append is not one it could have read.
import { standingAt, type MembershipState } from '../../protocols/membership/index.js'
import { planRelease, type Plan, type ReleaseBody } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'
import type { Violation } from './invariants.js'
import { membershipOf, rolloutView } from './oracle.js'
import { CausalOrder, type Trail } from './trail.js'

/** How long before its apply-start a host must have held a pin or quarantine to have had to honour it (the agent decides within a tick). */
export const HOLD_GRACE_MS = 1000

const OUTCOMES = new Set(['apply-ok', 'apply-failed', 'rollback', 'soaked'])

interface Counted { entry: Entry, body: ReleaseBody, plan: Plan, tagsOf: (peer: string) => string[] }

type Body = Record<string, unknown>
const body = (e: Entry): Body => e.body as Body
const ref = (e: Entry): string => `${e.feed}:${e.seq}`
const listed = (v: unknown, x: string): boolean => Array.isArray(v) && v.includes(x)

/** Admin releases of the trail with their plans frozen at their basis (as the oracle plans them). */
function countedReleases (entries: Entry[], m: MembershipState): Map<string, Counted> {
  const out = new Map<string, Counted>()
  for (const e of entries) {
    if (e.kind !== 'release' || !standingAt(m, e.feed, e.seq, e.ts).admin) continue
    const b = e.body as ReleaseBody
    if (out.has(b.id) || b.basis === undefined) continue
    const basis = b.basis
    const cut = entries.filter((x) => x.seq <= (basis[x.feed] ?? -1))
    const view = rolloutView(membershipOf(cut, m.config.meshId, m.config.founder ?? ''), cut)
    out.set(b.id, { entry: e, body: b, plan: planRelease(b, view), tagsOf: (p) => view.tagsOf(p) })
  }
  return out
}

export interface SafetyContext { trail: Trail, order: CausalOrder, entries: Entry[], releases: Map<string, Counted>, membership: MembershipState, name: (peer: string) => string }

export function safetyContext (trail: Trail, meshId: string, founder: string, name: (peer: string) => string): SafetyContext {
  const membership = membershipOf(trail.entries, meshId, founder)
  return { trail, order: new CausalOrder(trail), entries: trail.entries, releases: countedReleases(trail.entries, membership), membership, name }
}

export function checkSafety (c: SafetyContext): Violation[] {
  return [...checkBudgets(c), ...checkEdges(c), ...checkPins(c), ...checkQuarantines(c)]
}

const startsOf = (c: SafetyContext, release: string): Entry[] => c.entries.filter((e) => e.kind === 'apply-start' && body(e).release === release)
const who = (c: SafetyContext, s: Entry): string => `${c.name(s.feed)} apply-start #${s.seq} (attempt ${String(body(s).attempt)})`

/** What ends an attempt: see the header. */
function endsOf (c: SafetyContext, s: Entry): Entry[] {
  const b = body(s)
  return c.entries.filter((e) => {
    const x = body(e)
    if (e.feed === s.feed && e.seq > s.seq) {
      if (OUTCOMES.has(e.kind)) return x.attempt === b.attempt || x.release !== b.release
      return e.kind === 'apply-start' || (e.kind === 'release-seen' && x.release === b.release && x.stale === true)
    }
    return e.kind === 'overdue' && x.why === 'deadline' && x.release === b.release && listed(x.hosts, s.feed) && !c.order.happenedBefore(e, s)
  })
}

/** Invariant 1: at most maxInFlight hosts of a release in flight at any consistent cut. */
export function checkBudgets (c: SafetyContext): Violation[] {
  const out: Violation[] = []
  for (const [id, r] of c.releases) {
    const budget = r.body.budget
    const pct = budget?.maxInFlightPercent
    const n = budget?.maxInFlight ?? (pct !== undefined ? Math.max(1, Math.ceil(pct * r.plan.waveOf.size / 100)) : undefined)
    if (n === undefined) continue
    const att = startsOf(c, id).map((s) => ({ s, ends: endsOf(c, s) }))
    const apart = (a: typeof att[number], b: typeof att[number]): boolean =>
      a.s.feed === b.s.feed || a.ends.some((e) => c.order.happenedBefore(e, b.s)) || b.ends.some((e) => c.order.happenedBefore(e, a.s))
    const together = (picked: typeof att, from: number): typeof att | undefined => {
      if (picked.length > n) return picked
      for (let i = from; i < att.length; i++) {
        if (picked.some((p) => apart(p, att[i]))) continue
        const found = together([...picked, att[i]], i + 1)
        if (found !== undefined) return found
      }
      return undefined
    }
    const over = together([], 0)
    if (over !== undefined) out.push({ invariant: 'budget', detail: `${id} allows ${n} in flight, but ${over.map((a) => who(c, a.s)).join(', ')} were in flight together: no end of one precedes another's start` })
  }
  return out
}

/** Takes `t` out of an `after: {tag}` edge of release `id` (its healthy outcome, or what takes it out of the gate: an outcome for one of the `newer` releases is moving on). */
function settles (e: Entry, t: string, id: string, newer: Set<unknown>): boolean {
  const x = body(e)
  if (e.feed === t) {
    if (x.release === id) return e.kind === 'apply-ok' || e.kind === 'soaked' || (e.kind === 'release-seen' && x.stale === true)
    return OUTCOMES.has(e.kind) && newer.has(x.release)
  }
  if (e.kind === 'pin') return x.host === t
  return x.release === id && ((e.kind === 'overdue' && listed(x.hosts, t)) || (e.kind === 'release-control' && listed(x.accept, t)))
}

/** Invariant 2: a host without a wave's edge tag starts only after every tagged target settled. */
export function checkEdges (c: SafetyContext): Violation[] {
  const out: Violation[] = []
  for (const [id, r] of c.releases) {
    r.body.waves.forEach((w, k) => {
      const tag = w.after?.tag
      if (tag === undefined) return
      const tagged = [...r.plan.waveOf.keys()].filter((h) => r.tagsOf(h).includes(tag))
      const newer = new Set([...c.releases.values()].filter((x) => x.body.number > r.body.number).map((x) => x.body.id))
      for (const s of startsOf(c, id)) {
        if (r.plan.waveOf.get(s.feed) !== k || tagged.includes(s.feed)) continue
        const open = tagged.filter((t) => !c.entries.some((e) => settles(e, t, id, newer) && c.order.happenedBefore(e, s)))
        if (open.length > 0) out.push({ invariant: 'edge', detail: `${who(c, s)} of ${id} in wave ${k + 1}, which waits for tag ${tag}, before ${open.map(c.name).join(', ')} (tagged ${tag}) was healthy` })
      }
    })
  }
  return out
}

const heldBefore = (c: SafetyContext, host: string, e: Entry, s: Entry): boolean => {
  const since = c.trail.heldSince(host, e)
  const at = c.trail.heldSince(host, s)
  return since !== undefined && at !== undefined && since <= at - HOLD_GRACE_MS
}

/** Invariant 3: no apply-start (but to the pinned path) while a pin of the host stands. */
export function checkPins (c: SafetyContext): Violation[] {
  const out: Violation[] = []
  const pins = c.entries.filter((e) => e.kind === 'pin' && standingAt(c.membership, e.feed, e.seq, e.ts).admin)
  for (const s of c.entries.filter((e) => e.kind === 'apply-start')) {
    for (const p of pins) {
      if (body(p).host !== s.feed || body(p).path === body(s).path || !heldBefore(c, s.feed, p, s)) continue
      const lifted = c.entries.some((u) => u.kind === 'unpin' && body(u).host === s.feed &&
        (listed(body(u).lifts, ref(p)) || (u.feed === p.feed && u.seq > p.seq)) && c.order.happenedBefore(u, s))
      if (!lifted) out.push({ invariant: 'pin', detail: `${who(c, s)} of ${String(body(s).release)} while pinned to ${String(body(p).path)} by ${c.name(p.feed)} (${ref(p)}), held ${HOLD_GRACE_MS} ms before, with no unpin before it` })
    }
  }
  return out
}

/** One failure after activation: the apply-failed and rollback of one attempt. */
interface Failure { host: string, release: string, path: string, failed: Entry, rollback: Entry }

function failuresOf (c: SafetyContext): Failure[] {
  const failed = new Map<string, Entry>()
  for (const e of c.entries) if (e.kind === 'apply-failed') failed.set(`${e.feed} ${String(body(e).release)} ${String(body(e).attempt)} ${String(body(e).path)}`, e)
  const out: Failure[] = []
  for (const e of c.entries) {
    if (e.kind !== 'rollback') continue
    const b = body(e)
    const f = failed.get(`${e.feed} ${String(b.release)} ${String(b.attempt)} ${String(b.from)}`)
    const r = c.releases.get(b.release as string)
    if (f === undefined || r?.plan.targetOf.get(e.feed)?.path !== b.from || !standingAt(c.membership, e.feed, e.seq, e.ts).member) continue
    out.push({ host: e.feed, release: b.release as string, path: b.from as string, failed: f, rollback: e })
  }
  return out
}

/** Invariant 4: no apply-start for a quarantined path until a clear. */
export function checkQuarantines (c: SafetyContext): Violation[] {
  const out: Violation[] = []
  const failures = failuresOf(c)
  const manual = c.entries.filter((e) => e.kind === 'quarantine' && standingAt(c.membership, e.feed, e.seq, e.ts).admin)
  for (const s of c.entries.filter((e) => e.kind === 'apply-start')) {
    const path = body(s).path
    const cleared = (x: Entry, ownFeed: boolean): boolean => c.entries.some((q) => q.kind === 'quarantine-clear' && body(q).path === path &&
      (listed(body(q).clears, ref(x)) || (ownFeed && q.feed === x.feed && q.seq > x.seq)) && c.order.happenedBefore(q, s))
    const by = manual.find((q) => body(q).path === path && heldBefore(c, s.feed, q, s) && !cleared(q, true))
    if (by !== undefined) out.push({ invariant: 'quarantine', detail: `${who(c, s)} of ${String(body(s).release)} for ${String(path)}, quarantined by ${c.name(by.feed)} (${ref(by)})` })
    const held = failures.filter((f) => f.path === path && heldBefore(c, s.feed, f.failed, s) && heldBefore(c, s.feed, f.rollback, s) && !cleared(f.rollback, false))
    for (const [release, r] of c.releases) {
      const hosts = new Set(held.filter((f) => f.release === release).map((f) => f.host))
      const k = r.body.quarantineAfter ?? 1
      if (hosts.size >= k) out.push({ invariant: 'quarantine', detail: `${who(c, s)} of ${String(body(s).release)} for ${String(path)}, quarantined: it failed after activation on ${[...hosts].map(c.name).join(', ')} in ${release} (quarantineAfter ${k})` })
    }
  }
  return out
}
