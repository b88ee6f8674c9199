// The answering side of sync: a peer's head vector request, or a range of one feed's entries,
// streamed from the store in frames of bounded size. Forked feeds are served only up to the fork.
import type { Stream } from '@libp2p/interface'
import { respond, type Exchange } from '../reqresp.js'
import type { AuditError } from './errors.js'
import type { AuditStore } from './store.js'
import { BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_HEADS_PER_MESSAGE, type SyncData, type SyncRequest } from './wire.js'

export interface ResponderComponents {
  store: Pick<AuditStore, 'heads' | 'forkedFeeds' | 'forkedAt' | 'rangeBytes'>
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
    if (req.t === 'heads') {
      const forked = c.store.forkedFeeds()
      const heads = c.store.heads().filter(h => !forked.has(h.feed))
      for (let i = 0; i < heads.length; i += MAX_HEADS_PER_MESSAGE) await reply({ t: 'heads', heads: heads.slice(i, i + MAX_HEADS_PER_MESSAGE) })
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
