// Witnessing: a host periodically records, in its own feed, the heads it holds of other feeds
// (only those that moved since its last witness entry). Once a head is witnessed and replicated,
// an author who later rewrites that entry is contradicted by someone else's signature:
// findWitnessConflicts() names every stored entry whose hash differs from a witnessed one.
import { FEED_RE } from '../../crypto/ids.js'
import { HASH_BYTES, bytesEqual } from './codec.js'
import type { Head, StoredEntry } from './types.js'

export const WITNESS_KIND = 'witness'
// ~100 bytes per head keeps one witness body far below the 64 KiB body limit
const HEADS_PER_WITNESS = 500

export interface WitnessBody { heads: Array<[string, number, Uint8Array]> }

export function validateWitnessBody (body: unknown): boolean {
  if (body === null || typeof body !== 'object' || Object.keys(body).length !== 1) return false
  const heads = (body as Record<string, unknown>).heads
  return Array.isArray(heads) && heads.length > 0 && heads.length <= HEADS_PER_WITNESS && heads.every(h =>
    Array.isArray(h) && h.length === 3 && typeof h[0] === 'string' && FEED_RE.test(h[0]) &&
    Number.isSafeInteger(h[1]) && h[1] >= 0 && h[2] instanceof Uint8Array && h[2].length === HASH_BYTES)
}

function witnessedHeads (s: StoredEntry): Head[] {
  return (s.entry.body as WitnessBody).heads.map(([feed, seq, hash]) => ({ feed, seq, hash }))
}

/** What findWitnessConflicts reads of the store. */
export interface WitnessedLog {
  log: (q: { kind: string }) => AsyncIterable<StoredEntry>
  get: (feed: string, seq: number) => Promise<StoredEntry | undefined>
}

/** What a Witness reads of the store, and its own feed it appends to. */
export interface WitnessStore {
  readonly feed: string | undefined
  heads: () => Head[]
  forkedFeeds: () => Map<string, number>
  log: (q: { kind: string }) => AsyncIterable<StoredEntry>
  append: (kind: string, body: unknown) => Promise<StoredEntry>
}

export interface WitnessOptions {
  store: WitnessStore
  /** default 5 minutes */
  intervalMs?: number
}

export class Witness {
  private readonly store: WitnessStore
  private readonly intervalMs: number
  private readonly witnessed = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private loaded = false

  constructor (opts: WitnessOptions) {
    this.store = opts.store
    this.intervalMs = opts.intervalMs ?? 5 * 60_000
  }

  async start (): Promise<void> {
    await this.load()
    this.timer ??= setInterval(() => { void this.witnessNow().catch(() => {}) }, this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  // What this host already witnessed, from its own feed, so a restart does not repeat it.
  private async load (): Promise<void> {
    if (this.loaded) return
    for await (const s of this.store.log({ kind: WITNESS_KIND })) {
      if (s.entry.feed !== this.store.feed) continue
      for (const h of witnessedHeads(s)) this.witnessed.set(h.feed, Math.max(h.seq, this.witnessed.get(h.feed) ?? -1))
    }
    this.loaded = true
  }

  /** Appends witness entries for other feeds' heads that moved; returns them (none if nothing moved). */
  async witnessNow (): Promise<StoredEntry[]> {
    await this.load()
    const forked = this.store.forkedFeeds()
    const moved = this.store.heads()
      .filter(h => h.feed !== this.store.feed && !forked.has(h.feed) && h.seq > (this.witnessed.get(h.feed) ?? -1))
      .sort((a, b) => a.feed < b.feed ? -1 : 1)
    const out: StoredEntry[] = []
    for (let i = 0; i < moved.length; i += HEADS_PER_WITNESS) {
      const chunk = moved.slice(i, i + HEADS_PER_WITNESS)
      const body: WitnessBody = { heads: chunk.map(h => [h.feed, h.seq, h.hash]) }
      out.push(await this.store.append(WITNESS_KIND, body))
      for (const h of chunk) this.witnessed.set(h.feed, h.seq)
    }
    return out
  }
}

export interface WitnessConflict {
  /** the witness entry that recorded the head */
  witness: { feed: string, seq: number }
  feed: string
  seq: number
  witnessedHash: Uint8Array
  storedHash: Uint8Array
}

/** Every stored entry whose hash contradicts a head some witness entry in the store recorded. */
export async function findWitnessConflicts (store: WitnessedLog): Promise<WitnessConflict[]> {
  const conflicts: WitnessConflict[] = []
  for await (const s of store.log({ kind: WITNESS_KIND })) {
    for (const h of witnessedHeads(s)) {
      const held = await store.get(h.feed, h.seq)
      if (held !== undefined && !bytesEqual(held.hash, h.hash)) {
        conflicts.push({ witness: { feed: s.entry.feed, seq: s.entry.seq }, feed: h.feed, seq: h.seq, witnessedHash: h.hash, storedHash: held.hash })
      }
    }
  }
  return conflicts
}
