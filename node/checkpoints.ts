// Checkpoints on a running host. Following: from each member it meets, and whenever a
// checkpoint entry arrives, this host asks for the checkpoints that member keeps and adopts the
// newest one it can verify (its signer an admin as of it, by the membership folded from this
// store and the retained entries; no forked feed; no conflict with what this host holds),
// after pulling through the normal sync every covered range it lags on that a member still
// serves: a joiner, or a host back after its peers pruned, starts from the cover only on feeds
// none could serve (an archive refuses instead) and syncs normally after it; a host that holds
// everything just records it. A peer serving forged checkpoint data is banned. Writing: an admin host signs one on a
// cadence. Then each host prunes below the cover what is older than its history window, unless
// it is an archive. Pure rules in protocols/checkpoint; storage in protocols/audit/store.ts.
import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import { AuditError, CheckpointSync, isAuditError, type AuditStore, type Head, type StoredEntry } from '../protocols/audit/index.js'
import { Penalties } from '../protocols/audit/penalties.js'
import { assertCheckpointFits, MAX_CHECKPOINT_RECORD_BYTES } from '../protocols/audit/store.js'
import { buildCheckpoint, checkCheckpoint, isStale, newestCheckpoint, CHECKPOINT_KIND, type CheckpointBody, type CheckpointRef, type CheckpointRefusal } from '../protocols/checkpoint/index.js'
import { applyEntry, createMembershipState, standingAt } from '../protocols/membership/index.js'
import { applyEntry as applyRolloutEntry, emptyState, sealFloor } from '../protocols/rollout/index.js'
import { RolloutMembership } from './deploy/membership.js'
import { Mutex } from '../protocols/mutex.js'
import type { AuditConfig } from './config.js'
import { NodeError } from './errors.js'
import type { MeshLibp2p } from './libp2p.js'
import { MEMBERSHIP_KINDS, type Membership } from './membership.js'

const DAY_MS = 86_400_000
/**
 * Covered heads plus retained refs one checkpoint may have: as many as fit the record a store
 * reads back (~100 bytes each). What a peer serves is bounded tighter, by the counts the signer
 * signed; this bounds what even an admin's signature can make a host fetch and keep.
 */
const MAX_CHECKPOINT_PARTS = Math.floor(MAX_CHECKPOINT_RECORD_BYTES / 100)
const BAN_MS = 10 * 60_000
/** how often a host prunes per its window (besides after each adoption) */
const PRUNE_EVERY_MS = 3_600_000

export interface CheckpointsOptions {
  self: string
  store: AuditStore
  libp2p: Pick<MeshLibp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'getConnections' | 'addEventListener' | 'removeEventListener' | 'hangUp'>
  membership: Pick<Membership, 'isMember' | 'isAdmin' | 'mesh' | 'view' | 'standingAt' | 'viewAsOf' | 'basis' | 'on' | 'off'>
  config: AuditConfig
  log: Logger
  /** after an adoption: sync normally from the cover with that peer */
  adopted?: (peer: PeerId) => void
  /** wall clock (ms since the epoch): the history window */
  now?: () => number
  /** pulls feed entries from..to from `peer` through the normal sync (node/mesh.ts: AuditSync.pull) */
  fill?: (peer: PeerId, feed: string, from: number, to: number) => Promise<void>
  /** covered heads plus retained refs accepted for one checkpoint (default MAX_CHECKPOINT_PARTS) */
  maxParts?: number
}

/** What one ask came to: the checkpoint adopted, if any, and each newer one refused and why. */
export interface FollowResult { adopted?: StoredEntry, refused: Array<{ number: number, signer: string, reason: CheckpointRefusal | string }> }

const refOf = (s: StoredEntry, number: number): CheckpointRef => ({ number, feed: s.entry.feed, seq: s.entry.seq })
const numberOf = (s: StoredEntry): number => (s.entry.body as { number: number }).number

export class Checkpoints {
  readonly protocol: CheckpointSync
  private readonly lock = new Mutex()
  private readonly now: () => number
  private timers: NodeJS.Timeout[] = []
  /** members asked for their checkpoints since they connected */
  private readonly asked = new Set<string>()
  private readonly maxParts: number
  /** peers caught serving forged checkpoint data (signatures, parts against signed roots): banned at once */
  private readonly forged: Penalties
  /** peers sending bad requests or too many: banned on the third */
  private readonly requests: Penalties

