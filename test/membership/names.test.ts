// Host names in membership entries: the genesis's `host` names the founder, an admit's `name`
// the joiner; both optional (entries written before names stay valid) and bounded by one syntax.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MembershipError, computeView, membershipSchemas } from '../../protocols/membership/index.js'
import { Log, MESH, peers } from './helpers.js'

const [F, A, B, C] = await peers(4) as [string, string, string, string]

function rejects (fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof MembershipError && err.code === 'MEMBERSHIP_BODY_INVALID' && /host name/.test(err.message))
}

test('genesis host and admit name are optional and come back typed', () => {
  assert.deepEqual(membershipSchemas.genesis({ mesh: 'm', name: 'n', founder: F, host: 'web-1' }), { mesh: 'm', name: 'n', founder: F, host: 'web-1' })
  assert.deepEqual(membershipSchemas.admit({ peer: A, role: 'host', tags: [], name: 'db.eu_2' }), { peer: A, role: 'host', tags: [], name: 'db.eu_2' })
  // written before names existed: still valid
  assert.deepEqual(membershipSchemas.admit({ peer: A, role: 'host', tags: [] }), { peer: A, role: 'host', tags: [] })
})

test('a host name outside the syntax or over 63 characters is refused with a typed error', () => {
  for (const bad of ['', '-web', '.x', 'web 1', 'wéb', 'a'.repeat(64), 7, null, 'a/b', 'web\n']) {
    rejects(() => membershipSchemas.admit({ peer: A, role: 'host', tags: [], name: bad }))
    rejects(() => membershipSchemas.genesis({ mesh: 'm', name: 'n', founder: F, host: bad }))
  }
  assert.equal(membershipSchemas.admit({ peer: A, role: 'host', tags: [], name: 'a'.repeat(63) }).name, 'a'.repeat(63))
})

test('the view names the founder from the genesis and each member from its first counted admit; duplicates stay members', () => {
  const log = new Log()
  log.add(F, 1000, 'genesis', { mesh: MESH, name: 'test mesh', founder: F, host: 'founder' })
  log.add(F, 1100, 'admit', { peer: A, role: 'admin', tags: [], name: 'web' })
  log.add(A, 1200, 'admit', { peer: A, role: 'admin', tags: [], name: 'renamed' }) // a later admit does not rename
  log.add(F, 1300, 'admit', { peer: B, role: 'host', tags: [], name: 'web' }) // the same name: both stay members
  log.add(F, 1400, 'admit', { peer: C, role: 'host', tags: [] }) // no name (an older joiner)
  log.add(F, 1500, 'revoke', { peer: B, after: -1 })
  const v = computeView(log.entries, { meshId: MESH })
  assert.equal(v.members.get(F)?.name, 'founder')
  assert.equal(v.members.get(A)?.name, 'web')
  assert.equal(v.members.get(C)?.name, undefined)
  assert.equal(v.revoked.get(B)?.name, 'web')
  // a name never changes who is a member
  const again = computeView(log.entries.filter((e) => !(e.kind === 'revoke')), { meshId: MESH })
  assert.deepEqual([...again.members.keys()].sort(), [F, A, B, C].sort())
  assert.equal(again.members.get(B)?.name, 'web')
})
