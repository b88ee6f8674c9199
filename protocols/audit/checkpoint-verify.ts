// What a whole-log check adds for a log that starts from a checkpoint (a pruned store, or an
// export of one): the checkpoint entry is in the log and commits to the covered heads and the
// retained refs the log names; each feed's chain runs from its base through its covered head;
// every detached entry is one the checkpoint retains. The checkpoint's signature is checked as
// any entry's; its author's standing is a membership question, left to the folds.
import { bytesEqual } from './codec.js'
import { AuditError } from './errors.js'
import { headsRoot } from './heads-root.js'
import { refId } from './checkpoint-store.js'
import type { CheckpointRecord } from './layout.js'
import type { Entry, Head } from './types.js'

export class CoverCheck {
  private readonly cover = new Map<string, Head>()
  private readonly refs: Set<string>
  private readonly reached = new Set<string>()
  private seen = false

  constructor (private readonly record: CheckpointRecord, bases: ReadonlyMap<string, Head>) {
    for (const c of record.cover) this.cover.set(c.feed, c)
    this.refs = new Set(record.refs.map(refId))
    for (const b of bases.values()) {
      const c = this.cover.get(b.feed)
      // a feed an earlier checkpoint covered and this one leaves out (it forked since) keeps its base
      if (c === undefined) continue
      if (b.seq > c.seq) throw new AuditError('STORE_CORRUPT', `feed ${b.feed} starts at seq ${b.seq}, above what the checkpoint covers`)
      if (b.seq === c.seq) this.chain({ feed: b.feed, seq: b.seq } as Entry, b.hash)
    }
  }

  /** A chain entry: at a covered head it must be the covered entry; the checkpoint must commit to the parts. */
  chain (entry: Entry, hash: Uint8Array): void {
    const c = this.cover.get(entry.feed)
    if (c !== undefined && c.seq === entry.seq) {
      if (!bytesEqual(c.hash, hash)) throw new AuditError('STORE_CORRUPT', `feed ${entry.feed} seq ${entry.seq} is not the entry checkpoint ${this.record.number} covers`)
      this.reached.add(entry.feed)
    }
    if (entry.feed === this.record.feed && entry.seq === this.record.seq) {
      const body = entry.body as { cover?: unknown, retain?: unknown } | null
      if (!bytesEqual(hash, this.record.hash) || !(body?.cover instanceof Uint8Array) || !(body.retain instanceof Uint8Array) ||
        !bytesEqual(body.cover, headsRoot(this.record.cover)) || !bytesEqual(body.retain, headsRoot(this.record.refs))) {
        throw new AuditError('STORE_CORRUPT', `checkpoint ${this.record.number} does not commit to the covered heads and retained entries this log names`)
      }
      this.seen = true
    }
  }

  /** A detached entry below a base: one the checkpoint retains. */
  retained (entry: Entry, hash: Uint8Array): void {
    if (!this.refs.has(refId({ feed: entry.feed, seq: entry.seq, hash }))) throw new AuditError('STORE_CORRUPT', `feed ${entry.feed} seq ${entry.seq} is kept detached but checkpoint ${this.record.number} does not retain it`)
  }

  /** After the walk: what was never reached. */
  finish (): { feed: string, seq: number, error: AuditError } | undefined {
    if (!this.seen) return { feed: this.record.feed, seq: this.record.seq, error: new AuditError('STORE_CORRUPT', `checkpoint ${this.record.number} entry is missing`) }
    for (const c of this.cover.values()) {
      if (!this.reached.has(c.feed)) return { feed: c.feed, seq: c.seq, error: new AuditError('STORE_CORRUPT', `feed ${c.feed} does not reach the head checkpoint ${this.record.number} covers`) }
    }
    return undefined
  }
}