  constructor (private readonly opts: CheckpointsOptions) {
    this.now = opts.now ?? Date.now
    this.maxParts = opts.maxParts ?? MAX_CHECKPOINT_PARTS
    const penalties = (banThreshold: number): Penalties => new Penalties({
      disconnect: (peer) => { void opts.libp2p.hangUp(peerIdFromString(peer)).catch(() => {}) },
      onPenalty: () => {},
      onBan: (peer) => { opts.log.warn({ peer, banMs: BAN_MS }, 'checkpoints: peer banned') },
      logger: opts.log,
      banThreshold,
      banMs: BAN_MS
    })
    this.forged = penalties(1)
    this.requests = penalties(3)
    this.protocol = new CheckpointSync({
      libp2p: opts.libp2p,
      store: opts.store,
      allowPeer: (peer) => opts.membership.isMember(peer) && !this.isBanned(peer),
      onRefused: (peer, error) => { this.requests.penalise(peer, error) },
      maxParts: this.maxParts
    })
  }

  /** Banned by this component (a peer that served forged checkpoint data, or kept sending bad requests). */
  isBanned (peer: string): boolean {
    return this.forged.isBanned(peer) || this.requests.isBanned(peer)
  }

  async start (): Promise<void> {
    await this.protocol.start()
    this.opts.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.opts.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.opts.membership.on('changed', this.onMembers)
    this.opts.store.on('entry', this.onEntry)
    this.onMembers()
    const { checkpointIntervalMs } = this.opts.config
    if (checkpointIntervalMs > 0) this.every(checkpointIntervalMs, async () => { if (this.opts.membership.isAdmin(this.opts.self)) await this.write() })
    this.every(PRUNE_EVERY_MS, async () => { await this.lock.run(async () => await this.prune()) })
  }

  async stop (): Promise<void> {
    for (const t of this.timers) clearInterval(t)
    this.opts.libp2p.removeEventListener('peer:identify', this.onIdentify)
    this.opts.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.opts.membership.off('changed', this.onMembers)
    this.opts.store.off('entry', this.onEntry)
    await this.protocol.stop()
  }

