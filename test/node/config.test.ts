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
  // a section may name only what it changes
  assert.deepEqual(parseConfig('c', '{"version":1,"api":{"port":8300}}').api, { host: '127.0.0.1', port: 8300 })
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
  assert.deepEqual(runtimeEnv({}, false), { logLevel: 'info', logFormat: 'json' })
  assert.deepEqual(runtimeEnv({ FLEETMESH_LOG_LEVEL: 'debug', FLEETMESH_METRICS_LISTEN: '' }, false), { logLevel: 'debug', logFormat: 'json' })
  assert.deepEqual(runtimeEnv({ FLEETMESH_METRICS_LISTEN: '0.0.0.0:9100' }).metricsListen, { host: '0.0.0.0', port: 9100 })
  assert.deepEqual(runtimeEnv({ FLEETMESH_METRICS_LISTEN: '[::1]:9100' }).metricsListen, { host: '::1', port: 9100 })
  invalid(() => runtimeEnv({ FLEETMESH_LOG_LEVEL: 'loud' }), /FLEETMESH_LOG_LEVEL/)
  invalid(() => runtimeEnv({ FLEETMESH_METRICS_LISTEN: '9100' }), /FLEETMESH_METRICS_LISTEN: must be HOST:PORT/)
  invalid(() => runtimeEnv({ FLEETMESH_METRICS_LISTEN: 'localhost:99999' }), /HOST:PORT/)
})

test('unknown keys are refused at every level, with the nearest setting', () => {
  invalid(() => parseConfig('c', '{"version":1,"bootstrapp":[]}'), /"bootstrapp" is not a setting \(did you mean "bootstrap"\?\)/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"profil":"/nix/var/nix/profiles/test"}}'), /"deploy\.profil" is not a setting \(did you mean "profile"\?\); the settings of "deploy" are profile, /)
  invalid(() => parseConfig('c', '{"version":1,"audit":{"archiv":true}}'), /"audit\.archiv" is not a setting \(did you mean "archive"\?\)/)
  invalid(() => parseConfig('c', '{"version":1,"api":{"host":"127.0.0.1","port":0,"allowremote":true}}'), /"api\.allowremote" is not a setting \(did you mean "allowRemote"\?\)/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"healthChecks":[{"kind":"http","url":"http://x/","expect":200}]}}'), /"deploy\.healthChecks\[0\]\.expect" is not a setting/)
  invalid(() => parseConfig('c', '{"version":1,"deploy":{"healthChecks":[{"kind":"systemd","units":["a"],"url":"http://x/"}]}}'), /"deploy\.healthChecks\[0\]\.url" is not a setting/)
  invalid(() => parseConfig('c', '{"version":1,"colour":"blue"}'), /"colour" is not a setting; the settings are version, listen/)
  invalid(() => parseConfig('c', '{"version":1,"bootstrap":["/ip4/10.0.0.1/tcp/4001"]}'), /"bootstrap" has an address that names no peer: .*\/p2p\/PEER_ID/)
  invalid(() => parseHealthFile('h', '{"soak":5000,"checks":[]}', DEFAULT_CONFIG.deploy), /"soak" is not a setting \(did you mean "soakMs"\?\)/)
  // Every key of every default section is a setting: one another module adds to a default is accepted with it.
  const every = JSON.parse(JSON.stringify(DEFAULT_CONFIG)) as Record<string, unknown>
  assert.deepEqual(parseConfig('c', JSON.stringify(every)), DEFAULT_CONFIG)
  assert.equal(parseConfig('c', '{"version":1,"deploy":{"healthChecks":[{"kind":"http","url":"http://x/","expectStatus":204,"name":"web","retries":2,"intervalMs":10,"timeoutMs":10,"startPeriodMs":0}]}}').deploy.healthChecks.length, 1)
})
