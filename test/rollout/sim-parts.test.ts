// The scale simulator's building blocks: the inbox slab, the bucket-queue spread, the event
// queue, and the agent's local timers driven by the simulated clock.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Inboxes } from '../../simulations/scale/inbox.js'
import { Network, mulberry32 } from '../../simulations/scale/network.js'
import { gossipsubDefaults } from '../../simulations/scale/params.js'
import { Ev, EventQueue } from '../../simulations/scale/events.js'
import { LocalTimers } from '../../node/deploy/timers.js'

describe('Inboxes', () => {
  it('hands out what arrived by now, in delivery order, and keeps the rest', () => {
    const box = new Inboxes(3)
    box.published(0, 100)
    box.published(1, 200)
    box.deliver(1, 0, 130)
    box.deliver(1, 1, 210)
    box.deliver(2, 1, 205)
    assert.equal(box.nextArrival[1], 130)
    assert.equal(box.takeDue(1, 150), 1)
    assert.deepEqual([box.dueMsg[0], box.dueAt[0]], [0, 130])
    assert.equal(box.nextArrival[1], 210)
    assert.equal(box.takeDue(0, 1000), 0)
    assert.equal(box.nextArrival[0], Number.POSITIVE_INFINITY)
    assert.equal(box.takeDue(1, 1000), 1)
    assert.equal(box.dueMsg[0], 1)
    assert.equal(box.takeDue(2, 1000), 1)
  })

  it('keeps every host\'s messages through region moves and slab packing', () => {
    const hosts = 5
    const box = new Inboxes(hosts)
    const n = 3000
    for (let m = 0; m < n; m++) {
      box.published(m, m)
      // host 0 fills fastest and forces moves and packs; the others interleave
      for (let h = 0; h < hosts; h++) if (m % (h + 1) === 0) box.deliver(h, m, m + 0.5)
    }
    for (let h = 0; h < hosts; h++) {
      const due = box.takeDue(h, n)
      const got = Array.from(box.dueMsg.subarray(0, due))
      assert.deepEqual(got, Array.from({ length: n }, (_, m) => m).filter(m => m % (h + 1) === 0), `host ${h}`)
      assert.ok(Array.from(box.dueAt.subarray(0, due)).every((a, i) => a === got[i] + 0.5))
    }
  })
})

describe('Network.spread', () => {
  const gossip = gossipsubDefaults()
  const net = (loss: number): Network => new Network({ hosts: 300, peers: 24, loss, latencyMedianMs: 20, latencySigma: 0.5 }, gossip, mulberry32(9))

  it('reaches every host once, no sooner than one transmission after the publish', () => {
    const n = net(0)
    n.spread(7, 1000)
    assert.equal(n.reachedCount, 299)
    const seen = new Set(Array.from(n.reached.subarray(0, n.reachedCount)))
    assert.equal(seen.size, 299)
    assert.ok(!seen.has(7))
    assert.equal(n.arrival[7], 1000)
    for (const v of seen) assert.ok(n.arrival[v] > 1000 && Number.isFinite(n.arrival[v]))
  })

  it('hosts forward on first receipt: no mesh neighbour gets it later than one slowest transmission after a host', () => {
    const n = net(0)
    n.spread(0, 0)
    const slowest = 20 * Math.exp(0.5 * 5)
    for (let v = 0; v < 300; v++) {
      for (const p of n.mesh[v]) assert.ok(n.arrival[p] <= n.arrival[v] + slowest)
    }
  })

  it('under loss, IHAVE/IWANT repair still reaches every online host, and offline hosts get nothing', () => {
    const n = net(0.3)
    for (let h = 1; h <= 30; h++) n.leave(h)
    n.spread(0, 0)
    assert.equal(n.reachedCount, 300 - 30 - 1)
    for (let h = 1; h <= 30; h++) assert.equal(n.arrival[h], Number.POSITIVE_INFINITY)
  })
})

describe('EventQueue', () => {
  it('pops events in time order with their host and argument, across growth', () => {
    const q = new EventQueue()
    const rand = mulberry32(5)
    const pushed = Array.from({ length: 3000 }, (_, i) => ({ t: Math.floor(rand() * 1000), h: i, arg: i * 7 }))
    for (const e of pushed) q.push(e.t, Ev.Alarm, e.h, e.arg)
    let last = -1
    const seen = new Set<number>()
    while (q.size > 0) {
      q.pop()
      assert.ok(q.time >= last)
      assert.equal(q.kind, Ev.Alarm)
      assert.equal(q.time, pushed[q.who].t)
      assert.equal(q.with, q.who * 7)
      last = q.time
      seen.add(q.who)
    }
    assert.equal(seen.size, 3000)
  })
})

describe('LocalTimers on a simulated clock', () => {
  it('arms the alarm for the earliest running timer, keeps a timer\'s start across decisions, and disarms when none runs', () => {
    let now = 0
    const alarms: Array<number | undefined> = []
    let fired = 0
    let ring = (): void => {}
    const timers = new LocalTimers(() => { fired++ }, () => now, (ms, fire) => { alarms.push(ms); ring = fire })
    timers.follow({ key: 'a', ms: 5000 })
    assert.deepEqual(alarms, [5000])
    now = 3000
    timers.follow({ key: 'a', ms: 5000 })
    assert.equal(alarms.at(-1), 2000, 'the timer started when a decision first named it')
    assert.deepEqual([...timers.expired()], [])
    now = 5000
    ring()
    assert.equal(fired, 1, 'the alarm runs the timers\' onExpire')
    assert.deepEqual([...timers.expired()], ['a'])
    timers.follow({ key: 'b', ms: 1000 })
    assert.equal(alarms.at(-1), 1000, 'a timer no decision names any more is dropped')
    timers.stop()
    assert.equal(alarms.at(-1), undefined)
  })
})
