import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_CONFIG, runtimeEnv } from '../../node/config.js'
import { parseConfig, parseHealthFile } from '../../node/config-file.js'
import { NodeError } from '../../node/errors.js'

const invalid = (fn: () => unknown, why: RegExp): void => {
  assert.throws(fn, (err: unknown) => err instanceof NodeError && err.code === 'CONFIG_INVALID' && why.test(err.message))
}

test('a minimal config gets every default; a full one round-trips', () => {
  assert.deepEqual(parseConfig('c', '{"version":1}'), DEFAULT_CONFIG)
  assert.deepEqual(parseConfig('c', JSON.stringify(DEFAULT_CONFIG)), DEFAULT_CONFIG)
})

test('a remote control API is a separate, explicit yes in the config', () => {
  assert.equal(parseConfig('c', '{"version":1,"api":{"host":"0.0.0.0","port":0}}').api.allowRemote, undefined)
  assert.equal(parseConfig('c', '{"version":1,"api":{"host":"0.0.0.0","port":0,"allowRemote":true}}').api.allowRemote, true)
})

test('malformed configs are refused with the field at fault', () => {
  invalid(() => parseConfig('c', '{"version":1'), /not valid JSON/)
  invalid(() => parseConfig('c', '[]'), /a JSON object/)
  invalid(() => parseConfig('c', '{"version":2}'), /unsupported version/)
  invalid(() => parseConfig('c', '{"version":1,"listen":["not a multiaddr"]}'), /"listen" has an invalid multiaddr/)
  invalid(() => parseConfig('c', '{"version":1,"api":{"host":"127.0.0.1","port":70000}}'), /"api"/)
  invalid(() => parseConfig('c', '{"version":1,"api":{"host":"0.0.0.0","port":0,"allowRemote":"yes"}}'), /api.allowRemote/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"profile":"relative"}}'), /deploy.profile/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"activation":[]}}'), /deploy.activation/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"soakMs":-1}}'), /deploy.soakMs/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"healthChecks":[{"kind":"http"}]}}'), /healthChecks\[0\]/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"healthChecks":[{"kind":"http","url":"ftp://x"}]}}'), /url must be http/)
})

test('a health file replaces the checks and soak, validated like the config', () => {
  const d = parseHealthFile('h', '{"soakMs":5000,"checks":[{"kind":"command","command":"true"}]}', DEFAULT_CONFIG.deploy)
  assert.equal(d.soakMs, 5000)
  assert.deepEqual(d.healthChecks, [{ kind: 'command', command: 'true' }])
  assert.equal(d.profile, DEFAULT_CONFIG.deploy.profile)
  invalid(() => parseHealthFile('h', '{"checks":[{"kind":"systemd","units":[]}]}', DEFAULT_CONFIG.deploy), /units/)
  invalid(() => parseHealthFile('h', 'nope', DEFAULT_CONFIG.deploy), /not valid JSON/)
})

test('the environment gives the log level and the token-free metrics listener, validated', () => {
  assert.deepEqual(runtimeEnv({}), { logLevel: 'info' })
  assert.deepEqual(runtimeEnv({ FLEETMESH_LOG_LEVEL: 'debug', FLEETMESH_METRICS_LISTEN: '' }), { logLevel: 'debug' })
  assert.deepEqual(runtimeEnv({ FLEETMESH_METRICS_LISTEN: '0.0.0.0:9100' }).metricsListen, { host: '0.0.0.0', port: 9100 })
  assert.deepEqual(runtimeEnv({ FLEETMESH_METRICS_LISTEN: '[::1]:9100' }).metricsListen, { host: '::1', port: 9100 })
  invalid(() => runtimeEnv({ FLEETMESH_LOG_LEVEL: 'loud' }), /FLEETMESH_LOG_LEVEL/)
  invalid(() => runtimeEnv({ FLEETMESH_METRICS_LISTEN: '9100' }), /FLEETMESH_METRICS_LISTEN: must be HOST:PORT/)
  invalid(() => runtimeEnv({ FLEETMESH_METRICS_LISTEN: 'localhost:99999' }), /HOST:PORT/)
})
