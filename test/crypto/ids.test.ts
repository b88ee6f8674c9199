// One id rule per kind, and every layer that takes such an id agrees with it: what a release may
// target is what an invite can grant, and a store path the schema accepts is one Nix's own argv
// guard accepts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isPeerId, isStorePath, isTag } from '../../crypto/ids.js'
import { checkTags } from '../../crypto/invite.js'
import { assertStorePath } from '../../nixos/index.js'
import { parseRelease, parseStorePath } from '../../protocols/rollout/index.js'
import { PATH_A, releaseBody } from '../rollout/helpers.js'

const fail = (m: string): never => { throw new Error(m) }

test('a tag a release targets is a tag an invite can grant, and no other', () => {
  for (const tag of ['web', 'db', 'eu-west.1', 'a:b', 'x'.repeat(64)]) {
    assert.ok(isTag(tag))
    checkTags([tag], fail)
    parseRelease(releaseBody({ targets: [{ tag, path: PATH_A, sources: ['peers'] }] }))
  }
  for (const tag of ['Web', 'a/b', '-web', '', 'x'.repeat(65), 'we b']) {
    assert.equal(isTag(tag), false, tag)
    assert.throws(() => { checkTags([tag], fail) }, Error, `invite ${tag}`)
    assert.throws(() => parseRelease(releaseBody({ targets: [{ tag, path: PATH_A, sources: ['peers'] }] })), Error, `release target ${tag}`)
    assert.throws(() => parseRelease(releaseBody({ waves: [{ tag, gate: { healthy: 100, soakMs: 0 } }] })), Error, `release wave ${tag}`)
  }
})

test('the release schema and the Nix argv guard accept the same store paths', () => {
  const good = [PATH_A, `/nix/store/${'0'.repeat(32)}-${'n'.repeat(211)}`, `/nix/store/${'v'.repeat(32)}-a+b_c?d=e.f-g`]
  const bad = [
    `/nix/store/${'e'.repeat(32)}-x`, // e is not in Nix's base32
    `/nix/store/${'0'.repeat(32)}-.hidden`,
    `/nix/store/${'0'.repeat(32)}-${'n'.repeat(212)}`,
    `/nix/store/${'0'.repeat(31)}-short`,
    `/gnu/store/${'0'.repeat(32)}-x`,
    `${PATH_A}/bin/sh`
  ]
  for (const p of good) {
    assert.ok(isStorePath(p), p)
    assert.equal(parseStorePath(p), p)
    assert.equal(assertStorePath(p), p)
  }
  for (const p of bad) {
    assert.equal(isStorePath(p), false, p)
    assert.throws(() => parseStorePath(p), Error, p)
    assert.throws(() => assertStorePath(p), Error, p)
  }
})

test('a peer id is an Ed25519 base58btc id and nothing looser', () => {
  assert.ok(isPeerId('12D3KooWLRPJAA5o6Z6ppsXq3gfPQZ3Q7ZK8StHGGL2ZodwqXuGA'))
  for (const id of ['12D3KooW', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', '12D3KooWLRPJAA5o6Z6ppsXq3gfPQZ3Q7ZK8StHGGL2ZodwqXuG0']) {
    assert.equal(isPeerId(id), false, id)
  }
})
