// A stable control API address (`api.port` in config.json) and `fleetmesh ui`, through real
// daemons and the real CLI.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { HostProcess, runCli, tempDir } from '../../simulations/harness/processes.js'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function hostOnPort (port: number): Promise<string> {
  const dir = join(await tempDir(), 'a')
  assert.equal((await runCli(['--data-dir', dir, 'init'])).code, 0)
  const path = join(dir, 'config.json')
  const config = JSON.parse(await readFile(path, 'utf8')) as { api: { host: string, port: number } }
  config.api.port = port
  await writeFile(path, JSON.stringify(config))
  return dir
}

test('api.port gives the control API and the fleet view one address across restarts; ui says how to sign in', { timeout: 180_000 }, async () => {
  const port = await freePort()
  const dir = await hostOnPort(port)
  const url = `http://127.0.0.1:${port}`
  for (let run = 0; run < 2; run++) {
    const host = await HostProcess.start(dir)
    try {
      const token = (await readFile(join(dir, 'api-token'), 'utf8')).trim()
      assert.match(host.stdout, new RegExp(`^control api: ${url}$`, 'm'))
      const ui = await host.cli(['ui'])
      assert.equal(ui.code, 0, ui.stderr)
      assert.match(ui.stdout, new RegExp(`^fleet view: ${url}/ui$`, 'm'))
      assert.match(ui.stdout, new RegExp(`open ${url}/ui\\?token=TOKEN once`))
      assert.ok(ui.stdout.includes(join(dir, 'api-token')), ui.stdout)
      assert.equal(ui.stdout.includes(token), false, 'the token is printed only with --with-token')
      const signIn = (JSON.parse((await host.cli(['ui', '--with-token', '--json'])).stdout) as { signIn: string }).signIn
      assert.equal(signIn, `${url}/ui?token=${token}`)
      // The printed address signs a browser in: a session cookie and the token dropped from the URL.
      const res = await fetch(signIn, { redirect: 'manual' })
      assert.equal(res.status, 303)
      assert.equal(res.headers.get('location'), '/ui')
      assert.match(res.headers.get('set-cookie') ?? '', /HttpOnly/)
    } finally {
      assert.equal(await host.stop(), 0)
    }
  }
})

test('a control API port already taken is refused in one line saying what to do', { timeout: 180_000 }, async () => {
  const port = await freePort()
  const first = await HostProcess.start(await hostOnPort(port))
  try {
    const second = await runCli(['--data-dir', await hostOnPort(port), 'start'])
    assert.equal(second.code, 1, second.stderr)
    assert.match(second.stderr, new RegExp(`^fleetmesh: the control API cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use .*"api": \\{"port": N\\}`, 'm'))
    assert.doesNotMatch(second.stderr, /\n\s+at /, 'no stack trace')
  } finally {
    await first.stop()
  }
})

test('ui without a running daemon says so with exit 3', { timeout: 60_000 }, async () => {
  const dir = join(await tempDir(), 'a')
  assert.equal((await runCli(['--data-dir', dir, 'init'])).code, 0)
  const r = await runCli(['--data-dir', dir, 'ui'])
  assert.equal(r.code, 3)
  assert.match(r.stderr, /no fleetmesh daemon is running/)
})
