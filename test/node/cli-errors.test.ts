// What the operator sees when they get something wrong, through the real CLI: each usage error
// says what is wrong and how to write it (exit 2), garbage is refused before anything runs, and
// file, address and data dir errors are one line naming the thing, never a stack or an errno.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, tempDir, type CliResult } from '../../simulations/harness/processes.js'

const STORE_PATH = '/nix/store/00000000000000000000000000000000-system'

/** One line on stderr, no stack, nothing on stdout. */
function oneLine (r: CliResult, label: string): string {
  const lines = r.stderr.trimEnd().split('\n')
  assert.equal(lines.length, 1, `${label}: one line, got:\n${r.stderr}`)
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${label}: no stack trace`)
  assert.match(lines[0], /^fleetmesh: /, label)
  return lines[0]
}

test('usage errors print what is wrong and how to write it, and exit 2', { timeout: 600_000 }, async () => {
  const dir = await tempDir('fleetmesh-usage-')
  try {
    const dataDir = join(dir, 'none')
    const cases: Array<[string[], RegExp]> = [
      [['release', 'publish', '--path', STORE_PATH, '--waves', '1,half'], /--waves: cannot read "half"; write .*N%.*tag:T or host:ID\+ID \(e\.g\. 1,25%,100%\)/],
      [['release', 'publish', '--path', STORE_PATH, '--gate', 'healthy=all'], /--gate: cannot read "healthy=all".*healthy=N%,soak=DURATION/],
      [['release', 'publish', '--path', STORE_PATH, '--max-failures', '-1'], /--max-failures: must be at least 0, not -1/],
      [['release', 'publish', '--path', STORE_PATH, '--max-failures', 'two'], /--max-failures: "two" is not a whole number/],
      [['release', 'publish'], /--path \/nix\/store\//],
      [['release', 'publish', '--path', '/tmp/system'], /--path: "\/tmp\/system" is not a Nix store path/],
      [['release', 'publish', '--path', STORE_PATH, '--source', 'ftp:/x'], /--source: "ftp:\/x".*URL.*peers/],
      [['release', 'publish', '--path', STORE_PATH, '--wait-offline', 'soon'], /--wait-offline: "soon" is not a duration.*90s/],
      [['init', '--tag', 'web'], /--tag needs --mesh/],
      [['init', '--mesh', 'bad name!'], /--mesh: "bad name!".*letters, digits/],
      [['init', '--listen', 'localhost:4001'], /--listen: "localhost:4001" is not a multiaddr.*\/ip4\/0\.0\.0\.0\/tcp\/4001/],
      [['audit', 'log', '--since', 'yesterday'], /--since: cannot read "yesterday".*2h.*2026-01-31T12:00:00Z/],
      [['audit', 'log', '--limit', 'abc'], /--limit: "abc" is not a whole number/],
      [['audit', 'log', '--limit', '0'], /--limit: must be at least 1/],
      [['invite', '--uses', 'abc'], /--uses: "abc" is not a whole number/],
      [['invite', '--uses', '0'], /--uses: must be at least 1/],
      [['invite', '--ttl', 'soon'], /--ttl: "soon" is not a duration/],
      [['invite', '--role', 'root'], /--role: "root" is not a role; write host or admin/],
      [['invite', '--tag', 'Web Servers'], /--tag: "Web Servers" is not a tag/],
      [['grant', 'somebody', '--role', 'root'], /--role: "root" is not a role/],
      [['start', '--bootstrap', 'not-a-multiaddr'], /--bootstrap: "not-a-multiaddr" is not a multiaddr/],
      [['start', '--bootstrap', '/ip4/127.0.0.1/tcp/4001'], /--bootstrap: .*\/p2p\/PEER_ID/],
      [['start', '--listen', 'nope'], /--listen: "nope" is not a multiaddr/],
      [['rollback', '--to', 'last'], /--to: "last" is not a whole number/],
      [['apply', './result'], /apply: ".\/result" is not a Nix store path; write \/nix\/store\/HASH-NAME/],
      [['generations', 'diff', 'a', '2'], /generation "a" is not a whole number/],
      [['room', 'token', 'bot', '--ttl', 'forever'], /--ttl: "forever" is not a duration/],
      [['room', 'create', 'ops', '--member', 'h', '--history', 'all'], /--history: "all" is not a history mode; write joined or shared/]
    ]
    for (const [args, why] of cases) {
      const r = await runCli(['--data-dir', dataDir, ...args])
      const label = args.join(' ')
      assert.equal(r.code, 2, `${label}: exit 2, got ${r.code}: ${r.stderr}`)
      assert.match(oneLine(r, label), why, label)
    }
    const unknown = await runCli(['--data-dir', dataDir, 'members', '--jsno'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown option '--jsno'[\s\S]*Did you mean --json\?/)
    assert.ok(unknown.stderr.split('\n').length < 6, `a hint, not the whole help:\n${unknown.stderr}`)
    const misspelt = await runCli(['--data-dir', dataDir, 'relase', 'list'])
    assert.equal(misspelt.code, 2)
    assert.match(misspelt.stderr, /unknown command 'relase'[\s\S]*Did you mean release\?/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('an unknown --kind is refused with the kinds and a "did you mean"; a known one with no entries is not', { timeout: 120_000 }, async () => {
  const dir = await tempDir('fleetmesh-kind-')
  try {
    const dataDir = join(dir, 'a')
    assert.equal((await runCli(['--data-dir', dataDir, 'init', '--mesh', 'm'])).code, 0)
    const typo = await runCli(['--data-dir', dataDir, 'audit', 'log', '--kind', 'rolback'])
    assert.equal(typo.code, 2, typo.stderr)
    assert.match(oneLine(typo, '--kind rolback'), /--kind: no kind "rolback" \(did you mean "rollback"\?\); the kinds are .*genesis.*release/)
    const none = await runCli(['--data-dir', dataDir, 'audit', 'log', '--kind', 'release'])
    assert.equal(none.code, 0, none.stderr)
    assert.equal(none.stdout, '')
    const genesis = await runCli(['--data-dir', dataDir, 'audit', 'log', '--kind', 'genesis', '--json'])
    assert.equal(genesis.stdout.trim().split('\n').length, 1)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a listen address in use, a missing file, a data dir that is a file: one line each', { timeout: 300_000 }, async () => {
  const dir = await tempDir('fleetmesh-leak-')
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  const port = (busy.address() as { port: number }).port
  try {
    const dataDir = join(dir, 'a')
    assert.equal((await runCli(['--data-dir', dataDir, 'init', '--mesh', 'm'])).code, 0)

    const inUse = await runCli(['--data-dir', dataDir, 'start', '--listen', `/ip4/127.0.0.1/tcp/${port}`], { env: { FLEETMESH_LOG_LEVEL: 'silent' } })
    assert.equal(inUse.code, 1)
    const line = oneLine(inUse, 'EADDRINUSE')
    assert.match(line, new RegExp(`cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${port}: the address is in use`))
    assert.match(line, /--listen/)
    assert.doesNotMatch(line, /faultTolerance|EADDRINUSE/)

    const health = await runCli(['--data-dir', dataDir, 'start', '--health', join(dir, 'health.json')])
    assert.equal(health.code, 2)
    assert.equal(oneLine(health, '--health'), `fleetmesh: --health: ${join(dir, 'health.json')}: no such file or directory`)

    const file = await runCli(['--data-dir', dataDir, 'audit', 'verify', '--file', join(dir, 'trail.jsonl')])
    assert.equal(file.code, 2)
    assert.equal(oneLine(file, '--file'), `fleetmesh: --file: ${join(dir, 'trail.jsonl')}: no such file or directory`)

    await writeFile(join(dir, 'empty.jsonl'), '')
    const empty = await runCli(['--data-dir', dataDir, 'audit', 'verify', '--file', join(dir, 'empty.jsonl')])
    assert.equal(empty.code, 5, 'an empty export proves nothing')
    assert.match(empty.stdout, /FAILED: .*empty\.jsonl holds no entries/)

    const plain = join(dir, 'plain')
    await writeFile(plain, 'not a dir')
    for (const args of [['init'], ['start'], ['audit', 'log']]) {
      const r = await runCli(['--data-dir', plain, ...args])
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(oneLine(r, args.join(' ')), `fleetmesh: the data dir ${plain} is a file, not a directory; choose another with --data-dir (or FLEETMESH_DATA_DIR)`)
    }

    await mkdir(join(dir, 'bad'))
    await writeFile(join(dir, 'bad', 'config.json'), JSON.stringify({ version: 1, deploy: { profil: '/nix/var/nix/profiles/system' } }))
    const misspelt = await runCli(['--data-dir', join(dir, 'bad'), 'start'])
    assert.equal(misspelt.code, 2, 'an invalid config is a usage error')
    assert.match(oneLine(misspelt, 'config'), /"deploy\.profil" is not a setting \(did you mean "profile"\?\)/)
  } finally {
    busy.close()
    await rm(dir, { recursive: true, force: true })
  }
})
