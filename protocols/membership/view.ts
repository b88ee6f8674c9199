// The member set as a pure fold over audit entries (docs/architecture.md, membership). No I/O and no clock: the same
// set of entries gives the same view on every host, whatever order they arrived in.
//
// Rules
// - The root is the genesis entry: seq 0 of the founder's feed, body.founder = its author,
//   body.mesh = the configured mesh id (and author = config.founder when that is pinned). If
//   several feeds claim a genesis for the mesh, the one first in (ts, feed) order is the root;
//   nodes that know the founder should pin it in the config so no one can contest it.
// - An entry carries authority when its author X, at that entry, is an admin:
//     X is the founder or was admitted by an entry that carries authority, and
//     no counted revoke of X has `after` < the entry's seq, and
//     X's role at the entry's ts is admin.
//   Only entries that carry authority count; entries of non-members therefore count for nothing.
// - Role. The base role is admin for the founder and for a peer that any counted admit made
//   admin (a second admit never lowers a role), else host; it holds from the beginning of time,
//   so clock skew between inviter and joiner cannot void a new admin's first entries. A `grant`
//   with a role is a role event at its ts; X's role at time t is that of the last role event
//   with ts <= t in (ts, feed, seq) order, else the base role. The current role is that of the
//   last role event. Demotion thus trusts the demoted admin's clock: to cut off an admin you
//   do not trust, revoke it (cut by seq, which backdating cannot dodge).
// - Tags: those of the last counted admit or grant carrying tags, in (ts, feed, seq) order.
// - Revoke wins. A counted revoke of P removes P from the members for good (a later or
//   concurrent admit does not bring it back; re-admission needs a new identity), and P's
//   entries with seq > `after` carry no authority, so its later admits, grants and revokes
//   are void.
// - Restrictions (revokes and demoting grants) can undo each other's authority, so "counted"
//   cannot be a simple fixpoint. It is the grounded one: with F(R) = the restrictions that carry
//   authority once the restrictions R are in force (F only shrinks as R grows), L = the least
//   fixpoint of F∘F (restrictions that hold however the conflicts go), and the counted set is
//   F(L): every restriction not defeated by one of L. Two admins revoking each other
//   concurrently (each revoke written past the other's `after`) thus are both revoked, in every
//   delivery order: when authority is contested the mesh fails safe, towards fewer admins.
//   A restriction that would void its own author's authority (say a revoke of the founder
//   with after = -1 by an admin the founder admitted) is dropped first: it can never hold.
// - A (feed, seq) holding two different membership entries (an equivocation) counts for
//   neither; the audit store keeps the proof.
import type { Entry } from '../audit/types.js'
import { membershipSchemas, type AdmitBody, type GenesisBody, type GrantBody, type MembershipBodies, type MembershipKind, type RevokeBody, type Role } from './codec.js'

export interface MembershipConfig {
  meshId: string
  /** the founder's peer id, when known (from `fleetmesh init`, or the pairing welcome) */
  founder?: string
}

export interface MemberInfo {
  role: Role
  tags: string[]
  /** peer id of the admin whose admit counted first (the founder for itself) */
  admittedBy: string
  /** ts (ms) of that admit, or of the genesis for the founder */
  admittedAt: number
  /** invite id of the first counted admit that names one */
  invite?: string
  /** X-Wing public key from the first counted admit (or the genesis) carrying one */
  xwing?: Uint8Array
  /**
   * host name from the first counted admit (or the genesis's `host`) carrying one. Names are
   * claims, not identities: two members may carry the same one (node/host-names.ts tells them apart).
   */
  name?: string
}

/** `name`: the revoked host's name, as its admission gave it. */
export interface RevokedInfo { by: string, at: number, reason?: string, name?: string }

export interface MemberView {
  meshId: string
  /** mesh name from the genesis */
  name: string | undefined
  founder: string | undefined
  members: Map<string, MemberInfo>
  revoked: Map<string, RevokedInfo>
}

