// The membership as of a release's basis (protocols/membership viewAsOf): what a frozen plan is
// resolved against.
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { applyEntry, computeView, createMembershipState, viewAsOf, viewOf } from '../../protocols/membership/index.js'
import { Log, MESH, peers } from '../membership/helpers.js'

it('viewAsOf folds exactly the entries at or below the basis, whatever came later', async () => {
  const [F, G, A, B, C] = await peers(5)
  const log = new Log()
  log.genesis(F)
  log.add(F, 1001, 'admit', { peer: G, role: 'admin', tags: [] })
  log.add(F, 1002, 'admit', { peer: A, role: 'host', tags: ['web'] })
  log.add(G, 1003, 'admit', { peer: B, role: 'host', tags: [] })
  const basis = { [F]: log.seqOf(F) - 1, [G]: log.seqOf(G) - 1 }
  const prefix = [...log.entries]
  log.add(F, 1004, 'grant', { peer: A, tags: ['db'] })
  log.add(G, 1005, 'revoke', { peer: B, after: -1 })
  log.add(F, 1006, 'admit', { peer: C, role: 'host', tags: [] })
  const state = createMembershipState({ meshId: MESH })
  for (const e of log.entries) applyEntry(state, e)
  const asOf = viewAsOf(state, basis)
  assert.deepEqual(asOf, computeView(prefix, { meshId: MESH }))
  assert.deepEqual([...asOf.members.keys()].sort(), [F, G, A, B].sort())
  assert.deepEqual(asOf.members.get(A)?.tags, ['web'])
  assert.deepEqual([...viewOf(state).members.keys()].sort(), [F, G, A, C].sort(), 'the live view moved on')
  // a feed the basis does not name counts for nothing
  assert.deepEqual([...viewAsOf(state, { [F]: basis[F] }).members.keys()].sort(), [F, G, A].sort())
})
