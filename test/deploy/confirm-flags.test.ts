// `release publish --reboot / --confirm-window` (issue 14, 5 and 6): the flags as the CLI reads
// them, a usage error (exit 2) for what it cannot, and bodies the log's schema accepts.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CommanderError } from 'commander'
import { parseConfirmWindow, publishParams } from '../../node/deploy/cli-publish.js'
import { optionalFields } from '../../node/deploy/releases.js'
import { parseRelease } from '../../protocols/rollout/index.js'
import { PATH_A } from '../rollout/helpers.js'

const usageError = (re: RegExp) => (err: unknown): boolean => err instanceof CommanderError && err.exitCode === 2 && re.test(err.message)

describe('release publish --reboot and --confirm-window', () => {
  it('--confirm-window reads a duration up to an hour; 0s turns confirming off', () => {
    assert.equal(parseConfirmWindow('2m'), 120_000)
    assert.equal(parseConfirmWindow('0s'), 0)
    assert.equal(parseConfirmWindow('60m'), 3_600_000)
    assert.throws(() => parseConfirmWindow('2h'), usageError(/--confirm-window: 2h is longer than 60m/))
    assert.throws(() => parseConfirmWindow('soon'), usageError(/--confirm-window: "soon" is not a duration/))
  })

  it('the flags become the release fields every host reads; no flag, no field', () => {
    const base = { path: PATH_A, tag: 'web', waves: '1,100%', maxFailures: '0' }
    const p = publishParams({ ...base, reboot: true, confirmWindow: '30s' })
    assert.deepEqual([p.reboot, p.confirmWindowMs], [true, 30_000])
    const body = parseRelease({ id: 'r1-x', number: 1, targets: p.targets, waves: p.waves, maxFailures: p.maxFailures, ...optionalFields(p) })
    assert.deepEqual([body.reboot, body.confirmWindowMs], [true, 30_000])
    const plain = publishParams(base)
    assert.ok(!('reboot' in plain) && !('confirmWindowMs' in plain))
    assert.deepEqual(optionalFields(publishParams({ ...base, confirmWindow: '0s' })), { confirmWindowMs: 0 }, 'off is carried, not dropped')
  })
})
