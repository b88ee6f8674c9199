// Host names through the real CLI and daemons (real processes, real libp2p): a name given at
// init or join rides in the admission; members, peers and the audit log show it on the inviter
// and on a third host after sync; commands take a name; an ambiguous or unknown one is refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { HostProcess, runCli, tempDir, waitFor } from '../../simulations/harness/processes.js'
import { defaultHostName } from '../../node/host-names.js'

interface Row { peerId: string, name: string | null, role: string }

async function members (h: HostProcess): Promise<Row[]> {
  const r = await h.cli(['members', '--json'])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Row[]
}

/** Waits until `h` lists every peer of `expected` with that name. */
async function namesSeen (h: HostProcess, expected: Record<string, string | null>): Promise<Row[]> {
  return waitFor(async () => {
    const rows = await members(h)
    return Object.entries(expected).every(([peer, name]) => rows.some((m) => m.peerId === peer && m.name === name)) ? rows : undefined
  }, `${h.dataDir} to list ${JSON.stringify(expected)}`)
}

test('init refuses a bad --name with the rule and exit 2, writing nothing; join refuses one before pairing', async () => {
  const root = await tempDir()
  for (const bad of ['web 1', '-web', 'a'.repeat(64)]) {
    const r = await runCli(['--data-dir', join(root, 'x'), 'init', '--name', bad])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /--name: .* is not a host name; write 1-63 letters, digits, "\.", "_" or "-", starting with a letter or digit/)
    assert.ok(!existsSync(join(root, 'x', 'identity.json')), 'a refused name leaves no data dir behind')
  }
  assert.equal((await runCli(['--data-dir', join(root, 'y'), 'init'])).code, 0)
  const r = await runCli(['--data-dir', join(root, 'y'), 'join', 'fm2-whatever', '--name', 'bad/name'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--name: "bad\/name" is not a host name/)
})

