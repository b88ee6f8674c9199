import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HostProcess, runCli, tempDir, waitFor } from '../../simulations/harness/processes.js'

test('two daemons connect over the hybrid encrypter and list each other as peers', async () => {
  const dirA = join(await tempDir(), 'a')
  const dirB = join(await tempDir(), 'b')
  assert.equal((await runCli(['--data-dir', dirA, 'init', '--mesh', 'pair'])).code, 0)
  assert.equal((await runCli(['--data-dir', dirB, 'init'])).code, 0)
  const a = await HostProcess.start(dirA)
  const b = await HostProcess.start(dirB)
  try {
    const code = (await a.cli(['invite'])).stdout.trim()
    const joined = await b.cli(['join', code])
    assert.equal(joined.code, 0, joined.stderr)
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const peers = await waitFor(async () => {
        const r = await self.cli(['peers', '--json'])
        assert.equal(r.code, 0, r.stderr)
        const list = JSON.parse(r.stdout) as Array<{ peerId: string, encryption: string }>
        return list.some((p) => p.peerId === other.peerId) ? list : undefined
      }, 'peers to list each other')
      assert.equal(peers.find((p) => p.peerId === other.peerId)?.encryption, '/noise-mlkem768-hfs/0.2.0')
      assert.equal((peers.find((p) => p.peerId === other.peerId) as { member?: boolean } | undefined)?.member, true)
      const human = await self.cli(['peers'])
      assert.match(human.stdout, new RegExp(other.peerId))
    }
    const status = JSON.parse((await a.cli(['status', '--json'])).stdout) as { peerId: string, connectedPeers: number }
    assert.equal(status.peerId, a.peerId)
    assert.equal(status.connectedPeers, 1)
  } finally {
    assert.equal(await b.stop(), 0)
    assert.equal(await a.stop(), 0)
  }
})

test('a second start on the same data dir is refused with a clear message', async () => {
  const dir = join(await tempDir(), 'a')
  await runCli(['--data-dir', dir, 'init'])
  const a = await HostProcess.start(dir)
  try {
    const second = await runCli(['--data-dir', dir, 'start'])
    assert.equal(second.code, 4)
    assert.match(second.stderr, /already running/)
  } finally {
    await a.stop()
  }
})

test('a daemon killed with SIGKILL leaves a data dir that starts again', async () => {
  const dir = join(await tempDir(), 'a')
  await runCli(['--data-dir', dir, 'init'])
  const a = await HostProcess.start(dir)
  await a.stop('SIGKILL')
  const again = await HostProcess.start(dir)
  assert.equal(again.peerId, a.peerId)
  assert.equal(await again.stop(), 0)
})

test('query commands say when no daemon runs, with their own exit code', async () => {
  const dir = join(await tempDir(), 'a')
  await runCli(['--data-dir', dir, 'init'])
  const r = await runCli(['--data-dir', dir, 'status'])
  assert.equal(r.code, 3)
  assert.match(r.stderr, /no fleetmesh daemon is running/)
})

test('init refuses to replace an identity; start refuses a corrupt or world-readable one', async () => {
  const dir = join(await tempDir(), 'a')
  assert.equal((await runCli(['--data-dir', dir, 'init'])).code, 0)
  const again = await runCli(['--data-dir', dir, 'init'])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /already initialised/)

  await chmod(join(dir, 'identity.json'), 0o644)
  const loose = await runCli(['--data-dir', dir, 'start'])
  assert.equal(loose.code, 1)
  assert.match(loose.stderr, /readable by others/)

  await writeFile(join(dir, 'identity.json'), '{"v":1,"ed25519":"AAAA"}', { mode: 0o600 })
  await chmod(join(dir, 'identity.json'), 0o600)
  const corrupt = await runCli(['--data-dir', dir, 'start'])
  assert.equal(corrupt.code, 1)
  assert.match(corrupt.stderr, /ed25519/)
})

test('the control API refuses calls without the token', async () => {
  const dir = join(await tempDir(), 'a')
  await runCli(['--data-dir', dir, 'init'])
  const a = await HostProcess.start(dir)
  try {
    const url = /control api: (\S+)/.exec(a.stdout)![1]
    const res = await fetch(`${url}/v1/status`)
    assert.equal(res.status, 401)
    const wrong = await fetch(`${url}/v1/status`, { headers: { authorization: 'Bearer ' + '0'.repeat(64) } })
    assert.equal(wrong.status, 401)
  } finally {
    await a.stop()
  }
})
