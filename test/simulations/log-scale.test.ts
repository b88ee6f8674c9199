// The log-at-scale simulations: the per-host head views answer reconciliation exactly as a
// materialised SortedHeads does; a seeded idle run prints its traffic and growth figures, and
// its idle traffic per host grows far slower than the fleet; a seeded catch-up run prints its
// figures. Behaviour only: byte counts are deterministic for a seed, durations are not judged.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { SortedHeads, Reconciliation, answerDigest } from '../../protocols/audit/reconcile.js'
import type { Head } from '../../protocols/audit/types.js'
import { signedFeeds } from '../../simulations/harness/signed-feeds.js'
import { FleetHeads, HostView, held } from '../../simulations/scale/fleet-heads.js'
import { simulate, parseArgs } from '../../simulations/scale/index.js'
import { run as runCatchup } from '../../simulations/catchup/index.js'

const hash = (n: number): Uint8Array => new Uint8Array(32).fill(n)

describe('HostView: a host\'s heads over the shared table', () => {
  it('gives the fingerprints, heads and reconciliation of the same heads materialised', async () => {
    const feeds = (await signedFeeds(7, 300)).map(f => f.feed)
    const newest: Head[] = feeds.map((feed, i) => ({ feed, seq: 5 + (i % 3), hash: hash(i % 251) }))
    const fleet = new FleetHeads(newest)
    const view = new HostView(fleet)
    const own = new Map(newest.map(h => [h.feed, h]))
    // the host is behind on a few feeds, and the fleet moves on one it holds
    for (const i of [3, 77, 78, 200]) {
      const older = { ...fleet.heads[i], seq: fleet.heads[i].seq - 1, hash: hash(252) }
      view.behind.set(i, held(older))
      own.set(older.feed, older)
    }
    const moved = { ...fleet.heads[150], seq: 99, hash: hash(253) }
    view.behind.set(150, held(fleet.heads[150]))
    fleet.set(150, moved)
    const materialised = new SortedHeads(own.values())
    const sorted = [...fleet.feeds]
    for (const [lo, hi] of [['', null], [sorted[10], sorted[120]], [sorted[76], sorted[79]], [sorted[150], null]] as Array<[string, string | null]>) {
      assert.deepEqual(view.fingerprint(lo, hi), materialised.fingerprint(lo, hi))
      assert.deepEqual(view.heads(lo, hi), materialised.heads(lo, hi))
      assert.equal(view.count(lo, hi), materialised.count(lo, hi))
      assert.deepEqual(view.bounds(lo, hi, 16), materialised.bounds(lo, hi, 16))
    }
    // reconciling against an up-to-date peer offers exactly the feeds the host is behind on
    const peer = new HostView(fleet)
    const rec = new Reconciliation(view)
    for (let q = rec.first() as ReturnType<Reconciliation['first']> | undefined; q !== undefined;) q = rec.next(answerDigest(peer, q))
    const behind = rec.offered.filter(h => h.seq > (own.get(h.feed)?.seq ?? -1)).map(h => h.feed).sort()
    assert.deepEqual(behind, [3, 77, 78, 150, 200].map(i => fleet.feeds[i]).sort())
  })
})

describe('scale --idle', () => {
  it('prints idle traffic, log growth and rollout costs, and idle traffic per host grows sub-linearly with the fleet', { timeout: 10 * 60_000 }, async () => {
    const at = async (hosts: number): Promise<Record<string, number | string>> =>
      await simulate(parseArgs(['--hosts', String(hosts), '--idle', '1h', '--no-svg', '--seed', '3']))
    const small = await at(50)
    const large = await at(200)
    for (const r of [small, large]) {
      for (const k of ['idle_bytes_per_s_per_host', 'log_bytes_per_day_per_host', 'idle_repair_bytes_per_s_per_host', 'rollout_bytes_per_host', 'rollout_log_bytes_per_host', 'gossip_copies_per_host', 'reach99_ms', 'ratio']) {
        assert.ok(typeof r[k] === 'number' && Number.isFinite(r[k]) && r[k] >= 0, `${k} = ${String(r[k])}`)
      }
      assert.ok((r.idle_repair_bytes_per_s_per_host as number) > 0)
      // the release makes every host but its author witness once
      assert.ok((r.rollout_witnesses as number) >= (r.hosts as number) - 1)
    }
    // four times the hosts: far less than four times the idle bytes per host
    assert.ok((large.idle_bytes_per_s_per_host as number) < 2 * (small.idle_bytes_per_s_per_host as number), `${String(small.idle_bytes_per_s_per_host)} → ${String(large.idle_bytes_per_s_per_host)}`)
    // the same seed gives the same bytes
    assert.equal((await at(50)).idle_bytes_per_s_per_host, small.idle_bytes_per_s_per_host)
  })
})

describe('catchup', () => {
  it('prints catch-up and join figures from a real ingest', { timeout: 10 * 60_000 }, async () => {
    const r = await runCatchup(['--hosts', '20', '--history', '4d', '--offline', '2d', '--seed', '2'])
    for (const k of ['catchup_ms', 'join_ms', 'join_replay_ms_estimated', 'catchup_ingest_ms', 'join_adopt_ms', 'catchup_entries', 'join_retained', 'join_after_cover']) {
      assert.ok(typeof r[k] === 'number' && Number.isFinite(r[k]) && r[k] > 0, `${k} = ${String(r[k])}`)
    }
    assert.ok((r.catchup_entries as number) < (r.history_entries as number))
  })
})
