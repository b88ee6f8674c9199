// Per-peer budgets on rooms (issue 13, finding 4), over real libp2p: a member flooding a room's
// topic, a member answering a history fetch with an endless stream of batches, and a member
// hammering the history protocol with requests are each cut off and penalised.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as lp from 'it-length-prefixed'
import { HISTORY_PROTOCOL, roomTopic } from '../../protocols/rooms/index.js'
import { decodeHistoryResponse, encodeHistoryRequest, encodeHistoryResponse, MAX_FRAME_BYTES, MAX_HISTORY_FRAME_BYTES, MAX_HISTORY_REQUEST_BYTES } from '../../protocols/rooms/codec.js'
import { meshed, startMesh, until, type TestHost } from './helpers.js'

async function closeAll (hosts: TestHost[]): Promise<void> {
  for (const h of hosts) await h.close()
}

/** `of`'s gossipsub score at `at` (the implementation has it; the GossipSub interface does not say so). */
function scoreOf (at: TestHost, of: TestHost): number {
  return (at.libp2p.services.pubsub as unknown as { getScore: (peer: string) => number }).getScore(of.id)
}

// small bursts and a slow refill, so what gets through does not depend on how loaded the machine is
const BUDGETS = {
  frames: { maxBytes: MAX_FRAME_BYTES, burst: 20, perSecond: 0.1 },
  historyBatches: { maxBytes: MAX_HISTORY_FRAME_BYTES, burst: 10, perSecond: 0.1 },
  historyRequests: { maxBytes: MAX_HISTORY_REQUEST_BYTES, burst: 10, perSecond: 0.1 }
}

test('a member flooding a room topic gets its frames past the budget rejected, unforwarded, and its score lowered', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(3, { budgets: BUDGETS })
  const [a, b, m] = hosts as [TestHost, TestHost, TestHost]
  try {
    const room = await a.rooms.create({ name: 'ops', members: [{ host: a.id, agent: 'alice' }, { host: b.id, agent: 'bob' }] })
    const topic = roomTopic(room.id)
    await until(() => b.rooms.room(room.id) !== undefined && m.rooms.room(room.id) !== undefined && m.rooms.stats(room.id).subscribed, 'the room at b and m')
    await meshed(hosts, topic)
    for (let i = 0; i < 200; i++) await m.libp2p.services.pubsub.publish(topic, new TextEncoder().encode(`flood ${i}`))
    // past its budget m is refused, and soon ignored altogether: its score falls below gossipsub's graylist
    await until(() => (b.rooms.stats(room.id).rejected.ROOM_OVER_BUDGET ?? 0) > 0, 'b to refuse the flood')
    await until(() => scoreOf(b, m) < 0 && scoreOf(a, m) < 0, 'm\'s gossip score to drop at a and b')
    await a.rooms.send(room.id, 'alice', 'still here')
    await until(async () => (await b.rooms.read(room.id)).messages.some(x => x.text === 'still here'), 'b to read a')
    // the frames that reached b's room: m's burst, and what a relayed of its own budget for m
    const s = b.rooms.stats(room.id)
    assert.ok(s.gossip <= 2 * (BUDGETS.frames.burst + 5), `b took ${s.gossip} frames into the room`)
  } finally {
    await closeAll(hosts)
  }
})

test('a member answering a history fetch with endless batches is cut off and penalised; one hammering requests is refused', { timeout: 120_000 }, async () => {
  const hosts = await startMesh(2, { budgets: BUDGETS })
  const [b, m] = hosts as [TestHost, TestHost]
  try {
    const room = await b.rooms.create({ name: 'ops', members: [{ host: b.id, agent: 'bob' }, { host: m.id, agent: 'mallory' }] })
    await until(() => m.rooms.room(room.id)?.member === true, 'the room at m')
    // m runs modified code: its history handler streams junk batches without end
    await m.libp2p.unhandle(HISTORY_PROTOCOL)
    let sent = 0
    await m.libp2p.handle(HISTORY_PROTOCOL, (stream) => {
      void (async () => {
        for await (const _ of lp.decode(stream)) break
        const batch = encodeHistoryResponse({ t: 'msgs', msgs: Array.from({ length: 64 }, (_, i) => new Uint8Array(200).fill(i)) })
        try {
          while (sent < 10_000) {
            sent++
            if (!stream.send(lp.encode.single(batch))) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
          }
          stream.send(lp.encode.single(encodeHistoryResponse({ t: 'end' })))
          await stream.close()
        } catch {}
      })()
    })
    await assert.rejects(b.rooms.fetchHistory(room.id, m.libp2p.peerId), { code: 'ROOM_OVER_BUDGET' })
    assert.ok(sent < 10_000, `b stopped reading after ${sent} batches`)
    await until(() => scoreOf(b, m) < 0, 'm\'s gossip score to drop at b')

    // m asks b for history faster than its request budget
    const ask = async (): Promise<string> => {
      const stream = await m.libp2p.dialProtocol(b.libp2p.peerId, HISTORY_PROTOCOL)
      stream.send(lp.encode.single(encodeHistoryRequest({ room: room.id, since: 0 })))
      let last = ''
      for await (const chunk of lp.decode(stream)) {
        const res = decodeHistoryResponse(chunk.subarray())
        last = res.t === 'error' ? res.code : res.t
      }
      return last
    }
    const answers: string[] = []
    for (let i = 0; i < 30; i++) answers.push(await ask())
    // m's own service spent a request or two of its burst when it caught up
    assert.ok(answers.slice(0, BUDGETS.historyRequests.burst - 3).every(x => x === 'end'), answers.join(','))
    assert.ok(answers.filter(x => x === 'ROOM_OVER_BUDGET').length >= 15, answers.join(','))
  } finally {
    await closeAll(hosts)
  }
})
