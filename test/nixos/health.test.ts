// Health checks: each kind, failure thresholds, bounded output, independence of checks
// (a hanging one never stalls a failing one) and the soak window, decided with an injected clock.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { OUTPUT_LIMIT, validatePolicy, verify, type HealthCheck } from '../../nixos/index.js'
import { SYSTEMD_RUNTIME_DIR } from '../../nixos/health.js'

const fast = { intervalMs: 20, retries: 2, timeoutMs: 2000, startPeriodMs: 0 }

describe('health checks', () => {
  let server: Server
  let base: string
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetmesh-health-'))
    server = createServer((req, res) => {
      if (req.url === '/hang') return
      const status = req.url === '/500' ? 500 : 200
      res.writeHead(status).end(req.url === '/big' ? 'x'.repeat(100_000) : `status ${status}`)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const addr = server.address()
    base = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
    await rm(dir, { recursive: true, force: true })
  })

  const one = async (check: HealthCheck, soakMs = 0) => await verify({ soakMs, checks: [check] })

  it('http: expected status passes, another status fails with its output', async () => {
    assert.equal((await one({ kind: 'http', url: `${base}/ok`, ...fast })).ok, true)
    assert.equal((await one({ kind: 'http', url: `${base}/500`, expectStatus: 500, ...fast })).ok, true)
    const v = await one({ kind: 'http', name: 'web', url: `${base}/500`, ...fast })
    assert.ok(!v.ok)
    assert.deepEqual({ check: v.failed.check, kind: v.failed.kind, failures: v.failed.failures }, { check: 'web', kind: 'http', failures: 2 })
    assert.match(v.failed.output, /HTTP 500 \(expected 200\)\nstatus 500/)
    const big = await one({ kind: 'http', url: `${base}/big`, expectStatus: 201, ...fast })
    assert.ok(!big.ok && big.failed.output.length <= OUTPUT_LIMIT + 20)
    const hang = await one({ kind: 'http', url: `${base}/hang`, ...fast, timeoutMs: 100 })
    assert.ok(!hang.ok)
    assert.match(hang.failed.output, /no answer within 100 ms/)
  })

  it('command: argv or sh -c, exit 0 within the timeout', async () => {
    assert.equal((await one({ kind: 'command', command: ['/bin/true'], ...fast })).ok, true)
    const v = await one({ kind: 'command', command: 'echo boom; exit 2', ...fast })
    assert.ok(!v.ok)
    assert.match(v.failed.output, /exited 2\nboom/)
    assert.equal(v.failed.check, 'command:echo boom; exit 2')
    const slow = await one({ kind: 'command', command: ['/bin/sleep', '5'], ...fast, timeoutMs: 100 })
    assert.ok(!slow.ok)
    assert.match(slow.failed.output, /timed out after 100 ms/)
    const missing = await one({ kind: 'command', command: ['/nonexistent/bin'], ...fast })
    assert.ok(!missing.ok)
    assert.match(missing.failed.output, /not found/)
  })

  it('systemd: units must be active; a host without systemd fails clearly', async () => {
    const v = await one({ kind: 'systemd', units: ['fleetmesh-no-such-unit.service'], ...fast })
    assert.ok(!v.ok)
    if (existsSync(SYSTEMD_RUNTIME_DIR)) {
      assert.match(v.failed.output, /inactive|unknown|failed/)
    } else {
      assert.match(v.failed.output, /systemd is not running on this host.*fleetmesh-no-such-unit\.service/)
    }
  })

  it('a hanging check does not stall a failing one', async () => {
    const v = await verify({
      soakMs: 0,
      checks: [
        { kind: 'http', name: 'hangs', url: `${base}/hang`, intervalMs: 20, retries: 1, timeoutMs: 60_000, startPeriodMs: 0 },
        { kind: 'command', name: 'fails', command: 'exit 1', intervalMs: 20, retries: 3, startPeriodMs: 0 }
      ]
    })
    assert.ok(!v.ok)
    assert.equal(v.failed.check, 'fails')
    assert.equal(v.probes.fails, 3)
    assert.equal(v.probes.hangs, 0, 'the hanging probe was still in flight, and was abandoned')
  })

  it('soak: every check must stay clean until the window has passed', async () => {
    let t = 0
    const now = (): number => t
    // Passes twice, then fails for good: a generation that degrades during the soak.
    const counter = join(dir, 'count')
    const degrading: HealthCheck = { kind: 'command', name: 'degrades', command: `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; [ $n -le 2 ]`, intervalMs: 10, retries: 2, startPeriodMs: 0 }
    const v = await verify({ soakMs: 1000, checks: [degrading] }, { now })
    assert.ok(!v.ok)
    assert.equal(v.probes.degrades, 4)

    // A healthy check passes once the (injected) clock has crossed the window, not before.
    let calls = 0
    const ticking = (): number => (calls++) * 100
    const ok = await verify({ soakMs: 1000, checks: [{ kind: 'command', name: 'fine', command: ['/bin/true'], intervalMs: 1 }] }, { now: ticking })
    assert.ok(ok.ok)
    assert.ok((ok.probes.fine ?? 0) >= 9, `probed ${ok.probes.fine} times`)
    // With no soak, the first clean round decides.
    const quick = await verify({ soakMs: 0, checks: [{ kind: 'command', name: 'fine', command: ['/bin/true'] }] })
    assert.ok(quick.ok)
    assert.equal(quick.probes.fine, 1)
  })

  it('start period: failures before the first success do not count within it, and do after it', async () => {
    // A service that needs 5 probes to come up, with 2 retries: failed without a start period.
    const slow = (name: string): HealthCheck => {
      const counter = join(dir, `slow-${name}`)
      return { kind: 'command', name, command: `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; [ $n -gt 5 ]`, intervalMs: 10, retries: 2 }
    }
    const started = await verify({ soakMs: 0, checks: [{ ...slow('with-period'), startPeriodMs: 60_000 }] })
    assert.ok(started.ok)
    assert.equal(started.probes['with-period'], 6)
    const counted = await verify({ soakMs: 0, checks: [{ ...slow('no-period'), startPeriodMs: 0 }] })
    assert.ok(!counted.ok)
    assert.equal(counted.failed.failures, 2)
    // The default (DEFAULT_START_PERIOD_MS) covers such a start too.
    assert.ok((await verify({ soakMs: 0, checks: [slow('default')] })).ok)

    // A check that never passes fails once its start period is over, after `retries` more failures;
    // one that passed once counts its next failures at once (start-up is over).
    let t = 0
    const now = (): number => { t += 100; return t }
    const never = await verify({ soakMs: 0, checks: [{ kind: 'command', name: 'never', command: 'exit 1', intervalMs: 1, retries: 2, startPeriodMs: 1000 }] }, { now })
    assert.ok(!never.ok)
    assert.ok((never.probes.never ?? 0) >= 10, `probed ${never.probes.never} times`)
    const flapCounter = join(dir, 'flap')
    const flap: HealthCheck = { kind: 'command', name: 'flap', command: `n=$(cat ${flapCounter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${flapCounter}; [ $n -le 1 ]`, intervalMs: 1, retries: 2, startPeriodMs: 60_000 }
    const flapped = await verify({ soakMs: 60_000, checks: [flap] })
    assert.ok(!flapped.ok)
    assert.equal(flapped.probes.flap, 3)
  })

  it('rejects policies that cannot be evaluated', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ soakMs: -1, checks: [] }, /soakMs/],
      [{ soakMs: 0, checks: [{ kind: 'http', url: 'ftp://x' }] }, /url/],
      [{ soakMs: 0, checks: [{ kind: 'command', command: [] }] }, /empty/],
      [{ soakMs: 0, checks: [{ kind: 'systemd', units: ['--all'] }] }, /units/],
      [{ soakMs: 0, checks: [{ kind: 'command', command: 'true', retries: 0 }] }, /retries/],
      [{ soakMs: 0, checks: [{ kind: 'command', command: 'true', startPeriodMs: -1 }] }, /startPeriodMs/],
      [{ soakMs: 0, checks: [{ kind: 'command', command: 'true', name: 'a' }, { kind: 'command', command: 'false', name: 'a' }] }, /duplicate/]
    ]
    for (const [policy, msg] of bad) {
      assert.throws(() => validatePolicy(policy as Parameters<typeof validatePolicy>[0]), (err: Error & { code?: string }) => err.code === 'INVALID_CONFIG' && msg.test(err.message))
    }
  })
})
