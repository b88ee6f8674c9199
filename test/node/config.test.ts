import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_CONFIG, parseConfig, parseHealthFile } from '../../node/config.js'
import { NodeError } from '../../node/errors.js'

const invalid = (fn: () => unknown, why: RegExp): void => {
  assert.throws(fn, (err: unknown) => err instanceof NodeError && err.code === 'CONFIG_INVALID' && why.test(err.message))
}

test('a minimal config gets every default; a full one round-trips', () => {
  assert.deepEqual(parseConfig('c', '{"version":1}'), DEFAULT_CONFIG)
  assert.deepEqual(parseConfig('c', JSON.stringify(DEFAULT_CONFIG)), DEFAULT_CONFIG)
})

test('malformed configs are refused with the field at fault', () => {
  invalid(() => parseConfig('c', '{"version":1'), /not valid JSON/)
  invalid(() => parseConfig('c', '[]'), /a JSON object/)
  invalid(() => parseConfig('c', '{"version":2}'), /unsupported version/)
  invalid(() => parseConfig('c', '{"version":1,"listen":["not a multiaddr"]}'), /"listen" has an invalid multiaddr/)
  invalid(() => parseConfig('c', '{"version":1,"api":{"host":"127.0.0.1","port":70000}}'), /"api"/)
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
