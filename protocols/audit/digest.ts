// The digest exchange of sync on top of reconcile.ts: this host's heads as an index kept in step
// with the store, the requester's rounds of queries to one peer, and the responder's reply cut
// into frames. A repair between two up-to-date hosts is one query and one empty reply.
import { AuditError } from './errors.js'
import { MAX_FANOUT, Reconciliation, SortedHeads, answerDigest, type DigestItem, type DigestQuery, type DigestReply, type HeadIndex } from './reconcile.js'
import type { AuditStore } from './store.js'
import type { Head } from './types.js'
import { MAX_HEADS_PER_MESSAGE } from './wire.js'

/** digest items per reply frame (a frame stays far below the frame limit) */
const ITEMS_PER_FRAME = 512

/**
 * This host's heads, forked feeds left out (they are not served past the fork), as a digest
 * index. Brought in step with the store on each use rather than by its events: a checkpoint
 * adopted or a feed pruned changes heads without an entry event, and a head already indexed
 * costs one comparison, not a hash.
 */
export class HeldHeads {
  private readonly store: Pick<AuditStore, 'heads' | 'forkedFeeds'>
  private index = new SortedHeads()

  constructor (store: Pick<AuditStore, 'heads' | 'forkedFeeds'>) {
    this.store = store
  }

  current (): HeadIndex {
    const forked = this.store.forkedFeeds()
    const heads = this.store.heads().filter(h => !forked.has(h.feed))
    for (const h of heads) this.index.set(h)
    // a feed indexed before is gone (forked since, or dropped): rare, so start over
    if (this.index.size !== heads.length) this.index = new SortedHeads(heads)
    return this.index
  }
}

/**
 * The requester's rounds with one peer: `ask` sends a query and hands over each reply frame.
 * Resolves to the heads the peer offered where the two vectors differ (at most `maxOffered`).
 */
export async function reconcileWith (index: HeadIndex, ask: (q: DigestQuery, onFrame: (reply: DigestReply) => void) => Promise<void>, maxOffered: number): Promise<Head[]> {
  const r = new Reconciliation(index, { maxOffered })
  let q: DigestQuery | undefined = r.first()
  while (q !== undefined) {
    const items: DigestItem[] = []
    // what one honest reply holds at most (each item then holds at most MAX_LEAF heads):
    // checked as frames arrive, before they pile up
    const maxItems = q.ranges.length * MAX_FANOUT
    await ask(q, (reply) => {
      if (items.length + reply.items.length > maxItems) throw new AuditError('MESSAGE_TOO_LARGE', `digest reply over ${maxItems} items`)
      items.push(...reply.items)
    })
    q = r.next({ t: 'digest', items })
  }
  return r.offered
}

/** The responder's reply to `q`, in frames of bounded size; none when everything matched. */
export function digestFrames (index: HeadIndex, q: DigestQuery): DigestReply[] {
  const { items } = answerDigest(index, q)
  const frames: DigestReply[] = []
  let frame: DigestItem[] = []
  let heads = 0
  for (const item of items) {
    const n = 'heads' in item ? item.heads.length : 0
    if (frame.length > 0 && (frame.length >= ITEMS_PER_FRAME || heads + n > MAX_HEADS_PER_MESSAGE)) {
      frames.push({ t: 'digest', items: frame })
      frame = []
      heads = 0
    }
    frame.push(item)
    heads += n
  }
  // nothing at all when every range matched: the end frame says it
  if (frame.length > 0) frames.push({ t: 'digest', items: frame })
  return frames
}
