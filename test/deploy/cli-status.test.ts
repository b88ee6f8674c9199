// `release status` rendering, pure: a status in, lines out; two statuses in, the lines of what
// changed; and which terminal gets what. The real CLI against real daemons is checked in
// test/node/fleet-view.test.ts (piped and under a pseudo-terminal).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { labelsOf, redraw, releaseChanges, renderRelease, terminalOf } from '../../node/deploy/cli-status.js'
import type { HostStatus, ReleaseStatus, WaveStatus } from '../../protocols/rollout/index.js'

const A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAaaaa1111'
const B = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBbbbb2222'
const C = '12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCcccc3333'

function wave (index: number, hostStates: HostStatus[], over: Partial<WaveStatus> = {}): WaveStatus {
  const n = (s: string): number => hostStates.filter((h) => h.state === s).length
  return {
    index, hosts: hostStates.length, pending: n('pending'), offline: n('offline'), applying: n('applying'), soaking: n('soaking'), healthy: n('healthy'),
    failed: n('failed'), unhealthy: 0, silent: 0, movedOn: 0, accepted: 0, superseded: 0, pinned: n('pinned'), quarantined: 0, stale: 0,
    need: hostStates.length, gateMet: n('healthy') === hostStates.length, hostStates, ...over
  }
}

function status (waves: WaveStatus[], over: Partial<ReleaseStatus> = {}): ReleaseStatus {
  return { id: 'r1-abc', number: 1, signer: A, state: 'rolling', waves, failed: 0, failedHosts: [], maxFailures: 0, unassigned: [], pinnedHosts: [], quarantinedPaths: [], staleHosts: [], ...over }
}

const label = labelsOf([{ peerId: A, name: 'web-1' }, { peerId: B, name: 'web-2' }, { peerId: C, name: null }])

describe('release status rendering (node/deploy/cli-status.ts)', () => {
  it('lists every host under its wave, waves numbered from 1, hosts by name or short id', () => {
    const s = status([wave(0, [{ host: A, state: 'healthy' }]), wave(1, [{ host: B, state: 'applying' }, { host: C, state: 'pinned' }])], { pinnedHosts: [C] })
    assert.deepEqual(renderRelease(s, { label }), [
      'release r1-abc #1  ROLLING',
      '  signed by web-1; failures 0/0 allowed',
      '  wave 1 [########################] 1/1 healthy  0 applying  0 pending  0 failed  0 offline  gate met',
      '    web-1            healthy',
      '  wave 2 [........................] 0/2 healthy  1 applying  0 pending  0 failed  0 offline  gate needs 2',
      '    web-2            applying',
      '    12D3KooW…cc3333  pinned',
      '  pinned (skipped, neither pending nor failed): 12D3KooW…cc3333'
    ])
  })

  it('tells apart hosts that claim one name, as every view does', () => {
    const same = labelsOf([{ peerId: A, name: 'web' }, { peerId: B, name: 'web' }])
    assert.deepEqual([same(A), same(B), same(C)], ['web#aa1111', 'web#bb2222', '12D3KooW…cc3333'])
  })

  it('colours states only when asked, and shows states it does not know (pending-reboot) as they are', () => {
    const s = status([wave(0, [{ host: A, state: 'failed' }, { host: B, state: 'pending-reboot' as HostStatus['state'] }, { host: C, state: 'pending' }])], { state: 'halted', reason: 'too many failures' })
    const plain = renderRelease(s, { label })
    assert.ok(plain.every((l) => !l.includes('\x1b')), 'no escape without colour')
    const coloured = renderRelease(s, { label, colour: true })
    assert.equal(coloured[0], 'release r1-abc #1  \x1b[31mHALTED\x1b[0m: too many failures')
    assert.ok(coloured.includes('    web-1            \x1b[31mfailed\x1b[0m'))
    assert.ok(coloured.includes('    web-2            \x1b[34mpending-reboot\x1b[0m'))
    assert.ok(coloured.includes('    12D3KooW…cc3333  pending'), 'pending has no colour')
  })

  it('shows per-tag budgets when the status carries them', () => {
    const s = { ...status([wave(0, [{ host: A, state: 'applying' }])]), budgets: [{ selector: 'tag:db', max: 1, inFlight: [A], refs: [`${A}:7`] }] }
    assert.ok(renderRelease(s, { label }).includes('  budget tag:db: 1 of at most 1 in flight (web-1)'))
  })

  it('gives one line per change: per wave its hosts then its gate, then the release; none when nothing changed', () => {
    const before = status([wave(0, [{ host: A, state: 'soaking' }]), wave(1, [{ host: B, state: 'pending' }, { host: C, state: 'pending' }])])
    assert.deepEqual(releaseChanges(before, before, label), [])
    const after = status([wave(0, [{ host: A, state: 'healthy' }]), wave(1, [{ host: B, state: 'applying' }, { host: C, state: 'pending', superseded: true }])])
    assert.deepEqual(releaseChanges(before, after, label), [
      'web-1 wave 1 soaking → healthy',
      'wave 1 gate met',
      'web-2 wave 2 pending → applying',
      '12D3KooW…cc3333 wave 2 pending → pending (superseded)'
    ])
    const done = status([wave(0, [{ host: A, state: 'healthy' }]), wave(1, [{ host: B, state: 'healthy' }, { host: C, state: 'healthy' }])], { state: 'done' })
    assert.deepEqual(releaseChanges(after, done, label).slice(-2), ['wave 2 gate met', 'release r1-abc rolling → done'])
  })

  it('a host seen for the first time (a plan that filled in) is a line of its own', () => {
    const before = status([], { reason: 'catching up to the release\'s basis' })
    assert.deepEqual(releaseChanges(before, status([wave(0, [{ host: A, state: 'pending' }])]), label), ['web-1 wave 1 pending'])
  })

  it('redraws in place: up over what it drew, clear to the end, the new lines', () => {
    assert.equal(redraw(0, ['a', 'b']), 'a\nb\n')
    assert.equal(redraw(2, ['c']), '\x1b[2F\x1b[Jc\n')
  })

  it('redraws only on a terminal that can, in colour unless NO_COLOR', () => {
    assert.deepEqual(terminalOf({ isTTY: true }, { TERM: 'xterm' }), { tty: true, colour: true })
    assert.deepEqual(terminalOf({ isTTY: true }, { TERM: 'xterm', NO_COLOR: '1' }), { tty: true, colour: false })
    assert.deepEqual(terminalOf({ isTTY: true }, { TERM: 'dumb' }), { tty: false, colour: false })
    assert.deepEqual(terminalOf({ isTTY: false }, { TERM: 'xterm' }), { tty: false, colour: false })
    assert.deepEqual(terminalOf({}, {}), { tty: false, colour: false })
  })
})
