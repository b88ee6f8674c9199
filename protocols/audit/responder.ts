// The answering side of sync: a digest query about this host's heads, its whole head vector, the
// vector it committed to in one of its witness entries, or a range of one feed's entries,
// streamed from the store in frames of bounded size. Forked feeds are served only up to the fork.
import type { Stream } from '@libp2p/interface'
import { respond, type Exchange } from '../reqresp.js'
import { digestFrames } from './digest.js'
import { AuditError } from './errors.js'
import type { HeadIndex } from './reconcile.js'
import type { AuditStore } from './store.js'
import type { Head } from './types.js'
import { BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_HEADS_PER_MESSAGE, type SyncData, type SyncRequest } from './wire.js'

export interface ResponderComponents {
  store: Pick<AuditStore, 'heads' | 'forkedFeeds' | 'forkedAt' | 'rangeBytes'>
  /** this host's heads but forked feeds, as a digest index */
  index: () => HeadIndex
  /** the vector this host witnessed in its own witness entry `seq`, if it still holds it */
  witnessed?: (seq: number) => Promise<Head[] | undefined>
  exchange: Exchange<SyncRequest, SyncData, AuditError>
  /** entries served per request; the puller asks again for the rest */
  maxRangeEntries: number
  /** spends the requester's budget for one request; throws OVER_BUDGET when it has none left */
  spend: (req: SyncRequest) => void
}

/** Answers one request on `stream`; returns the error the peer was told about, if any. */
export async function respondSync (stream: Stream, c: ResponderComponents): Promise<AuditError | undefined> {
  return await respond(stream, c.exchange, async (req, reply) => {
    c.spend(req)
    const sendHeads = async (heads: Head[]): Promise<void> => {
      for (let i = 0; i < heads.length; i += MAX_HEADS_PER_MESSAGE) await reply({ t: 'heads', heads: heads.slice(i, i + MAX_HEADS_PER_MESSAGE) })
    }
    if (req.t === 'digest') {
      for (const frame of digestFrames(c.index(), req)) await reply(frame)
      return
    }
    if (req.t === 'heads') {
      // kept for hosts that still ask for whole vectors (older versions during a rolling upgrade)
      const forked = c.store.forkedFeeds()
      await sendHeads(c.store.heads().filter(h => !forked.has(h.feed)))
      return
    }
    if (req.t === 'witnessed') {
      const heads = await c.witnessed?.(req.seq)
      if (heads === undefined) throw new AuditError('NOT_FOUND', `no witnessed vector of seq ${req.seq} here`)
      await sendHeads(heads)
      return
    }
    const forkedAt = c.store.forkedAt(req.feed)
    const last = Math.min(req.to, req.from + c.maxRangeEntries - 1, forkedAt === undefined ? Infinity : forkedAt - 1)
    let batch: Uint8Array[] = []
    let bytes = 0
    for await (const entry of c.store.rangeBytes(req.feed, req.from, last)) {
      batch.push(entry)
      bytes += entry.length
      if (batch.length >= MAX_BATCH_ENTRIES || bytes >= BATCH_BYTES) {
        await reply({ t: 'entries', entries: batch })
        batch = []
        bytes = 0
      }
    }
    if (batch.length > 0) await reply({ t: 'entries', entries: batch })
  })
}
