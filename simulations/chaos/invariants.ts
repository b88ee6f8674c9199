// What must hold after (and during) every chaos run. A Monitor mirrors every host's store as it
// fills and judges each apply-start a host writes against the signed entries that host held at
// that moment (the oracle); the functions below judge the converged log and the hosts' views.
import type { Entry, StoredEntry } from '../../protocols/audit/index.js'
import { decide, releaseStatus, type Decision } from '../../protocols/rollout/index.js'
import type { SimHost } from '../harness/sim-host.js'
import { membershipOf, truthOf } from './oracle.js'
import { TrailRecorder, type Trail } from './trail.js'

export interface Violation { invariant: string, detail: string }

/** A halt a host held for this long and still applied is a violation (the agent decides within a tick of an entry). */
const HALT_GRACE_MS = 1000
const HALT_KINDS = new Set(['apply-failed', 'rollback', 'overdue', 'release-control'])

/** Every host's log as it grew, and the violations seen while it did. */
export class Monitor {
  readonly violations: Violation[] = []
  /** host → the entries its store holds, in the order it stored them */
  private readonly held = new Map<string, Map<string, Entry>>()
  /** host → release → when the entries it held first said halted */
  private readonly haltSeen = new Map<string, Map<string, number>>()
  /** what each host held when it wrote, and when it first held each entry (safety.ts reads it) */
  readonly recorder = new TrailRecorder()

  constructor (private readonly meshId: string, private readonly founder: string, private readonly name: (peer: string) => string) {}

  /** Follows one incarnation of `host`: call after each start, before the host acts on anything. */
  async attach (host: SimHost): Promise<void> {
    const mine = this.held.get(host.peerId) ?? new Map<string, Entry>()
    this.held.set(host.peerId, mine)
    // what it held when it went down, which it still held when it wrote anything before this call
    const before = this.recorder.headsOf(host.peerId)
    host.store.on('entry', (s: StoredEntry) => { this.observe(host.peerId, mine, s.entry) })
    for await (const s of host.store.log()) {
      if (mine.has(`${s.entry.feed}/${s.entry.seq}`)) continue
      mine.set(`${s.entry.feed}/${s.entry.seq}`, s.entry)
      this.recorder.stored(host.peerId, s.entry, Date.now(), before)
    }
  }

  entriesOf (peer: string): Entry[] { return [...this.held.get(peer)?.values() ?? []] }

  /** Every entry any host held (a silent host's own included), with what the recorder saw of them. */
  trail (): Trail {
    const all = new Map<string, Entry>()
    for (const mine of this.held.values()) for (const [k, e] of mine) all.set(k, e)
    return this.recorder.trail([...all.values()])
  }

  private observe (self: string, mine: Map<string, Entry>, e: Entry): void {
    const key = `${e.feed}/${e.seq}`
    if (mine.has(key)) return
    mine.set(key, e)
    this.recorder.stored(self, e, Date.now())
    const release = (e.body as { release?: unknown }).release
    if (typeof release !== 'string') return
    if (HALT_KINDS.has(e.kind)) {
      const seen = this.haltSeen.get(self) ?? new Map<string, number>()
      this.haltSeen.set(self, seen)
      const held = [...mine.values()]
      if (!seen.has(release) && truthOf(held, membershipOf(held, this.meshId, this.founder), release)?.halted === true) seen.set(release, Date.now())
    }
    if (e.kind === 'apply-start' && e.feed === self) this.judgeStart(self, [...mine.values()], e, release)
  }

  private judgeStart (self: string, held: Entry[], e: Entry, release: string): void {
    const truth = truthOf(held, membershipOf(held, this.meshId, this.founder), release)
    const who = `${this.name(self)} (${self}) started ${release} attempt ${String((e.body as { attempt?: unknown }).attempt)}`
    if (truth?.plan === undefined) {
      this.violations.push({ invariant: 'gate', detail: `${who} without holding the release's basis` })
      return
    }
    const k = truth.plan.waveOf.get(self)
    if (k === undefined) this.violations.push({ invariant: 'gate', detail: `${who} though the release's frozen plan does not include it` })
    for (let j = 0; j < (k ?? 0); j++) {
      if (!truth.gateMet(j)) this.violations.push({ invariant: 'gate', detail: `${who} in wave ${k} before wave ${j}'s gate was met by the attestations it held` })
    }
    const haltAt = this.haltSeen.get(self)?.get(release)
    if (haltAt !== undefined && Date.now() - haltAt > HALT_GRACE_MS) this.violations.push({ invariant: 'halt', detail: `${who} ${Date.now() - haltAt} ms after the entries it held halted the release (failed: ${truth.failed.map(this.name).join(', ')})` })
  }
}

