// Fixtures of the checkpoint tests: feeds of really signed, chained entries (real Ed25519 keys,
// the audit codec's canonical bytes and hashes), the heads a host holds, a membership view over
// the real membership fold that, like the node adapter, holds a feed up to a seq when its store
// does (a checkpoint's cover counts as held), what a host that adopted a checkpoint holds, and
// every decision the real folds make over a set of entries.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createSigner, type Signer } from '../../crypto/sign.js'
import { attachSignature, entryHash, signingBytes, ZERO_HASH } from '../../protocols/audit/codec.js'
import type { Head, StoredEntry } from '../../protocols/audit/types.js'
import { viewOf } from '../../protocols/membership/index.js'
import { applyEntry, controlState, decide, emptyState, nextReleaseNumber, releaseStatus, rollbackTargets, soakWatchOf } from '../../protocols/rollout/index.js'
import { applyRoomEntry, createRoomsState, foldRoom } from '../../protocols/rooms/index.js'
import { retainedRefs } from '../../protocols/checkpoint/index.js'
import { LogMembership } from '../rollout/helpers.js'

export const MESH = 'mesh-checkpoint-test'
export const T0 = 1767225600000
/** after every release's notBefore: the decisions' `now` */
export const NOW = T0 + 1e9

export class SignedFeed {
  seq = 0
  private prev = ZERO_HASH
  private constructor (readonly id: string, private readonly signer: Signer) {}

  static async create (): Promise<SignedFeed> {
    const key = await generateKeyPair('Ed25519')
    return new SignedFeed(peerIdFromPrivateKey(key).toString(), createSigner(key))
  }

  static async many (n: number): Promise<SignedFeed[]> {
    return await Promise.all(Array.from({ length: n }, async () => await SignedFeed.create()))
  }

  append (kind: string, body: unknown, ts = T0 + this.seq): StoredEntry {
    const unsigned = { feed: this.id, seq: this.seq, prev: this.prev, ts, kind, body }
    const signed = signingBytes(unsigned)
    const sig = this.signer.sign(signed)
    const bytes = attachSignature(signed, unsigned, sig)
    const hash = entryHash(bytes)
    this.seq++
    this.prev = hash
    return { entry: { ...unsigned, sig }, bytes, hash }
  }
}

export interface Fleet { founder: SignedFeed, admin: SignedFeed, host: SignedFeed, log: StoredEntry[] }

/** A founder, an admin it admitted and a host tagged web. */
export async function fleet (): Promise<Fleet> {
  const [founder, admin, host] = await SignedFeed.many(3)
  const log = [
    founder.append('genesis', { mesh: MESH, name: 'test', founder: founder.id }),
    founder.append('admit', { peer: admin.id, role: 'admin', tags: [] }),
    founder.append('admit', { peer: host.id, role: 'host', tags: ['web'] })
  ]
  return { founder, admin, host, log }
}

/** The newest entry of each feed among `entries`. */
export function headsOf (entries: Iterable<StoredEntry>): Head[] {
  const heads = new Map<string, Head>()
  for (const e of entries) {
    const h = heads.get(e.entry.feed)
    if (h === undefined || h.seq < e.entry.seq) heads.set(e.entry.feed, { feed: e.entry.feed, seq: e.entry.seq, hash: e.hash })
  }
  return [...heads.values()]
}

/** The membership a host folds from its entries; `held` says up to which seq it holds each feed. */
export class FoldedMembership extends LogMembership {
  constructor (held: (feed: string) => number) { super(MESH, held) }
}

export type Cover = Map<string, number>
export const covered = (cover: Cover, e: StoredEntry): boolean => e.entry.seq <= (cover.get(e.entry.feed) ?? -1)
export const refKey = (feed: string, seq: number): string => `${feed}/${seq}`

/**
 * What a host that adopted a checkpoint at `cover` sealing the releases below `sealed` holds: the
 * retained entries below it and everything above, in log order.
 */
export function fromCheckpoint (log: StoredEntry[], cover: Cover, retained: StoredEntry[], sealed = 0): StoredEntry[] {
  const keep = new Set(retainedRefs(retained.filter(e => covered(cover, e)), sealed).map(r => refKey(r.feed, r.seq)))
  return log.filter(e => !covered(cover, e) || keep.has(refKey(e.entry.feed, e.entry.seq)))
}

/** Every decision the folds make over `entries`; `held` is how far the host holds each feed. */
export function observe (entries: StoredEntry[], held: (feed: string) => number, ids: string[], releaseIds: string[], roomIds: string[], now = NOW): unknown {
  const state = emptyState()
  const m = new FoldedMembership(held)
  const rooms = createRoomsState()
  for (const { entry } of entries) {
    m.add(entry)
    applyEntry(state, entry)
    applyRoomEntry(rooms, entry)
  }
  const first = ids.map(h => decide(state, m, h, now))
  const timers = new Set(first.flatMap(d => 'timer' in d && d.timer !== undefined ? [d.timer.key] : []))
  return {
    view: viewOf(m.state),
    decisions: first,
    expired: ids.map(h => decide(state, m, h, now, { expired: timers })),
    soak: ids.map(h => soakWatchOf(state, m, h)),
    next: nextReleaseNumber(state, m),
    releases: releaseIds.map(id => ({ status: releaseStatus(state, m, id), rollback: rollbackTargets(state, m, id), control: controlState(state, m, id) })),
    rooms: roomIds.map(id => foldRoom(rooms, id, (f, s, ts) => m.standingAt(f, s, ts)))
  }
}

