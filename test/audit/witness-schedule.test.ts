// Issue 17 item 2: when a witness is due. The schedule is pure, so its promises are checked as
// properties over any sequence of entries and times: witness entries (own or others') and a
// host's own entries never make one due; an entry of a kind that matters makes exactly one due,
// eventDelayMs after it; any other entry makes one due at the host's next slow slot.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { membershipSchemas } from '../../protocols/membership/index.js'
import { rolloutSchemas } from '../../protocols/rollout/index.js'
import { CHECKPOINT_KIND, checkpointSchemas } from '../../protocols/checkpoint/index.js'
import {
  DEFAULT_WITNESS_EVENT_DELAY_MS, DEFAULT_WITNESS_EVENT_KINDS, DEFAULT_WITNESS_INTERVAL_MS, WitnessSchedule, witnessOffset, witnessPolicy, type WitnessPolicy
} from '../../protocols/audit/witness-schedule.js'

const SELF = '12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfSelfSel1'
const FEEDS = ['12D3KooWOtherAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '12D3KooWOtherBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', SELF]
const T0 = 1_767_225_600_000
const DAY = 24 * 60 * 60_000
const RUNS = 300
const OTHER_KINDS = ['apply-start', 'apply-ok', 'apply-failed', 'health', 'soaked', 'room-create', 'room-member', 'x-unknown']
const policy = (over: Partial<WitnessPolicy> = {}): WitnessPolicy => witnessPolicy(SELF, over)

const feed = fc.constantFrom(...FEEDS)
const gap = fc.integer({ min: 0, max: 3 * DAY })
/** entries that must never make a witness due: any witness entry, and this host's own entries of any kind */
const inert = fc.oneof(
  fc.record({ feed, kind: fc.constant('witness'), gap }),
  fc.record({ feed: fc.constant(SELF), kind: fc.constantFrom(...DEFAULT_WITNESS_EVENT_KINDS, ...OTHER_KINDS), gap })
)

test('the default event kinds are the membership kinds, the release and its controls, and checkpoints', () => {
  const expected = [...Object.keys(membershipSchemas), 'release', 'release-control', CHECKPOINT_KIND].sort()
  assert.deepEqual([...DEFAULT_WITNESS_EVENT_KINDS].sort(), expected)
  for (const kind of ['release', 'release-control']) assert.ok(kind in rolloutSchemas, kind)
  assert.ok(CHECKPOINT_KIND in checkpointSchemas())
})

test('no sequence of witness entries, nor of the host\'s own entries, ever makes a witness due', () => {
  fc.assert(fc.property(fc.array(inert, { maxLength: 200 }), fc.integer({ min: 0, max: DEFAULT_WITNESS_INTERVAL_MS - 1 }), (entries, offsetMs) => {
    const s = new WitnessSchedule(policy({ offsetMs }), T0)
    let now = T0
    for (const e of entries) {
      now += e.gap
      s.onEntry(e, now)
      if (s.due(now) || s.nextAt() !== undefined) return false
    }
    return !s.due(now + 365 * DAY)
  }), { numRuns: RUNS })
})

test('an entry of a kind that matters makes one witness due exactly once, eventDelayMs after the first such entry', () => {
  const delay = fc.integer({ min: 0, max: 10 * 60_000 })
  const other = fc.constantFrom(...FEEDS.filter(f => f !== SELF))
  fc.assert(fc.property(delay, fc.constantFrom(...DEFAULT_WITNESS_EVENT_KINDS), other, fc.integer({ min: 0, max: DAY }), fc.array(inert, { maxLength: 50 }),
    (eventDelayMs, kind, from, at, after) => {
      // a slow slot far away, so only the event decides
      const s = new WitnessSchedule(policy({ eventDelayMs, offsetMs: 0, intervalMs: 1000 * DAY }), T0)
      const t = T0 + at
      s.onEntry({ feed: from, kind }, t)
      // more events within the window join the same witness
      s.onEntry({ feed: from, kind }, t + Math.floor(eventDelayMs / 2))
      if (s.nextAt() !== t + eventDelayMs) return false
      if (eventDelayMs > 0 && s.due(t + eventDelayMs - 1)) return false
      if (!s.due(t + eventDelayMs)) return false
      s.done(t + eventDelayMs)
      let now = t + eventDelayMs
      for (const e of after) {
        now += e.gap
        s.onEntry(e, now)
        if (s.due(now)) return false
      }
      return s.nextAt() === undefined
    }), { numRuns: RUNS })
})

test('a fork makes a witness due after the event delay', () => {
  const s = new WitnessSchedule(policy(), T0)
  s.onFork(T0 + 5)
  assert.equal(s.nextAt(), T0 + 5 + DEFAULT_WITNESS_EVENT_DELAY_MS)
  s.done(T0 + 5 + DEFAULT_WITNESS_EVENT_DELAY_MS)
  assert.equal(s.nextAt(), undefined)
})

test('any other entry of another feed makes one witness due at the host\'s next slow slot, within one interval', () => {
  const other = fc.constantFrom(...FEEDS.filter(f => f !== SELF))
  fc.assert(fc.property(fc.integer({ min: 1, max: 7 * DAY }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.constantFrom(...OTHER_KINDS), other,
    fc.integer({ min: 0, max: 30 * DAY }), fc.array(fc.integer({ min: 0, max: DAY }), { maxLength: 20 }),
    (intervalMs, frac, kind, from, at, later) => {
      const offsetMs = Math.floor(frac * intervalMs)
      const s = new WitnessSchedule(policy({ intervalMs, offsetMs }), T0)
      const t = T0 + at
      s.onEntry({ feed: from, kind }, t)
      let now = t
      for (const g of later) { now += g; s.onEntry({ feed: from, kind }, now) }
      const due = s.nextAt()
      if (due === undefined) return false
      // on the host's slot, the first at or after the first such entry
      if (((due - offsetMs) % intervalMs + intervalMs) % intervalMs !== 0) return false
      if (due < t || due - t >= intervalMs) return false
      if (due > t && s.due(due - 1)) return false
      s.done(due)
      return s.nextAt() === undefined
    }), { numRuns: RUNS })
})

test('a fleet spreads its slow slots over the interval', () => {
  const offsets = Array.from({ length: 1000 }, (_, i) => witnessOffset(`12D3KooWHost${i}`, DEFAULT_WITNESS_INTERVAL_MS))
  assert.ok(offsets.every(o => Number.isInteger(o) && o >= 0 && o < DEFAULT_WITNESS_INTERVAL_MS))
  // no second of the day holds more than a handful of 1,000 hosts
  const perSecond = new Map<number, number>()
  for (const o of offsets) perSecond.set(Math.floor(o / 1000), (perSecond.get(Math.floor(o / 1000)) ?? 0) + 1)
  assert.ok(Math.max(...perSecond.values()) <= 3)
  assert.equal(witnessOffset('12D3KooWHost7', DAY), witnessOffset('12D3KooWHost7', DAY))
})

test('an idle fleet of schedules stops witnessing after the first round however long it runs', () => {
  fc.assert(fc.property(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 365 }), (n, days) => {
    const hosts = Array.from({ length: n }, (_, i) => `12D3KooWFleet${i}`)
    const schedules = hosts.map(h => new WitnessSchedule(witnessPolicy(h), T0))
    let written = 0
    const deliver = (e: { feed: string, kind: string }, now: number): void => { for (const s of schedules) s.onEntry(e, now) }
    // the founder's genesis and admits: the one event of this fleet
    deliver({ feed: hosts[0], kind: 'genesis' }, T0)
    for (let i = 1; i < n; i++) deliver({ feed: hosts[0], kind: 'admit' }, T0)
    const end = T0 + days * DAY
    for (;;) {
      const next = Math.min(...schedules.map(s => s.nextAt() ?? Infinity))
      if (next > end) break
      schedules.forEach((s, i) => {
        if (!s.due(next)) return
        s.done(next)
        written++
        deliver({ feed: hosts[i], kind: 'witness' }, next)
      })
    }
    // every host but the founder witnessed the founder's entries once; nothing after
    return written === n - 1
  }), { numRuns: 50 })
})

test('a policy out of range is refused', () => {
  assert.throws(() => new WitnessSchedule(policy({ intervalMs: 0 }), T0), RangeError)
  assert.throws(() => new WitnessSchedule(policy({ intervalMs: DAY, offsetMs: DAY }), T0), RangeError)
  assert.throws(() => new WitnessSchedule(policy({ eventDelayMs: -1 }), T0), RangeError)
})
