// The rollout contract of issue 12, written independently of protocols/rollout, for judging the
// real decisions: the property tests (test/rollout/properties.test.ts) and the chaos scenario use
// it. It reads only signed facts: a release's plan is resolved against the membership entries of
// its `basis` and frozen; a wave's gate counts hosts whose own `soaked` entry (or apply-ok when the
// gate's soakMs is 0) stands, less hosts a counted `overdue` declared silent, that moved on to a
// newer release or that an admin's pin holds (no unpin naming it, or later in its feed, is held); a release halts when more failures (apply-failed, rollback, 'deadline' overdue)
// than its budget stand that no admin `resume` accepted. Where the contract leaves room the oracle
// takes the lenient reading, so that what it flags is a violation under any reading.
import { applyEntry as foldMember, createMembershipState, standingAt, viewAsOf, viewOf, type MembershipState } from '../../protocols/membership/index.js'
import { planRelease, type ControlAction, type MembershipView, type Plan, type ReleaseBody } from '../../protocols/rollout/index.js'
import type { Entry } from '../../protocols/audit/types.js'

const MEMBERSHIP_KINDS = new Set(['genesis', 'admit', 'grant', 'revoke'])

export function membershipOf (entries: Iterable<Entry>, meshId: string, founder: string): MembershipState {
  const m = createMembershipState({ meshId, founder })
  for (const e of entries) if (MEMBERSHIP_KINDS.has(e.kind)) foldMember(m, e)
  return m
}

/** A membership fold read through the rollout's MembershipView, as node/deploy/membership.ts adapts it; `held` are the entries the host holds. */
export function rolloutView (state: MembershipState, held: Iterable<Entry>): MembershipView {
  const v = viewOf(state)
  const heads = new Map<string, number>()
  for (const e of held) heads.set(e.feed, Math.max(heads.get(e.feed) ?? -1, e.seq))
  return {
    isAdmin: (p) => v.members.get(p)?.role === 'admin',
    isMember: (p) => v.members.has(p),
    tagsOf: (p) => v.members.get(p)?.tags ?? [],
    members: () => [...v.members.keys()],
    standingAt: (feed, seq, ts) => standingAt(state, feed, seq, ts),
    asOf: (basis) => {
      if (Object.entries(basis).some(([feed, seq]) => (heads.get(feed) ?? -1) < seq)) return undefined
      const cut = viewAsOf(state, basis)
      return { members: () => cut.members.keys(), tagsOf: (p) => cut.members.get(p)?.tags ?? [] }
    }
  }
}

export interface Truth {
  body: ReleaseBody
  /** undefined while the entries lack the release's basis */
  plan: Plan | undefined
  /** more unaccepted failures than the budget allows: sticky until a resume accepts enough of them */
  halted: boolean
  failed: string[]
  aborted: boolean
  /** an admin paused it and no admin resumed anything */
  paused: boolean
  gateMet: (wave: number) => boolean
}

/** What the signed entries `held` (with their membership fold) say about release `id`. */
export function truthOf (held: Entry[], membership: MembershipState, id: string): Truth | undefined {
  const standing = (e: Entry): { member: boolean, admin: boolean } => standingAt(membership, e.feed, e.seq, e.ts)
  const releases = held.filter((e) => e.kind === 'release' && standing(e).admin)
  const release = releases.find((e) => (e.body as ReleaseBody).id === id)
  if (release === undefined) return undefined
  const body = release.body as ReleaseBody
  const basis = body.basis ?? {}
  const heads = new Map<string, number>()
  for (const e of held) heads.set(e.feed, Math.max(heads.get(e.feed) ?? -1, e.seq))
  const hasBasis = body.basis !== undefined && Object.entries(basis).every(([feed, seq]) => (heads.get(feed) ?? -1) >= seq)
  const cut = held.filter((e) => e.seq <= (basis[e.feed] ?? -1))
  const plan = hasBasis ? planRelease(body, rolloutView(membershipOf(cut, membership.config.meshId, membership.config.founder ?? ''), cut)) : undefined
  const counted = held.filter((e) => (e.body as { release?: string }).release === id && standing(e).member)
  const attester = (e: Entry): boolean => standing(e).admin || (standing(e).member && plan?.waveOf.has(e.feed) === true)
  const overdue = (why: string, wave?: number): Set<string> => new Set(counted
    .filter((e) => e.kind === 'overdue' && attester(e) && (e.body as { why: string }).why === why && (wave === undefined || (e.body as { wave: number }).wave === wave))
    .flatMap((e) => (e.body as { hosts: string[] }).hosts))
  const failed = new Set(counted.filter((e) => e.kind === 'apply-failed' || e.kind === 'rollback').map((e) => e.feed))
  for (const h of overdue('deadline')) failed.add(h)
  const controls = counted.filter((e) => e.kind === 'release-control' && standing(e).admin).map((e) => e.body as { action: ControlAction, accept?: string[] })
  const actions = controls.map((b) => b.action)
  const accepted = new Set(controls.flatMap((b) => b.action === 'resume' ? b.accept ?? [] : []))
  const newerIds = new Set(releases.filter((e) => (e.body as ReleaseBody).number > body.number).map((e) => (e.body as ReleaseBody).id))
  const movedOn = new Set(held.filter((e) => e.kind !== 'release' && newerIds.has((e.body as { release?: string }).release ?? '') && standing(e).member).map((e) => e.feed))
  const pins = held.filter((e) => e.kind === 'pin' && standing(e).admin)
  const pinned = new Set(pins.filter((p) => !held.some((u) => u.kind === 'unpin' && (u.body as { host: string }).host === (p.body as { host: string }).host &&
    (((u.body as { lifts?: string[] }).lifts ?? []).includes(`${p.feed}:${p.seq}`) || (u.feed === p.feed && u.seq > p.seq)))).map((p) => (p.body as { host: string }).host))
  const gateMet = (j: number): boolean => {
    if (plan === undefined) return false
    const gate = body.waves[j].gate
    const out = new Set([...overdue('silent', j), ...movedOn, ...pinned])
    const hosts = plan.waves[j].filter((h) => !out.has(h))
    const healthy = hosts.filter((h) => {
      const last = counted.filter((e) => e.feed === h && ['apply-ok', 'soaked', 'apply-failed', 'rollback'].includes(e.kind)).sort((a, b) => b.seq - a.seq)[0]
      return last !== undefined && (last.kind === 'soaked' ? (last.body as { soakMs: number }).soakMs >= gate.soakMs : last.kind === 'apply-ok' && gate.soakMs === 0)
    })
    return healthy.length >= Math.ceil(gate.healthy * hosts.length / 100)
  }
  return {
    body,
    plan,
    halted: [...failed].filter((h) => !accepted.has(h)).length > body.maxFailures,
    failed: [...failed],
    aborted: actions.includes('abort'),
    paused: actions.includes('pause') && !actions.includes('resume'),
    gateMet
  }
}
