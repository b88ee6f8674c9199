// A fleet's history, day by day, as real signed entries of real feeds (simulations/harness/
// signed-feeds.ts). Each day: `churnPerDay` membership changes by the admin (an admit of a new
// peer, then a revoke of one admitted earlier), `releasesPerDay` releases by the admin spread
// over the day, each followed on every host by the first `outcomesPerRelease` of apply-start,
// apply-ok (20 s later) and soaked (a minute later); every host's witness entries where its
// WitnessSchedule (protocols/audit/witness-schedule.ts) puts them, over every other host's
// entries; and at the end of each day but the last a checkpoint by the admin, built by
// protocols/checkpoint's buildCheckpoint over the previous checkpoint's retained entries and the
// day's entries (the rule composes, retain.ts: what a windowed host does), sealing every release
// but the day's. A witness commits to
// the fleet's heads at the start of the history: its body costs what the host's own would
// (same count, a 32-byte root); no vector is computed per witness.
import { buildCheckpoint, CHECKPOINT_KIND } from '../../protocols/checkpoint/index.js'
import { witnessBody } from '../../protocols/audit/witness-body.js'
import { WitnessSchedule, witnessPolicy } from '../../protocols/audit/witness-schedule.js'
import type { Head, StoredEntry } from '../../protocols/audit/types.js'
import { signedFeed, signedFeeds, type SignedFeed } from '../harness/signed-feeds.js'

export const DAY_MS = 86_400_000
const PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-fleet'
const OUTCOME_DELAYS_MS = [1_000, 21_000, 61_000]

export interface Workload {
  hosts: number
  days: number
  releasesPerDay: number
  /** 1..3: apply-start, apply-ok, soaked */
  outcomesPerRelease: number
  churnPerDay: number
  seed: number
}

export interface Checkpoint { entry: StoredEntry, cover: Head[], refs: Head[], retained: StoredEntry[] }

interface Planned { t: number, author: number, kind: string, body: object }

export class History {
  /** the entries of each day, in the order they were written */
  onDay?: (day: number, entries: StoredEntry[], cp: Checkpoint | undefined) => void
  entries = 0
  private feeds: SignedFeed[] = []
  private schedules: WitnessSchedule[] = []
  private retained: StoredEntry[] = []
  private readonly heads = new Map<string, Head>()
  private churned: string[] = []
  private releases = 0

  constructor (readonly w: Workload, readonly start: number) {}

  async run (): Promise<void> {
    const { w } = this
    this.feeds = await signedFeeds(w.seed, w.hosts)
    this.schedules = this.feeds.map(f => new WitnessSchedule(witnessPolicy(f.feed), this.start))
    const vector = this.feeds.slice(1).map(f => ({ feed: f.feed, seq: 0, hash: new Uint8Array(32) }))
    const witness = witnessBody(vector)
    for (let d = 0; d < w.days; d++) {
      const plan = await this.plan(d)
      // each host's witnesses: others' witnesses never make one due, so each host's schedule
      // depends only on the planned entries (and its own witnesses, which it skips)
      for (let h = 0; h < w.hosts; h++) {
        const s = this.schedules[h]
        const extra: Planned[] = []
        for (const p of plan) {
          for (let at = s.nextAt(); at !== undefined && at <= p.t; at = s.nextAt()) {
            extra.push({ t: at, author: h, kind: 'witness', body: witness })
            s.done(at)
          }
          s.onEntry({ feed: this.feeds[p.author].feed, kind: p.kind }, p.t)
        }
        const end = this.start + (d + 1) * DAY_MS
        for (let at = s.nextAt(); at !== undefined && at < end; at = s.nextAt()) {
          extra.push({ t: at, author: h, kind: 'witness', body: witness })
          s.done(at)
        }
        plan.push(...extra)
      }
      plan.sort((a, b) => a.t - b.t || a.author - b.author)
      const day: StoredEntry[] = plan.map(p => this.append(p.author, p.t, p.kind, p.body))
      const cp = d < w.days - 1 ? this.checkpoint(d, day) : undefined
      if (cp !== undefined) day.push(cp.entry)
      this.onDay?.(d, day, cp)
    }
  }

