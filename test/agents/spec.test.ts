// config.json's `agents`: defaults filled in, every error a CONFIG_INVALID naming its field.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../node/config-file.js'

const parse = (agents: unknown): ReturnType<typeof parseConfig> => parseConfig('config.json', JSON.stringify({ version: 1, agents }))

test('an agent spec gets its defaults, and a full one is kept as written', () => {
  const [a] = parse([{ name: 'web', command: '/bin/true' }]).agents
  assert.deepEqual(a, {
    name: 'web',
    command: '/bin/true',
    args: [],
    env: {},
    restart: { backoffInitialMs: 100, backoffMaxMs: 30_000, maxRestarts: 5, windowMs: 60_000 },
    memoryIntervalMs: 1000,
    stopGraceMs: 5000,
    escalateWithinMs: 600_000,
    logs: { maxBytes: 1024 * 1024, files: 3 }
  })
  const full = {
    name: 'llm.worker-1',
    command: '/usr/bin/node',
    args: ['agent.js', '--x'],
    env: { MODEL: 'small' },
    cwd: '/srv/agent',
    user: 'agent',
    restart: { backoffInitialMs: 50, backoffMaxMs: 1000, maxRestarts: 10, windowMs: 5000 },
    memoryMaxBytes: 512 * 1024 * 1024,
    memoryIntervalMs: 250,
    liveness: { kind: 'http', url: 'http://127.0.0.1:8080/health', intervalMs: 500, timeoutMs: 3000 },
    stopGraceMs: 1000,
    escalateWithinMs: 0,
    logs: { maxBytes: 65536, files: 5 }
  }
  assert.deepEqual(parse([full]).agents[0], full)
  // what the daemon writes back (pinning its ports) reads the same again
  const again = parseConfig('config.json', JSON.stringify(parse([full])))
  assert.deepEqual(again.agents[0], full)
  assert.deepEqual(parse(undefined).agents, [])
})

test('a bad agent spec is refused with an error that names the field', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /"agents" must be a list/],
    [[{ command: '/bin/true' }], /"agents\[0\]\.name"/],
    [[{ name: 'a b', command: '/bin/true' }], /"agents\[0\]\.name"/],
    [[{ name: 'a', command: '' }], /"agents\[0\]\.command"/],
    [[{ name: 'a', command: '/bin/true', args: [1] }], /"agents\[0\]\.args\[0\]"/],
    [[{ name: 'a', command: '/bin/true', env: { 'A-B': 'x' } }], /"agents\[0\]\.env\.A-B"/],
    [[{ name: 'a', command: '/bin/true', env: { FLEETMESH_AGENT_TOKEN: 'x' } }], /set by the supervisor/],
    [[{ name: 'a', command: '/bin/true', cwd: 'relative' }], /"agents\[0\]\.cwd" must be an absolute path/],
    [[{ name: 'a', command: '/bin/true', user: 'Root Admin' }], /"agents\[0\]\.user"/],
    [[{ name: 'a', command: '/bin/true', restart: { maxRestarts: 0 } }], /"agents\[0\]\.restart\.maxRestarts" must be a whole number in 1\.\.1000/],
    [[{ name: 'a', command: '/bin/true', restart: { backoffInitialMs: 500, backoffMaxMs: 100 } }], /"agents\[0\]\.restart\.backoffMaxMs" must be a whole number in 500\.\./],
    [[{ name: 'a', command: '/bin/true', restart: { windowMS: 1000 } }], /"agents\[0\]\.restart\.windowMS" is not a setting \(did you mean "windowMs"\?\)/],
    [[{ name: 'a', command: '/bin/true', memoryMaxBytes: 1000 }], /"agents\[0\]\.memoryMaxBytes"/],
    [[{ name: 'a', command: '/bin/true', liveness: { kind: 'ping' } }], /"agents\[0\]\.liveness\.kind"/],
    [[{ name: 'a', command: '/bin/true', liveness: { kind: 'heartbeat', timeoutMs: 10 } }], /"agents\[0\]\.liveness\.timeoutMs"/],
    [[{ name: 'a', command: '/bin/true', liveness: { kind: 'http', url: 'ftp://x', intervalMs: 100, timeoutMs: 1000 } }], /"agents\[0\]\.liveness\.url"/],
    [[{ name: 'a', command: '/bin/true', liveness: { kind: 'command', argv: [], intervalMs: 100, timeoutMs: 1000 } }], /"agents\[0\]\.liveness\.argv"/],
    [[{ name: 'a', command: '/bin/true', liveness: { kind: 'heartbeat', timeoutMs: 1000, url: 'http://x' } }], /"agents\[0\]\.liveness\.url" is not a setting/],
    [[{ name: 'a', command: '/bin/true', logs: { maxBytes: 10 } }], /"agents\[0\]\.logs\.maxBytes"/],
    [[{ name: 'a', command: '/bin/true', comand: 'x' }], /"agents\[0\]\.comand" is not a setting \(did you mean "command"\?\)/],
    [[{ name: 'a', command: '/bin/true' }, { name: 'a', command: '/bin/false' }], /"agents\[1\]\.name": another agent is named a/],
    [Array.from({ length: 65 }, (_, i) => ({ name: `a${i}`, command: '/bin/true' })), /more than 64 agents/]
  ]
  for (const [agents, message] of cases) {
    assert.throws(() => parse(agents), { code: 'CONFIG_INVALID', message }, JSON.stringify(agents).slice(0, 200))
  }
})
