// The systemd backend where systemd is not PID 1: its state watching runs on `systemctl show`
// output recorded in fixtures/systemd/ (one file per unit state), served by a runner that keeps
// the unit's state as systemd would between the calls the backend makes (start → running,
// stop → stopped). What systemd itself does (Restart=, MemoryMax=, WatchdogSec=) is not run here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import { pino } from 'pino'
import { RotatingLog } from '../../node/agents/logs.js'
import { agentMetrics } from '../../node/agents/metrics.js'
import { ProcessBackend } from '../../node/agents/process.js'
import { Supervisor } from '../../node/agents/supervisor.js'
import { parseUnitState, type SystemctlRunner } from '../../node/agents/systemctl.js'
import { SystemdBackend } from '../../node/agents/systemd.js'
import { parseAgentSpec } from '../../node/agents/spec.js'
import type { AgentBody } from '../../protocols/agents/index.js'

const FIXTURES = fileURLToPath(new URL('fixtures/systemd/', import.meta.url))
const fixture = (name: string): string => readFileSync(join(FIXTURES, `${name}.txt`), 'utf8')
const WAIT_MS = 30_000

/** A unit as systemctl reports it: `show` prints the current fixture; start/restart/stop move it. */
function recordedUnit (state: string, afterStart = 'active-running'): { run: SystemctlRunner, calls: string[], set: (s: string) => void } {
  const calls: string[] = []
  return {
    calls,
    set: (s) => { state = s },
    run: async (argv) => {
      calls.push(argv.join(' '))
      if (argv[0] === 'systemctl') {
        if (argv[1] === 'show') return fixture(state)
        if (argv[1] === 'start' || argv[1] === 'restart') state = afterStart
        if (argv[1] === 'stop') state = 'stopped'
      }
      return ''
    }
  }
}

function setup (): { dir: string, log: RotatingLog, done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-systemd-'))
  const log = new RotatingLog(join(dir, 'log'), 65536, 2)
  return { dir, log, done: () => { log.close(); rmSync(dir, { recursive: true, force: true }) } }
}

const spec = (extra: Record<string, unknown> = {}): ReturnType<typeof parseAgentSpec> =>
  parseAgentSpec('config.json', 'agents[0]', { name: 'llm', backend: 'systemd', command: '/bin/agent', ...extra })

const ENV = { FLEETMESH_AGENT: 'llm', FLEETMESH_API_URL: 'http://127.0.0.1:9000', FLEETMESH_AGENT_TOKEN: 'ab'.repeat(32), PATH: '/bin' }