test('names ride in the admission, show in every view, and name hosts in commands', { timeout: 20 * 60_000 }, async () => {
  const root = await tempDir()
  const dirs = { a: join(root, 'a'), b: join(root, 'b'), c: join(root, 'c'), d: join(root, 'd') }
  const init = async (dir: string, args: string[]): Promise<{ name: string, peerId: string }> => {
    const r = await runCli(['--data-dir', dir, 'init', ...args, '--json'])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as { name: string, peerId: string }
  }
  assert.equal((await init(dirs.a, ['--mesh', 'names', '--name', 'alpha'])).name, 'alpha')
  assert.equal((await init(dirs.b, ['--name', 'beta'])).name, 'beta')
  // the default: this machine's hostname
  assert.equal((await init(dirs.c, [])).name, defaultHostName())
  const d = await init(dirs.d, ['--name', 'beta'])
  const a = await HostProcess.start(dirs.a)
  const b = await HostProcess.start(dirs.b)
  const c = await HostProcess.start(dirs.c)
  try {
    const invite = async (): Promise<string> => (await a.cli(['invite'])).stdout.trim()
    // b joins under the name init stored; c names itself at join
    const jb = await b.cli(['join', await invite(), '--json'])
    assert.equal(jb.code, 0, jb.stderr)
    assert.equal((JSON.parse(jb.stdout) as { host: string }).host, 'beta')
    const jc = await c.cli(['join', await invite(), '--name', 'gamma'])
    assert.equal(jc.code, 0, jc.stderr)
    assert.match(jc.stdout, /as gamma/)

    // the inviter lists the names its admits carry; a third host learns them by sync
    await namesSeen(a, { [a.peerId]: 'alpha', [b.peerId]: 'beta', [c.peerId]: 'gamma' })
    await namesSeen(c, { [a.peerId]: 'alpha', [b.peerId]: 'beta', [c.peerId]: 'gamma' })
    const table = await a.cli(['members'])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^NAME\s+ID\s+ROLE/)
    assert.match(table.stdout, new RegExp(`^gamma\\s+12D3KooW…${c.peerId.slice(-6)}\\s+host`, 'm'))
    assert.match(table.stdout, new RegExp(`^beta\\s+12D3KooW…${b.peerId.slice(-6)}\\s+host\\s+-\\s+alpha`, 'm'))
    process.stdout.write(`# members on the inviter:\n${table.stdout.replace(/^/gm, '# ')}\n`)
    // c paired with a and syncs with it: connected
    const peers = await a.cli(['peers'])
    assert.match(peers.stdout, new RegExp(`^gamma\\s+12D3KooW…${c.peerId.slice(-6)}\\s+member`, 'm'))

    // the audit log shows the author's name beside its feed; --feed takes a name
    const log = await c.cli(['audit', 'log', '--feed', 'alpha', '--kind', 'admit'])
    assert.equal(log.code, 0, log.stderr)
    assert.match(log.stdout, new RegExp(`alpha\\s+12D3KooW…${a.peerId.slice(-6)}#\\d+\\s+admit`))
    assert.doesNotMatch(log.stdout, /beta\s+12D3KooW/)

    // rooms and their member hosts are named by name
    const created = await a.cli(['room', 'create', 'ops', '--member', 'alpha', '--member', 'gamma:bob'])
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, /2 member\(s\): (default@alpha bob@gamma|bob@gamma default@alpha)/)
    const sent = await a.cli(['room', 'send', 'ops', 'hello by name'])
    assert.equal(sent.code, 0, sent.stderr)
    const tail = await a.cli(['room', 'tail', 'ops'])
    assert.equal(tail.code, 0, tail.stderr)
    assert.match(tail.stdout, /default@alpha: hello by name/)
    const list = await a.cli(['room', 'list'])
    assert.match(list.stdout, /ops\s+epoch \d+\s+2 member\(s\): (default@alpha bob@gamma|bob@gamma default@alpha)/)
    const added = await a.cli(['room', 'add', 'ops', 'beta:carol', '--json'])
    assert.equal(added.code, 0, added.stderr)
    assert.ok((JSON.parse(added.stdout) as { members: Array<{ host: string, agent: string }> }).members.some((m) => m.host === b.peerId && m.agent === 'carol'))
    assert.equal((await a.cli(['room', 'remove', 'ops', 'beta:carol'])).code, 0)
    const unknownRoom = await a.cli(['room', 'send', 'nope', 'x'])
    assert.notEqual(unknownRoom.code, 0)
    assert.match(unknownRoom.stderr, /no room nope/)
    // room names are not unique: an ambiguous one lists the ids, and an id still works
    const second = JSON.parse((await a.cli(['room', 'create', 'ops', '--member', 'alpha', '--json'])).stdout) as { id: string }
    const ambiguousRoom = await a.cli(['room', 'send', 'ops', 'which one?'])
    assert.equal(ambiguousRoom.code, 2, ambiguousRoom.stderr)
    assert.match(ambiguousRoom.stderr, /"ops" names 2 rooms: /)
    assert.ok(ambiguousRoom.stderr.includes(second.id))
    assert.equal((await a.cli(['room', 'send', second.id, 'by id'])).code, 0)

    // pins name hosts too
    const path = `/nix/store/${'0'.repeat(32)}-held`
    const pinned = await a.cli(['pin', 'gamma', '--path', path, '--reason', 'by name', '--json'])
    assert.equal(pinned.code, 0, pinned.stderr)
    assert.equal((JSON.parse(pinned.stdout) as { host: string }).host, c.peerId)
    const unpinned = await a.cli(['unpin', 'gamma', '--json'])
    assert.equal(unpinned.code, 0, unpinned.stderr)
    assert.equal((JSON.parse(unpinned.stdout) as { host: string }).host, c.peerId)

    // a release names its hosts by name: the signed plan carries their ids (--force: no host holds the path)
    const release = await a.cli(['release', 'publish', '--host', 'gamma', '--path', path, '--waves', 'host:gamma', '--force', '--json'])
    assert.equal(release.code, 0, release.stderr)
    const body = JSON.parse(release.stdout) as { targets: Array<{ host?: string }>, waves: Array<{ hosts?: string[] }> }
    assert.deepEqual([body.targets[0]?.host, body.waves[0]?.hosts], [c.peerId, [c.peerId]])
    assert.equal((await a.cli(['release', 'abort', (JSON.parse(release.stdout) as { id: string }).id])).code, 0)

    // a second host claiming "beta" (joining without a daemon of its own): both are members,
    // the views tell them apart by id
    const jd = await runCli(['--data-dir', dirs.d, 'join', await invite(), '--json'])
    assert.equal(jd.code, 0, jd.stderr)
    await namesSeen(a, { [b.peerId]: 'beta', [d.peerId]: 'beta' })
    const both = await a.cli(['members'])
    assert.equal(both.code, 0, both.stderr)
    assert.match(both.stdout, new RegExp(`^beta#${b.peerId.slice(-6)}\\s`, 'm'))
    assert.match(both.stdout, new RegExp(`^beta#${d.peerId.slice(-6)}\\s`, 'm'))

    // an ambiguous name is refused with the candidates' ids; an unknown one with a close name
    const ambiguous = await a.cli(['revoke', 'beta'])
    assert.equal(ambiguous.code, 2, ambiguous.stderr)
    assert.match(ambiguous.stderr, /"beta" names 2 hosts: /)
    assert.ok(ambiguous.stderr.includes(b.peerId) && ambiguous.stderr.includes(d.peerId), ambiguous.stderr)
    const unknown = await a.cli(['revoke', 'gama'])
    assert.equal(unknown.code, 2, unknown.stderr)
    assert.match(unknown.stderr, /no host "gama" in this mesh \(did you mean "gamma"\?\)/)
    assert.equal((await members(a)).length, 4, 'a refused name revoked no one')

    // names (and the label views print) name hosts in commands
    const tagged = await a.cli(['grant', 'gamma', '--tag', 'db', '--json'])
    assert.equal(tagged.code, 0, tagged.stderr)
    assert.equal((JSON.parse(tagged.stdout) as { peer: string }).peer, c.peerId)
    const revoked = await a.cli(['revoke', `beta#${d.peerId.slice(-6)}`, '--json'])
    assert.equal(revoked.code, 0, revoked.stderr)
    assert.equal((JSON.parse(revoked.stdout) as { peer: string }).peer, d.peerId)
    const r = await a.cli(['revoke', 'gamma', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { peer: string }).peer, c.peerId)
    const after = await members(a)
    assert.deepEqual(after.filter((m) => m.role === 'revoked').map((m) => [m.peerId, m.name]).sort(), [[c.peerId, 'gamma'], [d.peerId, 'beta']].sort())
    // with d revoked, "beta" means the member that holds it
    const again = await a.cli(['grant', 'beta', '--tag', 'web', '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal((JSON.parse(again.stdout) as { peer: string }).peer, b.peerId)
  } finally {
    for (const h of [c, b, a]) await h.stop()
  }
})
