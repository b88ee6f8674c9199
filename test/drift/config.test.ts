// The drift settings in config.json: defaults, and typed refusals of bad values.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../node/config-file.js'
import type { NodeError } from '../../node/errors.js'

const parse = (extra: object): ReturnType<typeof parseConfig> => parseConfig('config.json', JSON.stringify({ version: 1, ...extra }))

test('drift settings: defaults, accepted values, refused ones', () => {
  const d = parse({})
  assert.deepEqual({ interval: d.drift.intervalMs, repair: d.deploy.repairDrift, link: d.deploy.currentSystem }, { interval: 300_000, repair: false, link: '/run/current-system' })
  const set = parse({ drift: { intervalMs: 0 }, deploy: { repairDrift: true, currentSystem: '/var/lib/x/current' } })
  assert.deepEqual({ interval: set.drift.intervalMs, repair: set.deploy.repairDrift, link: set.deploy.currentSystem }, { interval: 0, repair: true, link: '/var/lib/x/current' })
  const refused = (extra: object, field: string): void => {
    assert.throws(() => parse(extra), (err: NodeError) => err.code === 'CONFIG_INVALID' && err.message.includes(field), JSON.stringify(extra))
  }
  refused({ drift: { intervalMs: -1 } }, 'drift.intervalMs')
  refused({ drift: { intervalMs: 1.5 } }, 'drift.intervalMs')
  refused({ drift: [] }, '"drift"')
  refused({ drift: { interval: 5 } }, 'drift.interval')
  refused({ deploy: { repairDrift: 'yes' } }, 'deploy.repairDrift')
  refused({ deploy: { currentSystem: 'run/current-system' } }, 'deploy.currentSystem')
})