/**
 * Every attempt in the log has one apply-start and exactly one terminal outcome (apply-ok, or
 * apply-failed; apply-ok then apply-failed when its soak failed), unless its host went silent for
 * good and a 'deadline' overdue names it.
 */
export function checkOutcomes (log: Entry[], name: (peer: string) => string): Violation[] {
  const out: Violation[] = []
  const attempts = new Map<string, { host: string, release: string, starts: number, oks: number, fails: number }>()
  const overdue = new Set(log.filter((e) => e.kind === 'overdue' && (e.body as { why: string }).why === 'deadline')
    .flatMap((e) => (e.body as { hosts: string[], release: string }).hosts.map((h) => `${h}/${(e.body as { release: string }).release}`)))
  for (const e of log) {
    if (!['apply-start', 'apply-ok', 'apply-failed'].includes(e.kind)) continue
    const body = e.body as { release: string, attempt?: string }
    if (body.attempt === undefined) {
      out.push({ invariant: 'outcome', detail: `${name(e.feed)}#${e.seq} ${e.kind} for ${body.release} names no attempt` })
      continue
    }
    const key = `${e.feed}/${body.attempt}`
    const a = attempts.get(key) ?? { host: e.feed, release: body.release, starts: 0, oks: 0, fails: 0 }
    attempts.set(key, a)
    if (e.kind === 'apply-start') a.starts++
    else if (e.kind === 'apply-ok') a.oks++
    else a.fails++
  }
  for (const [key, a] of attempts) {
    const what = `${name(a.host)} attempt ${key.slice(key.indexOf('/') + 1)} of ${a.release}`
    if (a.starts !== 1) out.push({ invariant: 'outcome', detail: `${what}: ${a.starts} apply-start entries` })
    if (a.oks > 1 || a.fails > 1) out.push({ invariant: 'outcome', detail: `${what}: ${a.oks} apply-ok and ${a.fails} apply-failed entries` })
    if (a.oks + a.fails === 0 && !overdue.has(`${a.host}/${a.release}`)) out.push({ invariant: 'outcome', detail: `${what}: no outcome, and no deadline overdue names it` })
  }
  return out
}

/** A release that the entries a live member holds halt shows halted on that member. */
export function checkHalts (hosts: SimHost[], logOf: (h: SimHost) => Entry[], releases: string[], meshId: string, founder: string, name: (peer: string) => string): Violation[] {
  const out: Violation[] = []
  for (const h of hosts) {
    const log = logOf(h)
    const membership = membershipOf(log, meshId, founder)
    for (const id of releases) {
      const truth = truthOf(log, membership, id)
      if (truth === undefined || !truth.halted || truth.aborted) continue
      const state = releaseStatus(h.rollout, h.view, id)?.state
      if (state !== 'halted') out.push({ invariant: 'halt', detail: `${id} is halted (failed: ${truth.failed.map(name).join(', ')}) but ${name(h.peerId)}, which holds those entries, shows ${state ?? 'nothing'}` })
    }
  }
  return out
}

function shape (d: Decision): string {
  const x = d as unknown as Record<string, unknown>
  return JSON.stringify([d.action, x.release, x.wave, x.path])
}

/** Hosts for which live hosts holding the same log (same heads) decide differently. */
export function divergedDecisions (hosts: SimHost[], headsOf: (h: SimHost) => string, name: (peer: string) => string): Violation[] {
  const out: Violation[] = []
  const expired = new Set<string>()
  const groups = new Map<string, SimHost[]>()
  for (const h of hosts) groups.set(headsOf(h), [...groups.get(headsOf(h)) ?? [], h])
  for (const target of hosts) for (const same of groups.values()) {
    const seen = new Map<string, string[]>()
    for (const h of same) {
      const s = shape(decide(h.rollout, h.view, target.peerId, Date.now(), { trace: false, expired }))
      seen.set(s, [...seen.get(s) ?? [], name(h.peerId)])
    }
    if (seen.size > 1) out.push({ invariant: 'decision', detail: `for ${name(target.peerId)}: ${[...seen].map(([s, by]) => `${s} on ${by.join(',')}`).join(' vs ')}` })
  }
  return out
}
