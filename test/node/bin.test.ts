// The installed command runs the CLI compiled into dist/, with no TypeScript loader. `npm test`
// builds first; a dist/ older than the tree is refused, so the test sees this tree.
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { withOfflineStore } from '../../node/offline.js'
import { assertBuilt } from '../../simulations/harness/processes.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'node', 'bin', 'fleetmesh.js')

function fleetmesh (args: string[]): { code: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

before(() => { assertBuilt() })

test('--help exits 0 and lists every command', () => {
  const r = fleetmesh(['--help'])
  assert.equal(r.code, 0, r.stderr)
  const commands = [...r.stdout.split('Commands:')[1]?.matchAll(/^ {2}(\S+)/gm) ?? []].map((m) => m[1])
  assert.deepEqual(commands, ['init', 'start', 'status', 'peers', 'members', 'invite', 'join', 'grant', 'revoke', 'audit', 'release', 'budget', 'generations', 'apply', 'rollback', 'pin', 'unpin', 'pins', 'quarantine', 'release-floor', 'room', 'drift', 'agents', 'ui', 'config', 'completion', 'help'])
})

test('a command that needs the daemon exits 3 when none runs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-bin-'))
  try {
    const dataDir = join(dir, 'host')
    const init = fleetmesh(['--data-dir', dataDir, 'init'])
    assert.equal(init.code, 0, init.stderr)
    for (const command of ['status', 'peers', 'room list']) {
      const r = fleetmesh(['--data-dir', dataDir, ...command.split(' ')])
      assert.equal(r.code, 3, `${command}: ${r.stderr}`)
      assert.match(r.stderr, /^fleetmesh: no fleetmesh daemon is running on /)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a long answer reaches a slow reader whole before the command exits', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-bin-'))
  try {
    const dataDir = join(dir, 'host')
    assert.equal(fleetmesh(['--data-dir', dataDir, 'init', '--mesh', 'm']).code, 0)
    const entries = 300
    await withOfflineStore(dataDir, async ({ store }) => {
      for (let i = 0; i < entries; i++) await store.append('health', { path: '/nix/store/00000000000000000000000000000000-x', ok: false, check: 'service', output: 'connect ECONNREFUSED 127.0.0.1:12345 '.repeat(5) })
    })
    // A reader that lets the pipe fill before it drains it: what exit() would cut is still unread.
    const child = spawn(process.execPath, [BIN, '--data-dir', dataDir, 'audit', 'log', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const closed = new Promise<number | null>((resolve) => { child.on('close', resolve) })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stdout.pause()
    await sleep(1_000)
    child.stdout.resume()
    const code = await closed
    assert.equal(code, 0)
    const lines = out.trimEnd().split('\n')
    assert.equal(lines.length, entries + 1, 'the genesis and every health entry')
    for (const line of lines) JSON.parse(line)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

/**
 * Runs `start` through the installed command on a pseudo-terminal (`script`), with `node` as the
 * interpreter, and types Ctrl-C `presses` times: the terminal's line discipline signals the whole
 * foreground process group, as an operator's terminal does.
 */
async function ctrlC (node: string, presses: 1 | 2): Promise<{ code: number | null, output: string, dataDir: string, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-bin-'))
  const dataDir = join(dir, 'host')
  assert.equal(fleetmesh(['--data-dir', dataDir, 'init']).code, 0)
  const child = spawn('script', ['-qec', `exec ${node} ${BIN} --data-dir ${dataDir} start`, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const closed = new Promise<number | null>((resolve) => { child.on('close', resolve) })
  let output = ''
  const started = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => { output += d; if (output.includes('control api:')) resolve() })
  })
  await Promise.race([started, closed])
  assert.ok(existsSync(join(dataDir, 'api.json')) && existsSync(join(dataDir, 'daemon.lock')), output)
  // Signals do not queue: a second press is typed once the first one's shutdown is under way.
  child.stdin.write('\x03')
  if (presses > 1) {
    await new Promise<void>((resolve) => {
      const check = (): void => { if (output.includes('shutting down')) { child.stdout.off('data', check); resolve() } }
      child.stdout.on('data', check)
      check()
    })
    child.stdin.write('\x03')
  }
  const code = await closed
  child.stdin.destroy()
  return { code, output, dataDir, dir }
}

for (const [label, node] of [['the pinned Node, in process', process.execPath], ['the system Node 20, through the re-exec', '/usr/bin/node']] as const) {
  test(`Ctrl-C stops the daemon once and cleanly (${label})`, { timeout: 120_000, skip: !existsSync(node) }, async () => {
    const r = await ctrlC(node, 1)
    try {
      assert.equal(r.code, 0, r.output)
      assert.equal(r.output.match(/shutting down/g)?.length, 1, r.output)
      assert.match(r.output, /node stopped/)
      assert.equal(existsSync(join(r.dataDir, 'api.json')), false, 'api.json is removed')
      assert.equal(existsSync(join(r.dataDir, 'daemon.lock')), false, 'daemon.lock is released')
    } finally {
      await rm(r.dir, { recursive: true, force: true })
    }
  })
}

test('a second Ctrl-C during shutdown is logged and the stop stays clean', { timeout: 120_000 }, async () => {
  const r = await ctrlC('/usr/bin/node', 2)
  try {
    assert.equal(r.code, 0, r.output)
    assert.match(r.output, /already stopping/)
    assert.equal(existsSync(join(r.dataDir, 'api.json')), false, 'api.json is removed')
    assert.equal(existsSync(join(r.dataDir, 'daemon.lock')), false, 'daemon.lock is released')
  } finally {
    await rm(r.dir, { recursive: true, force: true })
  }
})

test('a signal sent to the re-exec wrapper alone (a supervisor\'s) reaches the daemon once', { timeout: 120_000, skip: !existsSync('/usr/bin/node') }, async () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-bin-'))
    try {
      const dataDir = join(dir, 'host')
      assert.equal(fleetmesh(['--data-dir', dataDir, 'init']).code, 0)
      const child = spawn('/usr/bin/node', [BIN, '--data-dir', dataDir, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] })
      const closed = new Promise<number | null>((resolve) => { child.on('close', resolve) })
      let output = ''
      child.stderr.setEncoding('utf8').on('data', (d: string) => { output += d })
      await new Promise<void>((resolve) => child.stdout.setEncoding('utf8').on('data', (d: string) => { if (d.includes('control api:')) resolve() }))
      child.kill(signal)
      assert.equal(await closed, 0, output)
      assert.equal(output.match(/shutting down/g)?.length, 1, output)
      assert.doesNotMatch(output, /already stopping/)
      assert.equal(existsSync(join(dataDir, 'api.json')), false)
      assert.equal(existsSync(join(dataDir, 'daemon.lock')), false)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
})
