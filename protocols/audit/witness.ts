// Witnessing: a host records in its own feed a commitment to the heads it holds of other feeds
// (witness-body.ts), when witness-schedule.ts says one is due. Once a head is witnessed and
// replicated, an author who later rewrites that entry is contradicted by someone else's
// signature: findWitnessConflicts() names every stored entry whose hash differs from a witnessed
// one, over the heads of version 1 bodies and the vectors behind version 2 ones that this host
// holds (its own) or fetched for the check (checked against the signed root).
import { Mutex } from '../mutex.js'
import { bytesEqual } from './codec.js'
import type { EquivocationProof, Head, StoredEntry, SyncLogger } from './types.js'
import { WITNESS_KIND, checkWitnessedVector, isV2, v1Heads, witnessBody, witnessVector, type WitnessBody } from './witness-body.js'
import { WitnessSchedule, witnessPolicy, type WitnessPolicy } from './witness-schedule.js'
import { WitnessVectors, type VectorDb } from './witness-vectors.js'

/** What findWitnessConflicts reads of the store. */
export interface WitnessedLog {
  log: (q: { kind: string }) => AsyncIterable<StoredEntry>
  get: (feed: string, seq: number) => Promise<StoredEntry | undefined>
}

/** The vector behind a version 2 witness entry, if the caller has it (undefined: not checked). */
export type VectorSource = (witness: StoredEntry) => Promise<readonly Head[] | undefined>

/** What a Witness reads of the store, the events it follows, and its own feed it appends to. */
export interface WitnessStore {
  readonly feed: string | undefined
  heads: () => Head[]
  forkedFeeds: () => Map<string, number>
  forkedAt: (feed: string) => number | undefined
  get: (feed: string, seq: number) => Promise<StoredEntry | undefined>
  range: (feed: string, fromSeq: number, toSeq: number) => Promise<StoredEntry[]>
  append: (kind: string, body: unknown) => Promise<StoredEntry>
  on: ((event: 'entry', listener: (s: StoredEntry) => void) => unknown) & ((event: 'equivocation', listener: (p: EquivocationProof) => void) => unknown)
  off: ((event: 'entry', listener: (s: StoredEntry) => void) => unknown) & ((event: 'equivocation', listener: (p: EquivocationProof) => void) => unknown)
}

