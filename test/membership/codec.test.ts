import { test } from 'node:test'
import assert from 'node:assert/strict'
import { KindRegistry } from '../../protocols/audit/codec.js'
import { AuditError } from '../../protocols/audit/errors.js'
import { MembershipError, membershipSchemas } from '../../protocols/membership/index.js'
import { peers } from './helpers.js'

const [a, b] = await peers(2)
const xwing = new Uint8Array(1216)

function rejects (fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof MembershipError && err.code === 'MEMBERSHIP_BODY_INVALID')
}

test('valid bodies pass and come back typed', () => {
  assert.deepEqual(membershipSchemas.genesis({ mesh: 'm', name: '', founder: a }), { mesh: 'm', name: '', founder: a })
  assert.deepEqual(membershipSchemas.genesis({ mesh: 'm', name: 'n', founder: a, xwing }), { mesh: 'm', name: 'n', founder: a, xwing })
  assert.deepEqual(membershipSchemas.admit({ peer: b, role: 'host', tags: ['gpu'], invite: '0'.repeat(32), xwing }), { peer: b, role: 'host', tags: ['gpu'], invite: '0'.repeat(32), xwing })
  assert.deepEqual(membershipSchemas.grant({ peer: b, tags: [] }), { peer: b, tags: [] })
  assert.deepEqual(membershipSchemas.grant({ peer: b, role: 'admin' }), { peer: b, role: 'admin' })
  assert.deepEqual(membershipSchemas.revoke({ peer: b, after: -1, reason: 'lost disk' }), { peer: b, after: -1, reason: 'lost disk' })
})

test('every schema rejects malformed bodies with a typed error', () => {
  const bad: Array<[keyof typeof membershipSchemas, unknown]> = [
    ['genesis', null], ['genesis', []], ['genesis', new Uint8Array(3)], ['genesis', 'x'],
    ['genesis', { mesh: '', name: 'n', founder: a }],
    ['genesis', { mesh: 'm'.repeat(129), name: 'n', founder: a }],
    ['genesis', { mesh: 'm', founder: a }],
    ['genesis', { mesh: 'm', name: 'n', founder: 'QmNotEd25519' }],
    ['genesis', { mesh: 'm', name: 'n', founder: a, extra: 1 }],
    ['genesis', { mesh: 'm', name: 'n', founder: a, xwing: new Uint8Array(32) }],
    ['admit', { peer: b, role: 'root', tags: [] }],
    ['admit', { peer: b, role: 'host' }],
    ['admit', { peer: b, role: 'host', tags: ['Bad Tag'] }],
    ['admit', { peer: b, role: 'host', tags: ['a', 'a'] }],
    ['admit', { peer: b, role: 'host', tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }],
    ['admit', { peer: b, role: 'host', tags: [], invite: 'xyz' }],
    ['admit', { peer: b, role: 'host', tags: [], xwing: new Uint8Array(1215) }],
    ['admit', { peer: 42, role: 'host', tags: [] }],
    ['grant', { peer: b }],
    ['grant', { peer: b, role: 'owner' }],
    ['grant', { peer: b, tags: 'gpu' }],
    ['grant', { peer: b, role: 'host', after: 3 }],
    ['revoke', { peer: b }],
    ['revoke', { peer: b, after: -2 }],
    ['revoke', { peer: b, after: 1.5 }],
    ['revoke', { peer: b, after: 2, reason: 'r'.repeat(513) }],
    ['revoke', { peer: b, after: 2, reason: 7 }]
  ]
  for (const [kind, body] of bad) rejects(() => membershipSchemas[kind](body))
})

test('registered with the audit codec registry, bad bodies become BODY_INVALID', () => {
  const registry = new KindRegistry()
  registry.registerParsers(membershipSchemas)
  for (const kind of ['genesis', 'admit', 'grant', 'revoke']) assert.ok(registry.has(kind))
  registry.validate('admit', { peer: b, role: 'host', tags: [] })
  assert.throws(() => registry.validate('revoke', { peer: b }), (err: unknown) => err instanceof AuditError && err.code === 'BODY_INVALID')
})
