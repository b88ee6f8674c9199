// The installed command runs the CLI compiled into dist/, with no TypeScript loader. The build
// runs first (`npm run build` is a no-op when dist/ is current), so the test sees this tree.
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { withOfflineStore } from '../../node/offline.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'node', 'bin', 'fleetmesh.js')

function fleetmesh (args: string[]): { code: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

before(() => {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
})

test('--help exits 0 and lists every command', () => {
  const r = fleetmesh(['--help'])
  assert.equal(r.code, 0, r.stderr)
  const commands = [...r.stdout.split('Commands:')[1]?.matchAll(/^ {2}(\S+)/gm) ?? []].map((m) => m[1])
  assert.deepEqual(commands, ['init', 'start', 'status', 'peers', 'members', 'invite', 'join', 'grant', 'revoke', 'audit', 'release', 'generations', 'apply', 'rollback', 'room', 'help'])
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