/** Wall clock and timers; tests pass their own to run days of schedule in no time. */
export interface WitnessClock {
  now: () => number
  /** `fn` returns the promise of the witness it starts (never rejected), for a clock that waits for it */
  setTimeout: (fn: () => unknown, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

const systemClock: WitnessClock = {
  now: Date.now,
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => { clearTimeout(handle as NodeJS.Timeout) }
}

// Node's timers overflow past 2^31 - 1 ms; a longer wait is re-armed when it fires.
const MAX_TIMER_MS = 2 ** 31 - 1
export const DEFAULT_KEEP_VECTORS_MS = 30 * 24 * 60 * 60_000

export interface WitnessOptions {
  store: WitnessStore
  /** where the vectors behind this host's witness entries are kept: the audit sublevel */
  db: VectorDb
  /** defaults: witnessPolicy(store.feed) */
  policy?: Partial<WitnessPolicy>
  /** how long vectors are kept (the history window, default 30 days; Infinity on an archive host); the newest is always kept */
  keepVectorsMs?: number
  clock?: WitnessClock
  logger?: SyncLogger
}

export class Witness {
  private readonly store: WitnessStore
  private readonly self: string
  private readonly vectors: WitnessVectors
  private readonly schedule: WitnessSchedule
  private readonly clock: WitnessClock
  private readonly keepVectorsMs: number
  private readonly logger: SyncLogger | undefined
  private readonly lock = new Mutex()
  /** root of this host's newest witness entry: a witness that would repeat it is not written */
  private lastRoot: Uint8Array | undefined
  private running = false
  private timer: unknown
  private armedAt: number | undefined

  constructor (opts: WitnessOptions) {
    if (opts.store.feed === undefined) throw new TypeError('a Witness needs a store that can append to this host\'s feed')
    this.store = opts.store
    this.self = opts.store.feed
    this.vectors = new WitnessVectors(opts.db)
    this.clock = opts.clock ?? systemClock
    this.schedule = new WitnessSchedule(witnessPolicy(this.self, opts.policy), this.clock.now())
    this.keepVectorsMs = opts.keepVectorsMs ?? DEFAULT_KEEP_VECTORS_MS
    this.logger = opts.logger
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    // listening first: an entry stored during recovery is counted twice at worst, never missed
    this.store.on('entry', this.onEntry)
    this.store.on('equivocation', this.onFork)
    await this.lock.run(async () => { await this.recover() })
    this.arm()
  }

  /** Stops the timer and the listeners, then waits for a witness being written (before the store closes). */
  async stop (): Promise<void> {
    this.running = false
    this.store.off('entry', this.onEntry)
    this.store.off('equivocation', this.onFork)
    this.disarm()
    await this.lock.run(async () => {})
  }

  private readonly onEntry = (s: StoredEntry): void => {
    if (this.store.forkedAt(s.entry.feed) !== undefined) return
    this.schedule.onEntry(s.entry, this.clock.now())
    this.arm()
  }

  private readonly onFork = (): void => {
    this.schedule.onFork(this.clock.now())
    this.arm()
  }

  /**
   * What the last witness did not cover, from the log: the entries past the heads its vector
   * holds go through the schedule as if they had just arrived. Without that vector (none
   * written yet, a version 1 witness, a vector lost) one witness is due soon.
   */
  private async recover (): Promise<void> {
    const now = this.clock.now()
    const last = await this.lastWitness()
    const body = last?.entry.body as WitnessBody | undefined
    const baseline = body !== undefined && isV2(body) ? await this.vectors.get(body.root) : undefined
    this.lastRoot = baseline === undefined ? undefined : (body as { root: Uint8Array }).root
    await this.prune(now)
    const held = witnessVector(this.store.heads(), this.self, this.store.forkedFeeds())
    if (baseline === undefined) {
      if (held.length > 0) this.schedule.onFork(now)
      return
    }
    const witnessed = new Map(baseline.map(h => [h.feed, h.seq]))
    for (const h of held) {
      const from = (witnessed.get(h.feed) ?? -1) + 1
      if (from > h.seq) continue
      for (const s of await this.store.range(h.feed, from, h.seq)) this.schedule.onEntry(s.entry, now)
    }
    if (baseline.some(h => this.store.forkedAt(h.feed) !== undefined)) this.schedule.onFork(now)
  }

  private async lastWitness (): Promise<StoredEntry | undefined> {
    for (let seq = this.store.heads().find(h => h.feed === this.self)?.seq ?? -1; seq >= 0; seq--) {
      const s = await this.store.get(this.self, seq)
      if (s === undefined) return undefined
      if (s.entry.kind === WITNESS_KIND) return s
    }
    return undefined
  }

  /**
   * Writes a witness of the heads held now, unless there are none or they are the ones the last
   * witness committed to. The vector is fsynced before the entry that signs its root.
   */
  async witnessNow (): Promise<StoredEntry | undefined> {
    try {
      return await this.lock.run(async () => {
        const now = this.clock.now()
        // one synchronous step: what arrives after this snapshot makes the next witness due
        const vector = witnessVector(this.store.heads(), this.self, this.store.forkedFeeds())
        this.schedule.done(now)
        if (vector.length === 0) return undefined
        const body = witnessBody(vector)
        if (this.lastRoot !== undefined && bytesEqual(this.lastRoot, body.root)) return undefined
        await this.vectors.put(now, vector)
        const entry = await this.store.append(WITNESS_KIND, body)
        this.lastRoot = body.root
        await this.prune(now)
        return entry
      })
    } finally {
      this.arm()
    }
  }

  private async prune (now: number): Promise<void> {
    if (Number.isFinite(this.keepVectorsMs)) await this.vectors.prune(now - this.keepVectorsMs, this.lastRoot)
  }

  /** The vector behind this host's witness entry `seq` (the `witnessed` request); undefined if not held. */
  async witnessedVector (seq: number): Promise<Head[] | undefined> {
    const s = await this.store.get(this.self, seq)
    return s === undefined ? undefined : await this.heldVector(s)
  }

  /** A VectorSource for findWitnessConflicts: the vectors this host holds, its own. */
  readonly heldVector = async (s: StoredEntry): Promise<Head[] | undefined> => {
    const body = s.entry.body as WitnessBody
    if (s.entry.feed !== this.self || s.entry.kind !== WITNESS_KIND || !isV2(body)) return undefined
    return await this.vectors.get(body.root)
  }

  private arm (): void {
    const at = this.running ? this.schedule.nextAt() : undefined
    if (at === this.armedAt) return
    this.disarm()
    if (at === undefined) return
    this.armedAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.armedAt = undefined
      return this.tick()
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - this.clock.now())))
  }

  private disarm (): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.armedAt = undefined
  }

  private async tick (): Promise<void> {
    if (!this.schedule.due(this.clock.now())) {
      this.arm()
      return
    }
    try {
      await this.witnessNow()
    } catch (err) {
      this.logger?.warn({ err }, 'witness entry not written')
    }
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

/**
 * Every stored entry whose hash contradicts a head some witness entry in the store committed
 * to: the heads of version 1 bodies, and of version 2 ones whose vector `vectorOf` supplies. A
 * supplied vector that does not hash to the entry's signed root throws WITNESS_VECTOR_MISMATCH.
 */
export async function findWitnessConflicts (store: WitnessedLog, vectorOf?: VectorSource): Promise<WitnessConflict[]> {
  const conflicts: WitnessConflict[] = []
  for await (const s of store.log({ kind: WITNESS_KIND })) {
    const body = s.entry.body as WitnessBody
    let heads: readonly Head[]
    if (isV2(body)) {
      const vector = await vectorOf?.(s)
      if (vector === undefined) continue
      heads = checkWitnessedVector(s, vector)
    } else {
      heads = v1Heads(body)
    }
    for (const h of heads) {
      const held = await store.get(h.feed, h.seq)
      if (held !== undefined && !bytesEqual(held.hash, h.hash)) {
        conflicts.push({ witness: { feed: s.entry.feed, seq: s.entry.seq }, feed: h.feed, seq: h.seq, witnessedHash: h.hash, storedHash: held.hash })
      }
    }
  }
  return conflicts
}
