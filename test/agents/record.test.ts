// The agent entry kind: its schema refuses malformed and oversize bodies with typed errors, and
// the recorder's budget bounds what one agent writes into a real audit store per window,
// counting what it leaves out on the next entry.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createNodeKindRegistry } from '../../node/store.js'
import { AgentRecorder } from '../../node/agents/record.js'
import { parseAgentBody, type AgentBody } from '../../protocols/agents/index.js'
import { openStore, until } from '../audit/helpers.js'

test('agent bodies: typed errors name the field; bounds hold; the store refuses a bad body', async () => {
  assert.deepEqual(parseAgentBody({ agent: 'web', event: 'exit', pid: 12, code: 3 }), { agent: 'web', event: 'exit', pid: 12, code: 3 })
  const bad: Array<[unknown, string, RegExp]> = [
    [null, 'AGENT_BODY_INVALID', /must be a map/],
    [{ agent: 'no spaces', event: 'start' }, 'AGENT_BODY_INVALID', /^agent:/],
    [{ agent: 'web', event: 'explode' }, 'AGENT_BODY_INVALID', /^event:/],
    [{ agent: 'web', event: 'exit', signal: 'KILL' }, 'AGENT_BODY_INVALID', /^signal:/],
    [{ agent: 'web', event: 'exit', pid: 0 }, 'AGENT_BODY_INVALID', /^pid:/],
    [{ agent: 'web', event: 'hang', reason: 'x'.repeat(513) }, 'AGENT_BODY_TOO_LARGE', /^reason:/],
    [{ agent: 'web', event: 'restart', reason: 'because' }, 'AGENT_BODY_INVALID', /^reason:/],
    [{ agent: 'web', event: 'suppressed' }, 'AGENT_BODY_INVALID', /^suppressed:/],
    [{ agent: 'web', event: 'escalate', release: 'r1' }, 'AGENT_BODY_INVALID', /^release:/],
    [{ agent: 'web', event: 'leak', rssBytes: -1 }, 'AGENT_BODY_INVALID', /^rssBytes:/]
  ]
  for (const [body, code, message] of bad) assert.throws(() => parseAgentBody(body), { code, message }, JSON.stringify(body))
  const s = await openStore({ kinds: createNodeKindRegistry() })
  try {
    await assert.rejects(s.store.append('agent', { agent: 'web', event: 'explode' }), { code: 'BODY_INVALID' })
    await s.store.append('agent', { agent: 'web', event: 'start', pid: 7 })
  } finally {
    await s.close()
  }
})

test('the recorder writes at most its budget per window and counts the rest on the next entry', async () => {
  const s = await openStore({ kinds: createNodeKindRegistry() })
  const written = async (): Promise<AgentBody[]> => {
    const out: AgentBody[] = []
    for await (const e of s.store.log({ kind: 'agent' })) out.push(e.entry.body as unknown as AgentBody)
    return out
  }
  const windowMs = 1500
  const recorder = new AgentRecorder({ append: async (k, b) => await s.store.append(k, b), onError: (err) => { throw err }, budget: 10, windowMs })
  try {
    // a thousand deaths at once
    for (let i = 0; i < 1000; i++) recorder.record({ agent: 'web', event: 'exit', code: 1 })
    recorder.record({ agent: 'other', event: 'start', pid: 9 })
    await until(async () => (await written()).length >= 7, 'the first window\'s entries')
    const first = await written()
    assert.equal(first.filter((b) => b.agent === 'web' && b.event === 'exit').length, 6, 'routine events get the budget less the reserve')
    assert.equal(first.filter((b) => b.agent === 'other').length, 1, 'each agent has its own budget')
    // the window ends: what was left out is written as a count
    await until(async () => (await written()).some((b) => b.event === 'suppressed'), 'the count of what was left out', 10_000)
    const summary = (await written()).find((b) => b.event === 'suppressed')
    assert.deepEqual(summary, { agent: 'web', event: 'suppressed', suppressed: 994 })
    // a new window, spent again by routine events: the crash loop still has its reserve, and carries the count
    for (let i = 0; i < 1000; i++) recorder.record({ agent: 'web', event: 'exit', code: 1 })
    recorder.record({ agent: 'web', event: 'crash-loop', reason: 'looped' })
    await until(async () => (await written()).some((b) => b.event === 'crash-loop'), 'the crash loop entry')
    const all = await written()
    assert.equal(all.length, 8 + 5 + 1, 'the summary took one of the new window\'s routine slots')
    assert.equal(all.at(-1)?.suppressed, 995)
  } finally {
    recorder.close()
    await s.close()
  }
})
