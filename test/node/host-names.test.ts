// hostLabel and resolveHost (node/host-names.ts): how views print a host and which host a
// command means by a name, an id, or a piece of one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { NodeError } from '../../node/errors.js'
import { defaultHostName, hostLabel, hostLabels, resolveHost, rowHosts, shortId } from '../../node/host-names.js'
import { isHostName } from '../../protocols/membership/index.js'

const ids: string[] = []
for (let i = 0; i < 4; i++) ids.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
const [A, B, C, D] = ids as [string, string, string, string]
const members = [{ peer: A, name: 'web' }, { peer: B, name: 'web' }, { peer: C, name: 'db-1' }, { peer: D }]

function refused (fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof NodeError && err.code === 'API_BAD_REQUEST' && message.test(err.message))
}

test('a label is the name, else the short id; a shared name gets the id\'s end', () => {
  assert.equal(hostLabel(C, 'db-1'), 'db-1')
  assert.equal(hostLabel(D), shortId(D))
  assert.match(shortId(D), /^12D3KooW….{6}$/)
  const labels = hostLabels(members)
  assert.equal(labels.get(A), `web#${A.slice(-6)}`)
  assert.equal(labels.get(B), `web#${B.slice(-6)}`)
  assert.equal(labels.get(C), 'db-1')
  assert.equal(labels.get(D), shortId(D))
})

test('a host is found by id, unique name, the label views print, or a unique id prefix', () => {
  for (const m of members) assert.equal(resolveHost(members, m.peer), m.peer)
  assert.equal(resolveHost(members, 'db-1'), C)
  assert.equal(resolveHost(members, `web#${B.slice(-6)}`), B)
  assert.equal(resolveHost(members, shortId(D)), D)
  assert.equal(resolveHost(members, C.slice(0, 20)), C)
})

test('an ambiguous name is refused listing every candidate id', () => {
  refused(() => resolveHost(members, 'web'), new RegExp(`"web" names 2 hosts: .*${A}.*${B}|"web" names 2 hosts: .*${B}.*${A}`))
  // every id starts with 12D3KooW: too short a prefix names nothing
  refused(() => resolveHost(members, '12D3KooW'), /no host "12D3KooW"/)
})

test('an unknown name is refused with a close name suggested; an unknown peer id passes on for the caller to refuse', () => {
  refused(() => resolveHost(members, 'db-2'), /no host "db-2" in this mesh \(did you mean "db-1"\?\)/)
  refused(() => resolveHost(members, 'nothing-like-it'), /no host "nothing-like-it" in this mesh;/)
  const stranger = '12D3KooW' + 'a'.repeat(44)
  assert.equal(resolveHost(members, stranger), stranger)
})

test('a name a member holds means that member, as the members route lists them; a revoked holder is named by its id', () => {
  const rows = [{ peerId: A, name: 'web', revoked: false }, { peerId: B, name: 'web', revoked: true }, { peerId: C, name: 'db-1', revoked: true }, { peerId: D, name: null, revoked: false }]
  const hosts = rowHosts(rows)
  assert.equal(resolveHost(hosts, 'web'), A)
  assert.equal(resolveHost(hosts, B.slice(0, 20)), B)
  // a revoked host whose name no member holds keeps it, for the caller to refuse as no member
  assert.equal(resolveHost(hosts, 'db-1'), C)
  assert.equal(resolveHost(hosts, shortId(D)), D)
})

test('the default name is this machine\'s hostname, made into a valid host name', () => {
  assert.ok(isHostName(defaultHostName()), defaultHostName())
})
