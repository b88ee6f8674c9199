// The control API against a real daemon process: the fleet view's token becomes a cookie, a
// rebinding web page is refused, a non-loopback listener needs an explicit yes, and the CLI
// never hands its token to whatever listens where a dead daemon used to.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { request, createServer, type IncomingHttpHeaders } from 'node:http'
import { readFile, utimes, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { HostProcess, runCli, tempDir } from '../../simulations/harness/processes.js'

interface Reply { status: number, headers: IncomingHttpHeaders, body: string }

/** node:http, not fetch: fetch will not send a Host header of the caller's choosing. */
async function call (url: string, path: string, opts: { method?: string, headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d }).on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

async function daemon (): Promise<{ host: HostProcess, url: string, token: string }> {
  const dir = join(await tempDir(), 'a')
  assert.equal((await runCli(['--data-dir', dir, 'init', '--mesh', 'api'])).code, 0)
  const host = await HostProcess.start(dir)
  const url = /control api: (\S+)/.exec(host.stdout)![1]!
  return { host, url, token: (await readFile(join(dir, 'api-token'), 'utf8')).trim() }
}

test('the fleet view trades its one-time ?token= for an HttpOnly SameSite=Strict cookie that only reads', { timeout: 120_000 }, async () => {
  const { host, url, token } = await daemon()
  try {
    const first = await call(url, `/ui?token=${token}`)
    assert.equal(first.status, 303)
    assert.equal(first.headers.location, '/ui')
    const setCookie = first.headers['set-cookie']?.[0] ?? ''
    assert.match(setCookie, /HttpOnly/)
    assert.match(setCookie, /SameSite=Strict/)
    assert.ok(!setCookie.includes(token), 'the cookie is not the token')
    const jar = setCookie.split(';')[0]!

    const page = await call(url, '/ui', { headers: { cookie: jar } })
    assert.equal(page.status, 200)
    assert.ok(!page.body.includes(token), 'the page does not carry the token')
    assert.equal((await call(url, '/v1/status', { headers: { cookie: jar } })).status, 200)
    // The cookie never changes anything, and a token in the query string opens nothing else.
    assert.equal((await call(url, '/v1/invites', { method: 'POST', headers: { cookie: jar, 'content-type': 'application/json' } })).status, 401)
    assert.equal((await call(url, `/v1/status?token=${token}`)).status, 401)
    assert.equal((await call(url, `/ui?token=${'0'.repeat(64)}`)).status, 401)
    assert.equal((await call(url, '/v1/status', { headers: { cookie: jar.replace(/=.*/, `=${'0'.repeat(64)}`) } })).status, 401)
  } finally {
    await host.stop()
  }
})

test('a request naming another Host or Origin is refused, token or not (DNS rebinding)', { timeout: 120_000 }, async () => {
  const { host, url, token } = await daemon()
  try {
    const bearer = { authorization: `Bearer ${token}` }
    const port = new URL(url).port
    assert.equal((await call(url, '/v1/status', { headers: bearer })).status, 200)
    assert.equal((await call(url, '/v1/status', { headers: { ...bearer, host: `localhost:${port}`, origin: `http://localhost:${port}` } })).status, 200)
    for (const headers of [
      { ...bearer, host: `rebind.example:${port}` },
      { ...bearer, host: 'rebind.example' },
      { ...bearer, host: `127.0.0.1:${Number(port) + 1}` },
      { ...bearer, origin: 'http://rebind.example' },
      { ...bearer, origin: 'null' }
    ]) {
      const r = await call(url, '/v1/status', { headers })
      assert.equal(r.status, 403, JSON.stringify(headers))
    }
    assert.equal((await call(url, `/ui?token=${token}`, { headers: { host: `rebind.example:${port}` } })).status, 403)
  } finally {
    await host.stop()
  }
})

test('a non-loopback api.host is refused unless the config allows it explicitly', { timeout: 120_000 }, async () => {
  const dir = join(await tempDir(), 'a')
  assert.equal((await runCli(['--data-dir', dir, 'init'])).code, 0)
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { api: Record<string, unknown> }
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, api: { host: '0.0.0.0', port: 0 } }))
  const refused = await runCli(['--data-dir', dir, 'start'])
  assert.equal(refused.code, 2, 'a config refused is a usage error')
  assert.match(refused.stderr, /api.host 0.0.0.0 is not a loopback address.*allowRemote/)
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, api: { host: '0.0.0.0', port: 0, allowRemote: true } }))
  const allowed = await HostProcess.start(dir)
  try {
    assert.match(allowed.stdout, /control api: http:\/\/0\.0\.0\.0:\d+/)
    const status = await allowed.cli(['status', '--json'])
    assert.equal(status.code, 0, status.stderr)
  } finally {
    assert.equal(await allowed.stop(), 0)
  }
})

test('the CLI sends its token only to the live daemon that wrote api.json', { timeout: 120_000 }, async () => {
  const dir = join(await tempDir(), 'a')
  assert.equal((await runCli(['--data-dir', dir, 'init'])).code, 0)
  // A daemon has run here (so the token exists) and is gone.
  assert.equal(await (await HostProcess.start(dir)).stop(), 0)
  // Whatever now listens on the port a dead daemon left in api.json.
  const seen: Array<string | undefined> = []
  const squatter = createServer((req, res) => { seen.push(req.headers.authorization); res.writeHead(200, { 'content-type': 'application/json' }).end('{}') })
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
  const squat = `http://127.0.0.1:${(squatter.address() as AddressInfo).port}`
  const stale = async (pid: number): Promise<void> => {
    await writeFile(join(dir, 'api.json'), JSON.stringify({ url: squat, pid }))
    await writeFile(join(dir, 'daemon.lock'), `${pid}\n`)
  }
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' })
  try {
    // A daemon killed with SIGKILL: its pid no longer exists.
    const dead = spawn('true')
    await new Promise((resolve) => dead.on('exit', resolve))
    await stale(dead.pid!)
    let r = await runCli(['--data-dir', dir, 'status'])
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /left by a daemon that is gone/)
    // Its pid reused by a process started after api.json was written.
    await stale(sleeper.pid!)
    const before = new Date(Date.now() - 60_000)
    await utimes(join(dir, 'api.json'), before, before)
    r = await runCli(['--data-dir', dir, 'status'])
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /left by a daemon that is gone/)
    assert.deepEqual(seen, [], 'the squatter never got a request')
  } finally {
    sleeper.kill()
    squatter.close()
  }
  // The daemon's own api.json passes the same check.
  const a = await HostProcess.start(dir)
  try {
    assert.equal((await a.cli(['status', '--json'])).code, 0)
  } finally {
    await a.stop()
  }
})
