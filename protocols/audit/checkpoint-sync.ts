// The checkpoint protocol: a host that joins, or returns after its peers pruned past what it
// holds, asks a member for the checkpoints it keeps, then a checkpoint's covered heads and
// retained refs, then the retained entries it lacks, in batches. Everything here is transport:
// what is asked is checked by the asker against the signed entry (protocols/checkpoint) and by
// the store before anything is kept. A joiner also asks for the forks its peers hold proof of,
// as it pulls nothing below a cover where it could meet them itself. Served only to allowed
// peers, within a per-peer budget.
import type { PeerId, Stream, Connection } from '@libp2p/interface'
import { PeerBudget, type BudgetLimits } from '../budget.js'
import { request, respond, type Exchange } from '../reqresp.js'
import { bytesEqual, decodeEntry, maxEntryBytes, sha256, type CodecLimits } from './codec.js'
import { AuditError } from './errors.js'
import type { CheckpointRecord } from './layout.js'
import type { EquivocationProof, Head, StoredEntry } from './types.js'
import { BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_HEADS_PER_MESSAGE, type SyncData } from './wire.js'
import { CHECKPOINT_PROTOCOL, MAX_CHECKPOINT_REQUEST_BYTES, MAX_REFS_PER_REQUEST, checkpointExchange, type CheckpointRequest } from './checkpoint-wire.js'

/** proofs served: a fleet with more forks than this has bigger problems than a slow join */
export const MAX_FORKS = 128

/** A joiner fetches the refs in batches of MAX_REFS_PER_REQUEST: a fleet's year of membership and releases is a few hundred requests. */
export const DEFAULT_CHECKPOINT_BUDGET: BudgetLimits = { maxBytes: MAX_CHECKPOINT_REQUEST_BYTES, burst: 256, perSecond: 32 }

export interface CheckpointSyncOptions {
  libp2p: {
    handle: (protocol: string, handler: (stream: Stream, connection: Connection) => void, opts?: { maxInboundStreams?: number, maxOutboundStreams?: number }) => Promise<void>
    unhandle: (protocol: string) => Promise<void>
    dialProtocol: (peer: PeerId, protocol: string, opts?: { signal?: AbortSignal }) => Promise<Stream>
  }
  store: {
    readonly limits: CodecLimits
    checkpoints: () => CheckpointRecord[]
    get: (feed: string, seq: number) => Promise<StoredEntry | undefined>
    equivocations: () => Promise<EquivocationProof[]>
  }
  /** who is served at all (members) */
  allowPeer: (peer: string) => boolean
  budget?: BudgetLimits
  /** a peer that sent a bad request or went over budget (the node penalises) */
  onRefused?: (peer: string, error: AuditError) => void
  /** covered heads plus retained refs accepted for one checkpoint (default 1,000,000: what fits a stored record) */
  maxParts?: number
  requestTimeoutMs?: number
}

export class CheckpointSync {
  private readonly exchange: Exchange<CheckpointRequest, SyncData, AuditError>
  private readonly budget: PeerBudget
  private readonly maxParts: number
  private readonly requestTimeoutMs: number
  private readonly abort = new AbortController()

  constructor (private readonly opts: CheckpointSyncOptions) {
    this.exchange = checkpointExchange(maxEntryBytes(opts.store.limits))
    this.budget = new PeerBudget({ limits: opts.budget ?? DEFAULT_CHECKPOINT_BUDGET, label: 'checkpoint request' })
    this.maxParts = opts.maxParts ?? 1_000_000
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000
  }

  async start (): Promise<void> {
    await this.opts.libp2p.handle(CHECKPOINT_PROTOCOL, (stream, connection) => { void this.serve(stream, connection.remotePeer.toString()) }, { maxInboundStreams: 8, maxOutboundStreams: 8 })
  }

  async stop (): Promise<void> {
    this.abort.abort()
    await this.opts.libp2p.unhandle(CHECKPOINT_PROTOCOL)
  }

  private async serve (stream: Stream, peer: string): Promise<void> {
    const error = await respond(stream, this.exchange, async (req, reply) => {
      if (!this.opts.allowPeer(peer)) throw new AuditError('AUTHOR_REJECTED', 'checkpoints are served to members only')
      if (!this.budget.take(peer, 0)) throw new AuditError('OVER_BUDGET', 'checkpoint requests: over this peer\'s rate')
      await this.answer(req, reply)
    })
    if (error !== undefined && error.code !== 'NOT_FOUND') this.opts.onRefused?.(peer, error)
  }