/** What an author could do at one entry of its feed. */
export interface Standing {
  /** founder or admitted, and not cut off by a counted revoke at this seq */
  member: boolean
  /** a member whose role at that entry is admin */
  admin: boolean
}

interface Base { id: string, feed: string, seq: number, ts: number, sig: Uint8Array }
type Rec = { [K in MembershipKind]: Base & { kind: K, body: MembershipBodies[K] } }[MembershipKind]
type GenesisRec = Base & { kind: 'genesis', body: GenesisBody }
type AdmitRec = Base & { kind: 'admit', body: AdmitBody }
type GrantRec = Base & { kind: 'grant', body: GrantBody }
type RevokeRec = Base & { kind: 'revoke', body: RevokeBody }
/** admits and promoting grants: they can only add authority */
type Positive = AdmitRec | GrantRec
/** revokes and demoting grants: they can only take authority away */
type Restriction = RevokeRec | GrantRec

interface Index {
  genesis: GenesisRec[]
  positivesByAuthor: Map<string, Positive[]>
  restrictions: Restriction[]
  admitsByTarget: Map<string, AdmitRec[]>
  grantsByTarget: Map<string, GrantRec[]>
}

/** Who has authority once a given set of restrictions is in force. */
interface Authority {
  genesis: GenesisRec | undefined
  cutoff: Map<string, number>
  demotions: Map<string, GrantRec[]>
  admitted: Set<string>
  baseAdmin: Set<string>
  promotions: Map<string, GrantRec[]>
  /** ids of positives that carry authority */
  counted: Set<string>
}

interface Result { authority: Authority, restrictions: Set<string> }

export interface MembershipState {
  readonly config: MembershipConfig
  records: Map<string, Rec>
  forked: Set<string>
  index: Index | undefined
  result: Result | undefined
  view: MemberView | undefined
}

function order (a: Base, b: Base): number {
  return a.ts - b.ts || (a.feed < b.feed ? -1 : a.feed > b.feed ? 1 : 0) || a.seq - b.seq
}

function last<T extends Base> (recs: Iterable<T>): T | undefined {
  let best: T | undefined
  for (const r of recs) if (best === undefined || order(r, best) > 0) best = r
  return best
}

function first<T extends Base> (recs: Iterable<T>): T | undefined {
  let best: T | undefined
  for (const r of recs) if (best === undefined || order(r, best) < 0) best = r
  return best
}