async function until (what: string, cond: () => boolean): Promise<void> {
  const end = performance.now() + WAIT_MS
  while (!cond()) {
    if (performance.now() > end) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('recorded systemctl show output parses into the unit state, exit and memory', () => {
  const running = parseUnitState(fixture('active-running'))
  assert.deepEqual(running, {
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    result: 'success',
    mainPid: 4211,
    execMainPid: 4211,
    exit: null,
    nRestarts: 0,
    memoryBytes: 48123904,
    invocationId: '5b9c1a0f3e4d4b8a9e2f7c6d1a3b5c7e'
  })
  const crash = parseUnitState(fixture('auto-restart-crash'))
  assert.deepEqual([crash.activeState, crash.subState, crash.mainPid, crash.exit, crash.nRestarts, crash.memoryBytes], ['activating', 'auto-restart', 0, { code: 3, signal: null }, 1, undefined])
  const oom = parseUnitState(fixture('oom-kill'))
  assert.deepEqual([oom.result, oom.exit], ['oom-kill', { code: null, signal: 'SIGKILL' }])
  const watchdog = parseUnitState(fixture('watchdog'))
  assert.deepEqual([watchdog.result, watchdog.exit], ['watchdog', { code: null, signal: 'SIGABRT' }])
  const limit = parseUnitState(fixture('start-limit-hit'))
  assert.deepEqual([limit.activeState, limit.result, limit.nRestarts, limit.invocationId], ['failed', 'start-limit-hit', 5, ''])
  assert.equal(parseUnitState(fixture('not-found')).loadState, 'not-found')
})

test('systemctl show output that is not what systemd prints is refused with a typed error', () => {
  const good = fixture('active-running')
  const cases = [
    good.replace(/^MainPID=.*\n/m, ''),
    good.replace('MainPID=4211', 'MainPID=abc'),
    good.replace('MainPID=4211', 'MainPID=99999999999'),
    good.replace('ActiveState=active', 'ActiveState=Active; rm -rf'),
    good.replace('MemoryCurrent=48123904', 'MemoryCurrent=-1'),
    good + 'no equals sign\n',
    good + `Description=${'x'.repeat(70_000)}\n`,
    ''
  ]
  for (const text of cases) assert.throws(() => parseUnitState(text), { code: 'SYSTEMD_OUTPUT_INVALID' }, text.slice(0, 120))
})

test('start writes the token file, starts the unit and sees a crash in its state', async () => {
  const { dir, log, done } = setup()
  try {
    const unit = recordedUnit('stopped')
    const records: AgentBody[] = []
    const backend = new SystemdBackend({ run: unit.run, runtimeDir: join(dir, 'run'), pollMs: 20, record: (b) => records.push(b) })
    const run = await backend.start(spec(), ENV, dir, log)
    assert.equal(run.pid, 4211)
    assert.ok(unit.calls.includes('systemctl start fleetmesh-agent-llm.service'), unit.calls.join('\n'))
    assert.equal(await run.rssBytes(), 48123904)
    // the token reaches the unit by its EnvironmentFile=, readable by root alone; nothing else goes there
    const envFile = join(dir, 'run', 'llm.env')
    assert.equal(readFileSync(envFile, 'utf8'), `FLEETMESH_AGENT="llm"\nFLEETMESH_AGENT_TOKEN="${'ab'.repeat(32)}"\nFLEETMESH_API_URL="http://127.0.0.1:9000"\n`)
    assert.equal(statSync(envFile).mode & 0o777, 0o600)
    unit.set('auto-restart-crash')
    assert.deepEqual(await run.exited, { code: 3, signal: null })
    assert.equal(await run.rssBytes(), undefined)
    assert.match(log.read().text, /pid 4211 exited 3 \(systemd: activating\/auto-restart, Result=exit-code; systemd restarted it \(NRestarts=1\)\)/)
    // a crash is the supervisor's to record (exit, restart): nothing of the backend's own
    assert.deepEqual(records, [])
  } finally {
    done()
  }
})

test('an OOM kill is recorded as a leak and a watchdog kill as a hang', async () => {
  for (const [state, event, signal] of [['oom-kill', 'leak', 'SIGKILL'], ['watchdog', 'hang', 'SIGABRT']] as const) {
    const { dir, log, done } = setup()
    try {
      const unit = recordedUnit('active-running')
      const records: AgentBody[] = []
      const backend = new SystemdBackend({ run: unit.run, runtimeDir: join(dir, 'run'), pollMs: 20, record: (b) => records.push(b) })
      const run = await backend.start(spec({ memoryMaxBytes: 64 * 1024 * 1024 }), ENV, dir, log)
      unit.set(state)
      assert.deepEqual(await run.exited, { code: null, signal })
      assert.equal(records.length, 1, state)
      assert.equal(records[0]!.event, event)
      assert.equal(records[0]!.pid, 4211)
      assert.match(records[0]!.reason!, new RegExp(`Result=${state}`))
      if (event === 'leak') assert.equal(records[0]!.limitBytes, 64 * 1024 * 1024)
    } finally {
      done()
    }
  }
})

test('a unit systemd restarted between two polls ends the run, with no exit status to claim', async () => {
  const { dir, log, done } = setup()
  try {
    const unit = recordedUnit('active-running')
    const backend = new SystemdBackend({ run: unit.run, runtimeDir: join(dir, 'run'), pollMs: 20, record: () => {} })
    const run = await backend.start(spec(), ENV, dir, log)
    unit.set('restarted-running')
    // the ExecMain* fields now describe pid 4290, not the run that ended
    assert.deepEqual(await run.exited, { code: null, signal: null })
    assert.match(log.read().text, /pid 4211 ended .*NRestarts=1/)
  } finally {
    done()
  }
})

test('a running unit is adopted when its token is current, restarted when it holds an earlier daemon\'s', async () => {
  const { dir, log, done } = setup()
  try {
    const unit = recordedUnit('active-running')
    const backend = new SystemdBackend({ run: unit.run, runtimeDir: join(dir, 'run'), pollMs: 20, record: () => {} })
    const first = await backend.start(spec(), ENV, dir, log)
    // the env file was new: the unit running before had no such token
    assert.ok(unit.calls.includes('systemctl restart fleetmesh-agent-llm.service'))
    await first.stop(0)
    unit.set('active-running')
    unit.calls.length = 0
    const again = await backend.start(spec(), ENV, dir, log)
    assert.equal(again.pid, 4211)
    assert.deepEqual(unit.calls.filter((c) => !c.startsWith('systemctl show')), [], 'adopted as it runs')
    assert.match(log.read().text, /already runs \(pid 4211\): watching it/)
    unit.calls.length = 0
    await again.stop(0)
    assert.ok(unit.calls.includes('systemctl stop fleetmesh-agent-llm.service'))
    await backend.start(spec(), { ...ENV, FLEETMESH_AGENT_TOKEN: 'cd'.repeat(32) }, dir, log)
    assert.ok(unit.calls.includes('systemctl start fleetmesh-agent-llm.service'))
  } finally {
    done()
  }
})

test('a unit failed by its start limit is reset before a start; one that fails again, or is not declared, does not start', async () => {
  const { dir, log, done } = setup()
  try {
    const unit = recordedUnit('start-limit-hit', 'start-limit-hit')
    const backend = new SystemdBackend({ run: unit.run, runtimeDir: join(dir, 'run'), pollMs: 5, record: () => {} })
    await assert.rejects(backend.start(spec(), ENV, dir, log), { code: 'SYSTEMCTL_FAILED', message: /did not start: failed\/failed, Result=start-limit-hit/ })
    assert.deepEqual(unit.calls.filter((c) => !c.startsWith('systemctl show')), ['systemctl reset-failed fleetmesh-agent-llm.service', 'systemctl start fleetmesh-agent-llm.service'])
    const missing = recordedUnit('not-found')
    const b2 = new SystemdBackend({ run: missing.run, runtimeDir: join(dir, 'run'), pollMs: 5, record: () => {} })
    await assert.rejects(b2.start(spec({ name: 'ghost' }), ENV, dir, log), { code: 'SYSTEMCTL_FAILED', message: /fleetmesh-agent-ghost\.service is not-found: declare the agent in services\.fleetmesh\.agents/ })
  } finally {
    done()
  }
})

test('the supervisor runs a systemd agent through systemctl and a process agent itself; an OOM kill heals through its policy', async () => {
  const { dir, done } = setup()
  const unit = recordedUnit('stopped')
  const entries: AgentBody[] = []
  const registry = new Registry()
  const supervisor = new Supervisor({
    specs: [
      parseAgentSpec('c', 'agents[0]', { name: 'llm', backend: 'systemd', command: '/bin/agent', memoryMaxBytes: 64 * 1024 * 1024, liveness: { kind: 'heartbeat', timeoutMs: 60_000 }, restart: { backoffInitialMs: 10 } }),
      parseAgentSpec('c', 'agents[1]', { name: 'local', command: '/bin/sleep', args: ['60'], stopGraceMs: 0 })
    ],
    dir: join(dir, 'agents'),
    backend: new ProcessBackend(),
    systemd: (record) => new SystemdBackend({ run: unit.run, runtimeDir: join(dir, 'run'), pollMs: 20, record }),
    append: async (_kind, body) => { entries.push(body) },
    metrics: agentMetrics(registry),
    logger: pino({ level: 'silent' }),
    apiUrl: 'http://127.0.0.1:9'
  })
  try {
    supervisor.start()
    await until('both agents running', () => supervisor.list().every((s) => s.state === 'running'))
    assert.equal(supervisor.status('llm').pid, 4211)
    const local = supervisor.status('local').pid!
    assert.ok(local !== 4211 && readdirSync('/proc').includes(String(local)), 'the process agent is a real process of this daemon')
    assert.ok(unit.calls.includes('systemctl start fleetmesh-agent-llm.service'))
    assert.ok(!unit.calls.some((c) => c.includes('local')), 'the process agent never reaches systemctl')

    // a heartbeat through the control API feeds the unit's watchdog
    supervisor.heartbeat({ kind: 'agent', agent: 'llm' }, 'llm')
    await until('the heartbeat passed on', () => unit.calls.includes('systemd-notify --pid=4211 WATCHDOG=1'))

    unit.set('oom-kill')
    await until('the agent restarted', () => entries.some((e) => e.agent === 'llm' && e.event === 'restart'))
    const llm = entries.filter((e) => e.agent === 'llm')
    assert.deepEqual(llm.map((e) => e.event), ['start', 'leak', 'exit', 'restart'])
    assert.equal(llm[1]!.limitBytes, 64 * 1024 * 1024)
    assert.equal(llm[2]!.signal, 'SIGKILL')
    assert.equal(llm[3]!.reason, 'crash')
    assert.equal(supervisor.status('llm').state, 'running')
  } finally {
    await supervisor.stop()
    assert.ok(unit.calls.includes('systemctl stop fleetmesh-agent-llm.service'), 'the daemon stops its units when it stops')
    done()
  }
})
