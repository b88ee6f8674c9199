// Test fixtures for the rollout decisions: a static membership view, a view over the real
// membership fold, and an entry writer that keeps per-feed sequence numbers, as the audit layer
// would. Signatures are not checked by the fold (the caller verified them), so they are zero
// bytes here.
import type { Entry } from '../../protocols/audit/types.js'
import { applyEntry as foldMember, createMembershipState, isMember, standingAt, viewAsOf, viewOf, type MembershipState } from '../../protocols/membership/index.js'
import { applyEntry, emptyState, planRelease, type RolloutState } from '../../protocols/rollout/index.js'
import type { Basis, EntryStanding, MembershipView, PlanMembership, ReleaseBody } from '../../protocols/rollout/types.js'
import { mulberry32 } from '../../simulations/scale/network.js'

/**
 * Members fixed by the test. A revoke cuts the peer's feed after `after` (-1 by default: every
 * entry of it stops counting), as a counted revoke does in the real fold; asOf gives a frozen
 * copy of the current member set.
 */
export class StaticMembership implements MembershipView {
  revision = 0
  private readonly cut = new Map<string, { after: number, admin: boolean }>()
  constructor (private readonly roles: Map<string, { admin: boolean, tags: string[] }>) {}
  static of (hosts: string[], admins: string[] = [], tags: Record<string, string[]> = {}): StaticMembership {
    const m = new Map<string, { admin: boolean, tags: string[] }>()
    for (const h of [...admins, ...hosts]) m.set(h, { admin: admins.includes(h), tags: tags[h] ?? [] })
    return new StaticMembership(m)
  }

  isAdmin (peer: string): boolean { return this.roles.get(peer)?.admin === true }
  isMember (peer: string): boolean { return this.roles.has(peer) }
  tagsOf (peer: string): string[] { return this.roles.get(peer)?.tags ?? [] }
  members (): string[] { return [...this.roles.keys()] }
  standingAt (feed: string, seq: number): EntryStanding {
    const cut = this.cut.get(feed)
    if (cut !== undefined) return seq <= cut.after ? { member: true, admin: cut.admin } : { member: false, admin: false }
    return { member: this.isMember(feed), admin: this.isAdmin(feed) }
  }

  asOf (): PlanMembership {
    const roles = new Map([...this.roles].map(([p, r]) => [p, [...r.tags]]))
    return { members: () => roles.keys(), tagsOf: (p) => roles.get(p) ?? [] }
  }

  revoke (peer: string, after = -1): void {
    this.cut.set(peer, { after, admin: this.isAdmin(peer) })
    this.roles.delete(peer)
    this.revision++
  }
}

/**
 * The membership a host folds from real genesis/admit/revoke entries (protocols/membership),
 * as node/deploy/membership.ts adapts it: standing as of each entry, the view as of a basis
 * once every basis feed is held up to its seq — by default as far as the entries added reach,
 * or as `held` says (a host that adopted a checkpoint holds feeds it never folded from seq 0).
 */
export class LogMembership implements MembershipView {
  revision = 0
  readonly state: MembershipState
  private readonly heads = new Map<string, number>()
  private readonly held: (feed: string) => number
  constructor (meshId: string, held?: (feed: string) => number) {
    this.state = createMembershipState({ meshId })
    this.held = held ?? ((feed) => this.heads.get(feed) ?? -1)
  }
  add (e: Entry): void {
    this.heads.set(e.feed, Math.max(this.heads.get(e.feed) ?? -1, e.seq))
    if (foldMember(this.state, e)) this.revision++
  }

  /** feed → head: what a publisher writes as a release's basis */
  basis (): Basis { return Object.fromEntries(this.heads) }
  isMember (peer: string): boolean { return isMember(viewOf(this.state), peer) }
  isAdmin (peer: string): boolean { return viewOf(this.state).members.get(peer)?.role === 'admin' }
  tagsOf (peer: string): string[] { return viewOf(this.state).members.get(peer)?.tags ?? [] }
  members (): string[] { return [...viewOf(this.state).members.keys()] }
  standingAt (feed: string, seq: number, ts: number): EntryStanding { return standingAt(this.state, feed, seq, ts) }
  asOf (basis: Basis): PlanMembership | undefined {
    if (Object.entries(basis).some(([feed, seq]) => this.held(feed) < seq)) return undefined
    const v = viewAsOf(this.state, basis)
    return { members: () => v.members.keys(), tagsOf: (p) => v.members.get(p)?.tags ?? [] }
  }
}

export class Writer {
  private readonly seqs = new Map<string, number>()
  write (feed: string, kind: string, body: unknown, ts = 0): Entry {
    const seq = this.seqs.get(feed) ?? 0
    this.seqs.set(feed, seq + 1)
    return { feed, seq, prev: new Uint8Array(32), ts, kind, body, sig: new Uint8Array(64) }
  }
}

export const ADMIN = 'AdminA'
export const ADMIN2 = 'AdminB'

/** The rollout state of `entries`, folded in the order given. */
export function fold (entries: Entry[]): RolloutState {
  const s = emptyState()
  for (const e of entries) applyEntry(s, e)
  return s
}

export const PATH_A = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-system-a'
export const PATH_B = '/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-system-b'

/** Host ids in the base58 alphabet, as the schema wants peer ids. */
export function hostIds (n: number, prefix = 'Host'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${(i + 1).toString().replaceAll('0', 'z')}`)
}

export function releaseBody (over: Partial<ReleaseBody> = {}): ReleaseBody {
  return {
    id: 'r1',
    number: 1,
    targets: [{ path: PATH_A, sources: ['peers'] }],
    waves: [
      { count: 1, gate: { healthy: 100, soakMs: 30_000 } },
      { percent: 25, gate: { healthy: 100, soakMs: 30_000 } },
      { percent: 100, gate: { healthy: 90, soakMs: 0 } }
    ],
    maxFailures: 2,
    ...over
  }
}

/** A deterministic PRNG (the simulator's mulberry32) so a failing order replays from its seed. */
export const rng = mulberry32

export function shuffle<T> (items: T[], rand: () => number): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

/**
 * The shape `chaos --seed 3 --hosts 6` found: a two-wave release whose canary wrote only
 * `canaryWrites` (nothing: it died before it held the release), while its other host applied a
 * newer release r2 that took it (it moved on).
 */
export function movedOnLog (body: ReleaseBody, m: PlanMembership, canaryWrites: (w: Writer, canary: string) => Entry[] = () => []): { w: Writer, entries: Entry[], canary: string, other: string } {
  const w = new Writer()
  const [[canary], [other]] = planRelease(body, m).waves
  const r2: ReleaseBody = { id: 'r2', number: 2, targets: [{ host: other, path: PATH_B, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 100, soakMs: 0 } }], maxFailures: 0 }
  const entries = [
    w.write(ADMIN, 'release', body),
    ...canaryWrites(w, canary),
    w.write(ADMIN, 'release', r2),
    w.write(other, 'apply-start', { release: 'r2', path: PATH_B, wave: 0, attempt: 'o2' }),
    w.write(other, 'apply-ok', { release: 'r2', path: PATH_B, healthyAt: 1, attempt: 'o2' })
  ]
  return { w, entries, canary, other }
}