function push<K, V> (map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

function isPositive (r: Rec): r is Positive {
  return r.kind === 'admit' || (r.kind === 'grant' && r.body.role === 'admin')
}

function isRestriction (r: Rec): r is Restriction {
  return r.kind === 'revoke' || (r.kind === 'grant' && r.body.role === 'host')
}

function addToIndex (ix: Index, r: Rec): void {
  if (r.kind === 'genesis') ix.genesis.push(r)
  else if (isPositive(r)) push(ix.positivesByAuthor, r.feed, r)
  else if (isRestriction(r)) ix.restrictions.push(r)
  if (r.kind === 'admit') push(ix.admitsByTarget, r.body.peer, r)
  else if (r.kind === 'grant') push(ix.grantsByTarget, r.body.peer, r)
}

function buildIndex (records: Iterable<Rec>): Index {
  const ix: Index = { genesis: [], positivesByAuthor: new Map(), restrictions: [], admitsByTarget: new Map(), grantsByTarget: new Map() }
  for (const r of records) addToIndex(ix, r)
  return ix
}

function selectGenesis (ix: Index, config: MembershipConfig): GenesisRec | undefined {
  return first(ix.genesis.filter((g) => g.seq === 0 && g.body.mesh === config.meshId && g.body.founder === g.feed &&
    (config.founder === undefined || g.feed === config.founder)))
}

function roleAt (a: Authority, peer: string, ts: number): Role {
  let event: GrantRec | undefined
  for (const list of [a.promotions.get(peer), a.demotions.get(peer)]) {
    for (const g of list ?? []) if (g.ts <= ts && (event === undefined || order(g, event) > 0)) event = g
  }
  if (event !== undefined) return event.body.role!
  return peer === a.genesis?.feed || a.baseAdmin.has(peer) ? 'admin' : 'host'
}

function memberAt (a: Authority, feed: string, seq: number): boolean {
  if (feed !== a.genesis?.feed && !a.admitted.has(feed)) return false
  const cut = a.cutoff.get(feed)
  return cut === undefined || seq <= cut
}

function carriesAuthority (a: Authority, r: Base): boolean {
  return memberAt(a, r.feed, r.seq) && roleAt(a, r.feed, r.ts) === 'admin'
}

/** The positives' least fixpoint under fixed restrictions: monotone, so a worklist suffices. */
function authorityUnder (ix: Index, genesis: GenesisRec | undefined, restrictions: Set<string>, records: Map<string, Rec>): Authority {
  const a: Authority = { genesis, cutoff: new Map(), demotions: new Map(), admitted: new Set(), baseAdmin: new Set(), promotions: new Map(), counted: new Set() }
  for (const id of restrictions) {
    const r = records.get(id) as Restriction
    if (r.kind === 'revoke') a.cutoff.set(r.body.peer, Math.min(r.body.after, a.cutoff.get(r.body.peer) ?? Infinity))
    else push(a.demotions, r.body.peer, r)
  }
  if (genesis !== undefined) extendAuthority(a, ix, [genesis.feed])
  return a
}

/** Counts one positive if its author has authority; returns the peer whose standing grew. */
function tryCount (a: Authority, r: Positive): string | undefined {
  if (a.counted.has(r.id) || !carriesAuthority(a, r)) return undefined
  a.counted.add(r.id)
  const target = r.body.peer
  if (r.kind === 'grant') {
    push(a.promotions, target, r)
    return target
  }
  let grew = false
  if (!a.admitted.has(target)) { a.admitted.add(target); grew = true }
  if (r.body.role === 'admin' && !a.baseAdmin.has(target)) { a.baseAdmin.add(target); grew = true }
  return grew ? target : undefined
}

/** Re-examines the positives written by each peer whose standing grew, until nothing more counts. */
function extendAuthority (a: Authority, ix: Index, changed: string[]): void {
  const work = [...changed]
  while (work.length > 0) {
    for (const r of ix.positivesByAuthor.get(work.pop()!) ?? []) {
      const grew = tryCount(a, r)
      if (grew !== undefined) work.push(grew)
    }
  }
}

function countedRestrictions (candidates: Restriction[], a: Authority): Set<string> {
  const out = new Set<string>()
  for (const r of candidates) if (carriesAuthority(a, r)) out.add(r.id)
  return out
}

/** Cheap screen: false when `r` cannot void any counted positive, so no one's standing moves. */
function mayVoidAuthority (ix: Index, a: Authority, r: Restriction): boolean {
  const target = r.body.peer
  if (r.feed === target) return true
  if (r.kind === 'revoke' && target === a.genesis?.feed) return true
  for (const p of ix.positivesByAuthor.get(target) ?? []) {
    if (a.counted.has(p.id) && (r.kind === 'revoke' ? p.seq > r.body.after : p.ts >= r.ts)) return true
  }
  return false
}

function sameSet (x: Set<string>, y: Set<string>): boolean {
  if (x.size !== y.size) return false
  for (const v of x) if (!y.has(v)) return false
  return true
}

function resolve (state: MembershipState): Result {
  const ix = state.index ??= buildIndex(state.records.values())
  const genesis = selectGenesis(ix, state.config)
  // A restriction that would void its own authority (its cut reaches the entries its author's
  // standing derives from) can never hold; drop it before weighing the others against it.
  const unrestricted = authorityUnder(ix, genesis, new Set(), state.records)
  const viable = ix.restrictions.filter((r) => carriesAuthority(unrestricted, r) &&
    (!mayVoidAuthority(ix, unrestricted, r) || carriesAuthority(authorityUnder(ix, genesis, new Set([r.id]), state.records), r)))
  const F = (r: Set<string>): Result => {
    const authority = r.size === 0 ? unrestricted : authorityUnder(ix, genesis, r, state.records)
    return { authority, restrictions: countedRestrictions(viable, authority) }
  }
  let lower = new Set<string>()
  for (;;) {
    const upper = F(lower)
    if (sameSet(upper.restrictions, lower)) return upper
    const next = F(upper.restrictions)
    // converged: L = F(F(L)); the counted restrictions are F(L), and `next` holds A(F(L))
    if (sameSet(next.restrictions, lower)) return { authority: next.authority, restrictions: upper.restrictions }
    lower = next.restrictions
  }
}

function buildView (state: MembershipState, result: Result): MemberView {
  const ix = state.index!
  const a = result.authority
  const founder = a.genesis?.feed
  const revoked = new Map<string, RevokedInfo>()
  const revokes = new Map<string, RevokeRec[]>()
  for (const id of result.restrictions) {
    const r = state.records.get(id) as Restriction
    if (r.kind === 'revoke') push(revokes, r.body.peer, r)
  }
  const counted = (peer: string): AdmitRec[] => (ix.admitsByTarget.get(peer) ?? []).filter((r) => a.counted.has(r.id)).sort(order)
  const nameOf = (peer: string, admits: AdmitRec[]): string | undefined =>
    peer === founder ? a.genesis!.body.host : admits.find((r) => r.body.name !== undefined)?.body.name
  for (const peer of [...revokes.keys()].sort()) {
    const r = first(revokes.get(peer)!)!
    const info: RevokedInfo = r.body.reason === undefined ? { by: r.feed, at: r.ts } : { by: r.feed, at: r.ts, reason: r.body.reason }
    const name = nameOf(peer, counted(peer))
    if (name !== undefined) info.name = name
    revoked.set(peer, info)
  }
  const members = new Map<string, MemberInfo>()
  const candidates = new Set(a.admitted)
  if (founder !== undefined) candidates.add(founder)
  for (const peer of [...candidates].sort()) {
    if (revoked.has(peer)) continue
    const admits = counted(peer)
    const grants = (ix.grantsByTarget.get(peer) ?? []).filter((g) => a.counted.has(g.id) || result.restrictions.has(g.id) || (g.body.role === undefined && carriesAuthority(a, g)))
    const firstAdmit = admits[0]
    const info: MemberInfo = peer === founder
      ? { role: 'admin', tags: [], admittedBy: founder, admittedAt: a.genesis!.ts }
      : { role: 'host', tags: [], admittedBy: firstAdmit!.feed, admittedAt: firstAdmit!.ts }
    const lastRole = last(grants.filter((g) => g.body.role !== undefined))
    info.role = lastRole !== undefined ? lastRole.body.role! : roleAt(a, peer, -Infinity)
    const lastTags = last<Base & { body: { tags?: string[] } }>([...admits, ...grants.filter((g) => g.body.tags !== undefined)])
    if (lastTags !== undefined) info.tags = [...lastTags.body.tags!]
    const invite = admits.find((r) => r.body.invite !== undefined)?.body.invite
    if (invite !== undefined) info.invite = invite
    const xwing = peer === founder && a.genesis!.body.xwing !== undefined ? a.genesis!.body.xwing : admits.find((r) => r.body.xwing !== undefined)?.body.xwing
    if (xwing !== undefined) info.xwing = xwing
    const name = nameOf(peer, admits)
    if (name !== undefined) info.name = name
    members.set(peer, info)
  }
  return { meshId: state.config.meshId, name: a.genesis?.body.name, founder, members, revoked }
}

export function createMembershipState (config: MembershipConfig): MembershipState {
  return { config, records: new Map(), forked: new Set(), index: undefined, result: undefined, view: undefined }
}

/**
 * Folds one entry in. Returns false when the entry cannot change the view (another kind, a
 * body failing its schema, a duplicate). Entries must already be verified (signature, chain).
 * Cheap when it only adds authority and no restriction exists yet (the common case of a
 * growing fleet); otherwise the next view recomputes.
 */
export function applyEntry (state: MembershipState, entry: Entry): boolean {
  // hasOwn: a kind such as "constructor" must not reach Object.prototype
  if (!Object.hasOwn(membershipSchemas, entry.kind)) return false
  const schema = (membershipSchemas as Record<string, (body: unknown) => unknown>)[entry.kind]!
  let body: unknown
  try {
    body = schema(entry.body)
  } catch {
    return false
  }
  const id = `${entry.feed}/${entry.seq}`
  if (state.forked.has(id)) return false
  const existing = state.records.get(id)
  if (existing !== undefined) {
    if (Buffer.compare(existing.sig, entry.sig) === 0) return false
    state.forked.add(id)
    state.records.delete(id)
    state.index = state.result = state.view = undefined
    return true
  }
  const rec = { id, feed: entry.feed, seq: entry.seq, ts: entry.ts, sig: entry.sig, kind: entry.kind, body } as Rec
  state.records.set(id, rec)
  state.view = undefined
  if (state.index === undefined) return true
  addToIndex(state.index, rec)
  if (state.result !== undefined && state.index.restrictions.length === 0 && rec.kind !== 'genesis') {
    // With no restriction anywhere the authority is a plain monotone fixpoint: extend it.
    const grew = isPositive(rec) ? tryCount(state.result.authority, rec) : undefined
    if (grew !== undefined) extendAuthority(state.result.authority, state.index, [grew])
  } else if (!(rec.kind === 'grant' && rec.body.role === undefined)) {
    // tag-only grants leave authority alone; everything else may change it
    state.result = undefined
  }
  return true
}

export function viewOf (state: MembershipState): MemberView {
  if (state.view !== undefined) return state.view
  state.result ??= resolve(state)
  state.view = buildView(state, state.result)
  return state.view
}

/**
 * The author's standing as of one of its entries (DESIGN §8: authority is judged as of the
 * entry). Membership is cut by seq (a counted revoke's `after`), so a revoke stops the author's
 * later entries and never voids its earlier ones; admin is its role at the entry's ts (the
 * demotion rule above).
 */
export function standingAt (state: MembershipState, feed: string, seq: number, ts: number): Standing {
  state.result ??= resolve(state)
  const a = state.result.authority
  const member = memberAt(a, feed, seq)
  return { member, admin: member && roleAt(a, feed, ts) === 'admin' }
}

/**
 * The view folded from exactly the membership entries at or below `basis` (feed → seq; a
 * release's basis): the member set a release's plan is resolved against and frozen in (DESIGN
 * §8: authority as of the entry). Entries of feeds the basis does not name, or above its seq,
 * do not count. Pure over what `state` holds: the caller checks that it holds every basis feed
 * up to its seq (the store's feed heads) before trusting the result, which is then the same on
 * every host.
 */
export function viewAsOf (state: MembershipState, basis: Readonly<Record<string, number>>): MemberView {
  const cut = createMembershipState(state.config)
  const within = (feed: string, seq: number): boolean => Object.hasOwn(basis, feed) && seq <= basis[feed]!
  for (const [id, r] of state.records) if (within(r.feed, r.seq)) cut.records.set(id, r)
  for (const id of state.forked) {
    const at = id.lastIndexOf('/')
    if (within(id.slice(0, at), Number(id.slice(at + 1)))) cut.forked.add(id)
  }
  return viewOf(cut)
}

/** The view of a set of entries, in one call. */
export function computeView (entries: Iterable<Entry>, config: MembershipConfig): MemberView {
  const state = createMembershipState(config)
  for (const e of entries) applyEntry(state, e)
  return viewOf(state)
}

export function isMember (view: MemberView, peer: string): boolean {
  return view.members.has(peer)
}

export function isAdmin (view: MemberView, peer: string): boolean {
  return view.members.get(peer)?.role === 'admin'
}
