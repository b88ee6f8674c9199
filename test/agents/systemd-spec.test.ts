// config.json's `backend` of an agent: absent or "process", this daemon runs it; "systemd", its unit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../node/config-file.js'

const parse = (agents: unknown): ReturnType<typeof parseConfig> => parseConfig('config.json', JSON.stringify({ version: 1, agents }))

test('an agent names its backend: systemd is kept, process is the default and reads as absent', () => {
  const [a, b, c] = parse([
    { name: 'llm', backend: 'systemd', command: '/bin/agent' },
    { name: 'local', backend: 'process', command: '/bin/agent' },
    { name: 'plain', command: '/bin/agent' }
  ]).agents
  assert.equal(a!.backend, 'systemd')
  assert.equal(b!.backend, undefined)
  assert.deepEqual(b, { ...c, name: 'local' })
  // what the daemon writes back reads the same again
  assert.equal(parseConfig('config.json', JSON.stringify(parse([{ name: 'llm', backend: 'systemd', command: '/bin/agent' }]))).agents[0]!.backend, 'systemd')
})

test('any other backend is refused, naming the field', () => {
  for (const backend of ['docker', 'Systemd', '', 1, null]) {
    assert.throws(() => parse([{ name: 'a', backend, command: '/bin/true' }]), { code: 'CONFIG_INVALID', message: /"agents\[0\]\.backend" must be "process" or "systemd"/ }, String(backend))
  }
})
