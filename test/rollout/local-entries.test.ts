// The kinds a host writes outside releases (`fleetmesh apply`, `fleetmesh rollback`) and the
// `invite` an admin writes have schemas like every other kind: the store refuses a malformed
// one with a typed error instead of carrying whatever a peer put under a signature.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createNodeKindRegistry } from '../../node/store.js'
import { localDeploySchemas } from '../../protocols/rollout/index.js'
import { inviteEntrySchemas } from '../../protocols/pairing/index.js'

const P = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system'
const Q = '/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-nixos-system'
const kinds = createNodeKindRegistry()

test('local-apply, local-rollback and invite bodies as the node writes them are accepted', () => {
  kinds.validate('local-apply', { path: P, phase: 'start' })
  kinds.validate('local-apply', { path: P, phase: 'end', status: 'ok' })
  kinds.validate('local-apply', { path: P, phase: 'end', status: 'rolled-back', reason: 'health check web failed' })
  kinds.validate('local-rollback', { from: P, to: Q, number: 3, healthy: true })
  kinds.validate('local-rollback', { from: null, to: Q, number: 1, healthy: false })
  kinds.validate('invite', { invite: 'ab'.repeat(16), role: 'host', tags: ['web'], uses: 1, expiresAt: 1_800_000_000 })
})

test('malformed ones are refused with a typed error naming the field', () => {
  const refused: Array<[string, unknown, string, RegExp]> = [
    ['local-apply', { path: 'not-a-store-path', phase: 'start' }, 'ROLLOUT_BODY_INVALID', /path: must match/],
    ['local-apply', { path: P, phase: 'middle' }, 'ROLLOUT_BODY_INVALID', /phase/],
    ['local-apply', { path: P, phase: 'end', status: 'fine' }, 'ROLLOUT_BODY_INVALID', /status/],
    ['local-apply', { path: P, phase: 'start', status: 'ok' }, 'ROLLOUT_BODY_INVALID', /start/],
    ['local-apply', { path: P, phase: 'end', status: 'failed', reason: 'x'.repeat(5000) }, 'ROLLOUT_BODY_INVALID', /reason/],
    ['local-apply', { path: P, phase: 'start', extra: 1 }, 'ROLLOUT_BODY_INVALID', /unknown field "extra"/],
    ['local-rollback', { from: P, to: Q, number: -1, healthy: true }, 'ROLLOUT_BODY_INVALID', /number/],
    ['local-rollback', { from: P, to: Q, number: 2, healthy: 'yes' }, 'ROLLOUT_BODY_INVALID', /healthy/],
    ['invite', { invite: 'secret', role: 'host', tags: [], uses: 1, expiresAt: 1 }, 'INVITE_ENTRY_INVALID', /invite id/],
    ['invite', { invite: 'ab'.repeat(16), role: 'root', tags: [], uses: 1, expiresAt: 1 }, 'INVITE_ENTRY_INVALID', /role/],
    ['invite', { invite: 'ab'.repeat(16), role: 'host', tags: [], uses: 0, expiresAt: 1 }, 'INVITE_ENTRY_INVALID', /uses/],
    // the secret must never ride along in the trail
    ['invite', { invite: 'ab'.repeat(16), role: 'host', tags: [], uses: 1, expiresAt: 1, proofKey: 'x' }, 'INVITE_ENTRY_INVALID', /unknown field "proofKey"/]
  ]
  for (const [kind, body, code, message] of refused) {
    // the parser's own typed error, and the store's (which the audit layer reports)
    const parse = { ...localDeploySchemas, ...inviteEntrySchemas }[kind] as (b: unknown) => unknown
    assert.throws(() => parse(body), (err: Error & { code?: string }) => err.code === code && message.test(err.message), `${kind} ${JSON.stringify(body).slice(0, 80)}`)
    assert.throws(() => { kinds.validate(kind, body) }, (err: Error & { code?: string }) => err.code === 'BODY_INVALID' && message.test(err.message))
  }
})