  private every (ms: number, job: () => Promise<unknown>): void {
    const t = setInterval(() => { void job().catch((err: Error) => { this.opts.log.warn({ err: err.message }, 'checkpoints: periodic job failed') }) }, ms)
    t.unref()
    this.timers.push(t)
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId }>): void => {
    this.ask(evt.detail.peerId)
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.asked.delete(evt.detail.toString())
  }

  // A joiner trusts its inviter only once it adopted the mesh, after the connection was identified.
  private readonly onMembers = (): void => {
    for (const c of this.opts.libp2p.getConnections()) this.ask(c.remotePeer)
  }

  /** Each member once per connection: what it keeps is asked for again only when a checkpoint arrives. */
  private ask (peer: PeerId): void {
    const id = peer.toString()
    if (this.asked.has(id) || !this.opts.membership.isMember(id) || this.isBanned(id)) return
    this.asked.add(id)
    void this.follow(peer).catch((err: Error) => { this.opts.log.debug({ peer: id, err: err.message }, 'checkpoints: asking a member failed') })
  }

  // A checkpoint signed elsewhere, by an admin as far as this host knows: its parts are asked of
  // whoever is connected, its signer first (anyone else's is not worth a round of asks).
  private readonly onEntry = (s: StoredEntry): void => {
    if (s.entry.kind !== CHECKPOINT_KIND || s.entry.feed === this.opts.self || !this.opts.membership.isAdmin(s.entry.feed)) return
    const peers = this.opts.libp2p.getConnections().map((c: Connection) => c.remotePeer).filter(p => this.opts.membership.isMember(p.toString()) && !this.isBanned(p.toString()))
    peers.sort((a) => a.toString() === s.entry.feed ? -1 : 1)
    void (async () => {
      for (const peer of peers) if ((await this.follow(peer).catch(() => undefined))?.adopted !== undefined) return
    })()
  }

  /** The newest counted checkpoint this host has adopted. */
  private newest (): CheckpointRef | undefined {
    const c = this.opts.store.checkpoint()
    return c === undefined ? undefined : { number: c.number, feed: c.feed, seq: c.seq }
  }

  /**
   * Asks `peer` for the checkpoints it keeps and adopts the newest one this host can verify
   * and has not yet; a refused one is logged once and the next older one tried. Fetching is
   * done outside the lock; only judging and adopting hold it.
   */
  async follow (peer: PeerId): Promise<FollowResult> {
    const result: FollowResult = { refused: [] }
    if (this.isBanned(peer.toString())) return result
    const offers = (await this.protocol.offers(peer)).filter(o => o.entry.kind === CHECKPOINT_KIND)
    for (const cp of offers) {
      const ref = refOf(cp, numberOf(cp))
      const newest = this.newest()
      if (newest !== undefined && (isStale(ref, newest) || (newest.feed === ref.feed && newest.seq === ref.seq))) continue
      const why = await this.tryAdopt(peer, cp)
      if (why === undefined) {
        this.opts.log.info({ peer: peer.toString(), number: ref.number, signer: cp.entry.feed }, 'checkpoint adopted')
        this.opts.adopted?.(peer)
        return { ...result, adopted: cp }
      }
      this.opts.log.warn({ peer: peer.toString(), number: ref.number, signer: cp.entry.feed, reason: why }, `checkpoint refused: ${why}`)
      result.refused.push({ number: ref.number, signer: cp.entry.feed, reason: why })
      if (this.isBanned(peer.toString())) break
    }
    return result
  }

  /**
   * Cheap checks first (the entry's schema and signature, its signer's standing as this host
   * already knows it), then the parts (no more than the signed counts), then the covered ranges
   * this host lags on through the normal sync, so that adopting drops nothing a member can still
   * serve and the judging sees every entry up to the cover that it could get (a revoke a revoked
   * signer left out of its refs included). A peer caught serving forged data is banned.
   */
  private async tryAdopt (peer: PeerId, offered: StoredEntry): Promise<CheckpointRefusal | string | undefined> {
    const store = this.opts.store
    let fetched: StoredEntry[]
    let parts: { cover: Head[], refs: Head[] }
    let cp: StoredEntry
    try {
      [cp] = await store.checkDetached([offered.bytes])
      if (this.knownNotAdmin(cp.entry)) return 'NOT_ADMIN'
      const body = cp.entry.body as CheckpointBody
      if (body.count + body.retained > this.maxParts) return `over ${this.maxParts} covered heads and retained refs`
      await this.learnForks()
      parts = await this.protocol.parts(peer, cp.entry, { cover: body.count, refs: body.retained })
      await this.fill(peer, parts.cover)
      const held = await this.heldHashes([...parts.cover, ...parts.refs])
      const lacking = parts.refs.filter(r => !held.has(`${r.feed}/${r.seq}`))
      fetched = await store.checkDetached((await this.protocol.retained(peer, lacking)).map(s => s.bytes))
    } catch (err) {
      if (!isAuditError(err)) throw err
      this.forged.penalise(peer.toString(), err)
      return err.code
    }
    return await this.lock.run(async () => {
      const held = await this.heldHashes([...parts.cover, ...parts.refs])
      const have = new Set([...held.keys(), ...fetched.map(s => `${s.entry.feed}/${s.entry.seq}`)])
      // pruned or rebased while this one was being fetched: the next ask starts over
      if (parts.refs.some(r => !have.has(`${r.feed}/${r.seq}`))) return 'RETAINED_ENTRY_GONE'
      const refusal = checkCheckpoint(cp, parts, {
        standingAt: await this.standing(fetched),
        forkedAt: (feed) => store.forkedAt(feed),
        held: (feed, seq) => held.get(`${feed}/${seq}`),
        newest: this.newest()
      })
      if (refusal === 'COVER_MISMATCH' || refusal === 'RETAIN_MISMATCH') {
        // an honest member keeps only parts it checked against the signed roots
        this.forged.penalise(peer.toString(), new AuditError('MESSAGE_MALFORMED', `served parts that do not match the checkpoint's signed roots (${refusal})`))
      }
      if (refusal !== undefined) return refusal
      try {
        await store.adoptCheckpoint(cp, parts, fetched, { archive: this.opts.config.archive })
      } catch (err) {
        if (isAuditError(err)) return err.code
        throw err
      }
      await this.prune()
      return undefined
    })
  }

  /** What this host already knows of the signer says it was no admin when it signed (DESIGN §8: as of the entry). */
  private knownNotAdmin (e: StoredEntry['entry']): boolean {
    const m = this.opts.membership
    if (m.mesh() === undefined) return false
    const s = m.standingAt(e.feed, e.seq, e.ts)
    return !s.admin && (s.member || m.view()?.revoked.has(e.feed) === true)
  }

  /**
   * Pulls, through the normal sync, each covered feed this host holds part of and lags on, from
   * `peer` then the other members connected: only what none of them can serve (pruned) is left
   * for the adoption to continue from the cover.
   */
  private async fill (peer: PeerId, cover: Head[]): Promise<void> {
    const fill = this.opts.fill
    if (fill === undefined) return
    const store = this.opts.store
    const others = this.opts.libp2p.getConnections().map(c => c.remotePeer)
      .filter(p => !p.equals(peer) && this.opts.membership.isMember(p.toString()) && !this.isBanned(p.toString()))
    for (const c of cover) {
      for (const from of [peer, ...others]) {
        const head = store.head(c.feed)
        if (head === undefined || head.seq >= c.seq) break
        await fill(from, c.feed, head.seq + 1, c.seq).catch((err: Error) => {
          this.opts.log.debug({ peer: from.toString(), feed: c.feed, err: err.message }, 'checkpoints: a covered range not served')
        })
      }
    }
  }

  /** Forks proven by any connected member: a checkpoint must not cover one (FORKED_FEED). */
  private async learnForks (): Promise<void> {
    const peers = new Map(this.opts.libp2p.getConnections().map(c => [c.remotePeer.toString(), c.remotePeer]))
    for (const [id, peer] of peers) {
      if (!this.opts.membership.isMember(id)) continue
      try {
        for (const [a, b] of await this.protocol.forks(peer)) {
          if (await this.opts.store.addFork(a, b)) this.opts.log.warn({ peer: id }, 'checkpoints: a fork learnt from a member')
        }
      } catch (err) {
        this.opts.log.debug({ peer: id, err: (err as Error).message }, 'checkpoints: no forks from a member')
      }
    }
  }

  /** Hashes this host holds at those positions: its chain, its bases, its retained entries. */
  private async heldHashes (at: Head[]): Promise<Map<string, Uint8Array>> {
    const store = this.opts.store
    const out = new Map<string, Uint8Array>()
    for (const h of at) {
      if ((store.head(h.feed)?.seq ?? -1) < h.seq) continue
      const base = store.base(h.feed)
      const hash = base?.seq === h.seq ? base.hash : (await store.get(h.feed, h.seq))?.hash
      if (hash !== undefined) out.set(`${h.feed}/${h.seq}`, hash)
    }
    return out
  }

  /** Standing as of an entry, by the membership folded from this store and the fetched retained entries. */
  private async standing (fetched: StoredEntry[]): Promise<(feed: string, seq: number, ts: number) => { member: boolean, admin: boolean }> {
    const mesh = this.opts.membership.mesh()
    if (mesh === undefined) return () => ({ member: false, admin: false })
    const state = createMembershipState({ meshId: mesh.meshId, founder: mesh.founder })
    for (const kind of MEMBERSHIP_KINDS) for await (const s of this.opts.store.log({ kind })) applyEntry(state, s.entry)
    for (const s of fetched) applyEntry(state, s.entry)
    return (feed, seq, ts) => standingAt(state, feed, seq, ts)
  }

  /**
   * Writes a checkpoint over this host's heads (an admin's job), adopts it and prunes. Refused
   * to a non-admin; retried when this host's own feed moves while it is being built.
   */
  async write (): Promise<StoredEntry> {
    const store = this.opts.store
    const self = this.opts.self
    if (!this.opts.membership.isAdmin(self)) throw new NodeError('NOT_ADMIN', 'only admins may write checkpoints')
    return await this.lock.run(async () => {
      for (;;) {
        const forked = store.forkedFeeds()
        const cover = store.heads().filter(h => !forked.has(h.feed))
        const own = store.head(self) ?? null
        const top = new Map(cover.map(h => [h.feed, h.seq]))
        const entries: StoredEntry[] = []
        const checkpoints: StoredEntry[] = []
        for await (const s of store.log()) {
          if (s.entry.seq <= (top.get(s.entry.feed) ?? -1)) entries.push(s)
          if (s.entry.kind === CHECKPOINT_KIND) checkpoints.push(s)
        }
        const counted = newestCheckpoint(checkpoints.map(s => s.entry), (f, s, t) => this.opts.membership.standingAt(f, s, t))
        const number = Math.max(counted?.number ?? 0, store.checkpoint()?.number ?? 0) + 1
        // the releases to seal, by the rollout fold of what it covers (retained entries decide as all would)
        const rollout = emptyState()
        for (const e of entries) applyRolloutEntry(rollout, e.entry)
        const built = buildCheckpoint(number, cover, entries, sealFloor(rollout, new RolloutMembership(this.opts.membership)))
        // the largest position and hash encode no shorter than the real ones
        assertCheckpointFits({ number, feed: self, seq: Number.MAX_SAFE_INTEGER, hash: new Uint8Array(32), cover: built.cover, refs: built.refs })
        let cp: StoredEntry
        try {
          cp = await store.append(CHECKPOINT_KIND, built.body, own)
        } catch (err) {
          if (isAuditError(err, 'HEAD_MOVED')) continue
          throw err
        }
        await store.adoptCheckpoint(cp.bytes, { cover: built.cover, refs: built.refs })
        this.opts.log.info({ number, covered: built.cover.length, retained: built.refs.length }, 'checkpoint written')
        await this.prune()
        return cp
      }
    })
  }

  /** Drops what the newest checkpoint lets go and is older than the history window; an archive keeps all. */
  async prune (): Promise<number> {
    const { archive, historyDays } = this.opts.config
    if (archive) return 0
    const dropped = await this.opts.store.prune(this.now() - historyDays * DAY_MS)
    if (dropped > 0) this.opts.log.info({ dropped, historyDays }, 'audit log pruned below the checkpoint')
    return dropped
  }
}