  private append (h: number, t: number, kind: string, body: object): StoredEntry {
    const s = this.feeds[h].append(t, kind, body)
    this.heads.set(s.entry.feed, { feed: s.entry.feed, seq: s.entry.seq, hash: s.hash })
    this.entries++
    return s
  }

  /** Membership changes, releases and their outcomes of day d, in time order (witnesses come after). */
  private async plan (d: number): Promise<Planned[]> {
    const { w } = this
    const t0 = this.start + d * DAY_MS
    const plan: Planned[] = []
    if (d === 0) {
      plan.push({ t: t0, author: 0, kind: 'genesis', body: { mesh: 'sim-fleet', name: 'sim', founder: this.feeds[0].feed } })
      this.feeds.slice(1).forEach((f, i) => plan.push({ t: t0 + 1 + i, author: 0, kind: 'admit', body: { peer: f.feed, role: 'host', tags: ['fleet'] } }))
    }
    for (let c = 0; c < w.churnPerDay; c++) {
      const t = t0 + Math.floor((c + 0.25) * DAY_MS / w.churnPerDay)
      const peer = (await signedFeed(w.seed, w.hosts + this.churned.length)).feed
      this.churned.push(peer)
      plan.push({ t, author: 0, kind: 'admit', body: { peer, role: 'host', tags: ['fleet'] } })
      if (this.churned.length > 1) plan.push({ t: t + 1000, author: 0, kind: 'revoke', body: { peer: this.churned[this.churned.length - 2], after: -1 } })
    }
    for (let r = 0; r < w.releasesPerDay; r++) {
      const t = t0 + Math.floor((r + 0.5) * DAY_MS / w.releasesPerDay)
      const release = `rel-${++this.releases}`
      plan.push({ t, author: 0, kind: 'release', body: { id: release, number: this.releases, targets: [{ tag: 'fleet', path: PATH, sources: ['peers'] }], waves: [{ percent: 100, gate: { healthy: 90, soakMs: 30_000 } }], maxFailures: 10, autoRevert: true } })
      for (let h = 0; h < w.hosts; h++) {
        const attempt = `${String(t).padStart(15, '0')}-${h.toString(16).padStart(8, '0')}`
        const bodies = [
          { kind: 'apply-start', body: { release, path: PATH, wave: 0, attempt } },
          { kind: 'apply-ok', body: { release, path: PATH, healthyAt: t + 20_000, attempt } },
          { kind: 'soaked', body: { release, path: PATH, attempt, soakMs: 30_000 } }
        ]
        for (let k = 0; k < w.outcomesPerRelease; k++) plan.push({ t: t + OUTCOME_DELAYS_MS[k] + h * 10, author: h, ...bodies[k] })
      }
    }
    return plan.sort((a, b) => a.t - b.t || a.author - b.author)
  }

  /** The admin's checkpoint at the end of day d over every head it holds (all of them: one writer sees all). */
  private checkpoint (d: number, day: StoredEntry[]): Checkpoint {
    const cover = [...this.heads.values()]
    const among = [...this.retained, ...day]
    // every release is past its gate on every host by the day's end, so protocols/rollout's
    // sealFloor seals all but the newest (test/checkpoint/seal.test.ts drives that policy)
    const built = buildCheckpoint(d + 1, cover, among, this.releases)
    const byRef = new Map(among.map(s => [`${s.entry.feed}/${s.entry.seq}`, s]))
    this.retained = built.refs.map(r => byRef.get(`${r.feed}/${r.seq}`) as StoredEntry)
    const entry = this.append(0, this.start + (d + 1) * DAY_MS - 1000, CHECKPOINT_KIND, built.body)
    for (const s of this.schedules) s.onEntry({ feed: entry.entry.feed, kind: CHECKPOINT_KIND }, entry.entry.ts)
    return { entry, cover: built.cover, refs: built.refs, retained: this.retained }
  }
}
