// The fleet's agents folded from every host's `agent` entries: per host and agent, the newest
// entry's state; the same in every delivery order, duplicates included.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { emptyAgentFleet, fleetAgents, foldAgent, agentAlerting } from '../../protocols/agents/index.js'
import type { AgentBody } from '../../protocols/agents/index.js'

const entry = (feed: string, seq: number, body: AgentBody): { kind: string, feed: string, seq: number, ts: number, body: AgentBody } => ({ kind: 'agent', feed, seq, ts: 1000 + seq, body })

const feedA = [
  entry('host-a', 3, { agent: 'llm', event: 'start', pid: 10 }),
  entry('host-a', 4, { agent: 'llm', event: 'exit', code: 1 }),
  entry('host-a', 5, { agent: 'llm', event: 'restart', reason: 'crash', restarts: 1, pid: 11 }),
  entry('host-a', 6, { agent: 'llm', event: 'exit', signal: 'SIGKILL' }),
  entry('host-a', 7, { agent: 'llm', event: 'restart', reason: 'crash', restarts: 2, pid: 12 }),
  entry('host-a', 8, { agent: 'llm', event: 'exit', code: 2 }),
  entry('host-a', 9, { agent: 'llm', event: 'crash-loop', reason: '3 restarts in 60 s', restarts: 3 }),
  entry('host-a', 10, { agent: 'llm', event: 'suppressed', suppressed: 4 }),
  entry('host-a', 11, { agent: 'web', event: 'start', pid: 20 })
]
const feedB = [
  entry('host-b', 2, { agent: 'llm', event: 'start', pid: 30 }),
  entry('host-b', 3, { agent: 'llm', event: 'hang', reason: 'no heartbeat for 5000 ms (timeout 5000 ms)' }),
  entry('host-b', 4, { agent: 'llm', event: 'restart', reason: 'hang', restarts: 1, pid: 31 }),
  entry('host-b', 5, { agent: 'llm', event: 'exit', code: 0 })
]

function fold (entries: Array<ReturnType<typeof entry>>): ReturnType<typeof fleetAgents> {
  const f = emptyAgentFleet()
  for (const e of entries) foldAgent(f, e)
  foldAgent(f, { kind: 'apply-ok', feed: 'host-a', seq: 99, ts: 0, body: { release: 'r1' } })
  return fleetAgents(f)
}

describe('the fleet\'s agents (protocols/agents/fleet.ts)', () => {
  it('keeps per host and agent the newest entry\'s state, the restart count and what alerts', () => {
    const got = fold([...feedA, ...feedB])
    assert.deepEqual(got.map((a) => [a.host, a.agent, a.state, a.restarts, a.seq]), [
      ['host-a', 'llm', 'failed', 3, 9],
      ['host-a', 'web', 'running', 0, 11],
      ['host-b', 'llm', 'exited', 1, 5]
    ])
    assert.equal(got[0].reason, '3 restarts in 60 s')
    assert.equal(got[2].code, 0)
    assert.deepEqual(got.filter(agentAlerting).map((a) => `${a.host}/${a.agent}`), ['host-a/llm'], 'only the crash loop alerts')
  })

  it('an escalation names the release, and a later restart by the operator ends the alert', () => {
    const esc = entry('h', 4, { agent: 'x', event: 'escalate', reason: 'crash loop after apply', release: 'r7', attempt: 'r7:1' })
    const [a] = fold([entry('h', 3, { agent: 'x', event: 'crash-loop', restarts: 5 }), esc])
    assert.equal(a.state, 'escalated')
    assert.equal(a.release, 'r7')
    assert.ok(agentAlerting(a))
    const [b] = fold([entry('h', 3, { agent: 'x', event: 'crash-loop', restarts: 5 }), esc, entry('h', 5, { agent: 'x', event: 'restart', reason: 'operator', restarts: 0 })])
    assert.equal(b.state, 'running')
    assert.equal(b.restarts, 0)
    assert.ok(!agentAlerting(b))
  })

  it('gives the same fleet in any delivery order, with duplicates', () => {
    const all = [...feedA, ...feedB]
    const expected = fold(all)
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: all.length - 1 }), { maxLength: 10 }), fc.infiniteStream(fc.double()), (dups, rnd) => {
      const list = [...all, ...dups.map((i) => all[i])]
      const it = rnd[Symbol.iterator]()
      const shuffled = list.map((e) => ({ e, k: it.next().value as number })).sort((x, y) => x.k - y.k).map((x) => x.e)
      assert.deepEqual(fold(shuffled), expected)
    }))
  })

  it('keeps only the hosts asked for (the members)', () => {
    const f = emptyAgentFleet()
    for (const e of [...feedA, ...feedB]) foldAgent(f, e)
    assert.deepEqual(fleetAgents(f, (h) => h === 'host-b').map((a) => a.host), ['host-b'])
  })
})
