// The scale simulator's building blocks: the inbox slab and the bucket-queue spread.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Inboxes } from '../../simulations/scale/inbox.js'
import { Network, mulberry32 } from '../../simulations/scale/network.js'
import { gossipsubDefaults } from '../../simulations/scale/params.js'

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
