// Which drift entries this host writes: one when drift appears or changes, one when it clears,
// one per repair, never one per check; and at most MAX_PER_WINDOW in a window, so a link an
// attacker flips back and forth, or a disk that rots a little more each check, cannot fill the
// log. The state is this host's own newest drift entry, so a restart neither repeats an entry
// nor forgets an open drift.
import type { DriftBody, DriftState } from '../../protocols/drift/index.js'

export const WINDOW_MS = 3_600_000
/** a repaired drift takes three (detected, repair, cleared) */
export const MAX_PER_WINDOW = 12

/** The drift an entry is about: two checks that see the same are one drift. */
export function driftKey (b: Pick<DriftBody, 'what' | 'activated' | 'profile' | 'desired' | 'modified' | 'modifiedCount'>): string {
  return JSON.stringify([b.what, b.activated ?? null, b.profile ?? null, b.desired ?? null, b.modified ?? [], b.modifiedCount ?? 0])
}

export class DriftLedger {
  private last: { seq: number, body: DriftBody } | null = null
  /** when this host wrote its recent drift entries (its own clock, its own entries) */
  private readonly written: Array<{ seq: number, ts: number }> = []

  constructor (private readonly now: () => number = Date.now) {}

  /** Files one of this host's own drift entries, from the log or just appended; any order. */
  note (seq: number, ts: number, body: DriftBody): void {
    if (ts > this.now() - WINDOW_MS && !this.written.some((w) => w.seq === seq)) {
      this.written.push({ seq, ts })
      this.written.sort((x, y) => x.ts - y.ts)
    }
    if (this.last === null || seq > this.last.seq) this.last = { seq, body }
  }

  /** The drift this host reported and has not reported cleared. */
  open (): DriftBody | null {
    return this.last !== null && this.last.body.state !== 'cleared' ? this.last.body : null
  }

  /**
   * The entry a check's finding calls for, if any: `detected` for drift not yet reported as it is,
   * `cleared` for none after an open one. Null when nothing is to be written.
   */
  next (found: DriftBody): DriftState | null {
    const open = this.open()
    if (found.what.length === 0) return open !== null ? 'cleared' : null
    return open !== null && driftKey(open) === driftKey(found) ? null : 'detected'
  }

  /** Whether this very drift was repaired once already: one try per drift, not one per check. */
  repaired (found: DriftBody): boolean {
    return this.last?.body.state === 'repair' && driftKey(this.last.body) === driftKey(found)
  }

  /** Whether another entry fits in the window now. */
  allowed (): boolean {
    const since = this.now() - WINDOW_MS
    while (this.written.length > 0 && this.written[0].ts <= since) this.written.shift()
    return this.written.length < MAX_PER_WINDOW
  }
}