  private async answer (req: CheckpointRequest, reply: (frame: SyncData) => Promise<void>): Promise<void> {
    const records = this.opts.store.checkpoints()
    if (req.t === 'checkpoints') {
      const entries: Uint8Array[] = []
      for (const r of records.reverse()) {
        const s = await this.opts.store.get(r.feed, r.seq)
        if (s !== undefined) entries.push(s.bytes)
      }
      if (entries.length > 0) await reply({ t: 'entries', entries })
      return
    }
    if (req.t === 'forks') {
      const proofs = (await this.opts.store.equivocations()).slice(0, MAX_FORKS)
      // one frame per proof: two entries at most, whatever their size
      for (const p of proofs) await reply({ t: 'entries', entries: [p.a, p.b] })
      return
    }
    if (req.t !== 'retained') {
      const r = records.find(c => c.feed === req.feed && c.seq === req.seq)
      if (r === undefined) throw new AuditError('NOT_FOUND', `no checkpoint kept at ${req.feed} seq ${req.seq}`)
      const heads = req.t === 'cover' ? r.cover : r.refs
      for (let i = 0; i < heads.length; i += MAX_HEADS_PER_MESSAGE) await reply({ t: 'heads', heads: heads.slice(i, i + MAX_HEADS_PER_MESSAGE) })
      return
    }
    let batch: Uint8Array[] = []
    let bytes = 0
    for (const ref of req.refs) {
      const s = await this.opts.store.get(ref.feed, ref.seq)
      if (s === undefined || !bytesEqual(s.hash, ref.hash)) throw new AuditError('NOT_FOUND', `no entry ${ref.feed} seq ${ref.seq} with that hash`)
      batch.push(s.bytes)
      bytes += s.bytes.length
      if (batch.length >= MAX_BATCH_ENTRIES || bytes >= BATCH_BYTES) {
        await reply({ t: 'entries', entries: batch })
        batch = []
        bytes = 0
      }
    }
    if (batch.length > 0) await reply({ t: 'entries', entries: batch })
  }

  private async ask (peer: PeerId, req: CheckpointRequest, onFrame: (frame: SyncData) => void): Promise<void> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.requestTimeoutMs)])
    const stream = await this.opts.libp2p.dialProtocol(peer, CHECKPOINT_PROTOCOL, { signal })
    await request(stream, this.exchange, req, async (frame) => { onFrame(frame) })
  }

  /** The checkpoint entries `peer` keeps the parts of, newest first (not yet verified: see the store). */
  async offers (peer: PeerId): Promise<StoredEntry[]> {
    const out: StoredEntry[] = []
    await this.ask(peer, { t: 'checkpoints' }, (frame) => {
      if (frame.t !== 'entries' || out.length + frame.entries.length > MAX_BATCH_ENTRIES) throw new AuditError('MESSAGE_MALFORMED', 'checkpoints come as one entries frame')
      for (const bytes of frame.entries) out.push({ entry: decodeEntry(bytes, this.opts.store.limits), bytes, hash: sha256(bytes) })
    })
    return out
  }

  /** The forks `peer` holds proof of, as pairs of entries (checked by the store's addFork). */
  async forks (peer: PeerId): Promise<Array<[Uint8Array, Uint8Array]>> {
    const out: Array<[Uint8Array, Uint8Array]> = []
    await this.ask(peer, { t: 'forks' }, (frame) => {
      if (frame.t !== 'entries' || frame.entries.length !== 2 || out.length >= MAX_FORKS) throw new AuditError('MESSAGE_MALFORMED', 'a fork is one entries frame of two entries')
      out.push([frame.entries[0], frame.entries[1]])
    })
    return out
  }

  /**
   * The covered heads and retained refs `peer` holds for the checkpoint entry at feed/seq: no
   * more than `expect` (the counts the checkpoint signs), and never over maxParts in all.
   */
  async parts (peer: PeerId, at: { feed: string, seq: number }, expect: { cover: number, refs: number }): Promise<{ cover: Head[], refs: Head[] }> {
    if (expect.cover + expect.refs > this.maxParts) throw new AuditError('MESSAGE_TOO_LARGE', `a checkpoint of ${expect.cover} covered heads and ${expect.refs} retained refs, over ${this.maxParts}`)
    const list = async (t: 'cover' | 'refs', max: number): Promise<Head[]> => {
      const out: Head[] = []
      await this.ask(peer, { t, feed: at.feed, seq: at.seq }, (frame) => {
        if (frame.t !== 'heads') throw new AuditError('MESSAGE_MALFORMED', `expected heads, got ${frame.t}`)
        if (out.length + frame.heads.length > max) throw new AuditError('MESSAGE_TOO_LARGE', `a checkpoint's ${t} over the ${max} it signs`)
        out.push(...frame.heads)
      })
      return out
    }
    return { cover: await list('cover', expect.cover), refs: await list('refs', expect.refs) }
  }

  /** The entries named by `refs`, in order, each checked against its ref's hash. */
  async retained (peer: PeerId, refs: Head[]): Promise<StoredEntry[]> {
    const out: StoredEntry[] = []
    for (let i = 0; i < refs.length; i += MAX_REFS_PER_REQUEST) {
      const batch = refs.slice(i, i + MAX_REFS_PER_REQUEST)
      let at = 0
      await this.ask(peer, { t: 'retained', refs: batch }, (frame) => {
        if (frame.t !== 'entries') throw new AuditError('MESSAGE_MALFORMED', `expected entries, got ${frame.t}`)
        for (const bytes of frame.entries) {
          const ref = batch[at++]
          const hash = sha256(bytes)
          if (ref === undefined || !bytesEqual(hash, ref.hash)) throw new AuditError('MESSAGE_MALFORMED', 'an entry that is not the ref asked for')
          const entry = decodeEntry(bytes, this.opts.store.limits)
          if (entry.feed !== ref.feed || entry.seq !== ref.seq) throw new AuditError('MESSAGE_MALFORMED', 'an entry that is not the ref asked for')
          out.push({ entry, bytes, hash })
        }
      })
      if (at !== batch.length) throw new AuditError('MESSAGE_MALFORMED', `asked for ${batch.length} retained entries, got ${at}`)
    }
    return out
  }
}
