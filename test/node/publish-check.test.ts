// `release publish` checks what it can before the daemon signs: every tag and host names a
// member, and the path is in this host's store (what "peers" serve) or listed by a named
// substituter, asked with real Nix (`nix path-info --store file://…`). --force publishes anyway.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Fleet } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import { runNix } from '../../nixos/nix.js'
import type { ReleaseStatus } from '../../protocols/rollout/index.js'

test('release publish refuses a release no member matches or no source can deliver; --force publishes it', { timeout: 300_000 }, async () => {
  const fleet = await Fleet.create({ hosts: [{ name: 'solo', role: 'admin', tags: ['web'] }] })
  const h = fleet.founder
  try {
    await fleet.start('solo')
    const path = await buildGeneration(`publish-check-${Date.now()}`, 'good')
    const missing = `/nix/store/${'a'.repeat(32)}-never-built`
    const cacheA = join(fleet.dir, 'cache-a')
    const cacheB = join(fleet.dir, 'cache-b')
    await runNix('nix', ['copy', '--to', `file://${cacheA}`, path])
    await mkdir(cacheB)

    const refusals: Array<[string[], RegExp]> = [
      [['--tag', 'db', '--path', path], /target tag:db: no member has tag "db"/],
      [['--host', '12D3KooWNotAMember', '--path', path], /target host:12D3KooWNotAMember: no host "12D3KooWNotAMember" in this mesh/],
      // hosts resolve as every command resolves them: an unknown name gets the close one
      [['--host', 'solx', '--path', path], /target host:solx: no host "solx" in this mesh \(did you mean "solo"\?\)/],
      [['--tag', 'web', '--waves', 'tag:canary,100%', '--path', path], /wave 1 tag:canary: no member has tag "canary"/],
      [['--tag', 'web', '--path', missing], new RegExp(`${missing} is not available from its source\\(s\\): peers: not in this host's store`)],
      [['--tag', 'web', '--path', path, '--source', `file://${cacheB}`], new RegExp(`${path} is not available from its source\\(s\\): file://${cacheB}: `)]
    ]
    for (const [args, why] of refusals) {
      const r = await h.cli(['release', 'publish', ...args])
      assert.equal(r.code, 5, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /^fleetmesh: not published: /)
      assert.match(r.stderr, why, args.join(' '))
      assert.match(r.stderr, /\(--force publishes anyway\)\n$/)
    }
    assert.equal((await h.json<{ releases: ReleaseStatus[] }>(['release', 'list'])).releases.length, 0, 'nothing refused was signed')

    const cached = await h.cli(['release', 'publish', '--tag', 'web', '--path', path, '--source', `file://${cacheA}`])
    assert.equal(cached.code, 0, `a substituter that lists the closure will do: ${cached.stderr}`)
    const forced = await h.cli(['release', 'publish', '--tag', 'db', '--path', missing, '--force'])
    assert.equal(forced.code, 0, forced.stderr)
    // a unique id prefix and the short id views print pass the check; the signed release holds the id
    const short = `${h.peerId.slice(0, 8)}…${h.peerId.slice(-6)}`
    const byPrefix = await h.cli(['release', 'publish', '--host', h.peerId.slice(0, 16), '--waves', `host:${short}`, '--path', path, '--json'])
    assert.equal(byPrefix.code, 0, byPrefix.stderr)
    const body = JSON.parse(byPrefix.stdout) as { targets: Array<{ host?: string }>, waves: Array<{ hosts?: string[] }> }
    assert.deepEqual([body.targets[0]?.host, body.waves[0]?.hosts], [h.peerId, [h.peerId]])
    assert.equal((await h.json<{ releases: ReleaseStatus[] }>(['release', 'list'])).releases.length, 3)
  } finally {
    await fleet.close()
  }
})
