// A host finds its mesh again after a restart, says when it cannot, and is told when it was
// revoked: real daemons over loopback TCP, restarted with no bootstrap flags.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { HostProcess, runCli, tempDir, waitFor } from '../../simulations/harness/processes.js'
import type { NodeStatus } from '../../node/routes.js'
import { withOfflineStore } from '../../node/offline.js'

async function status (h: HostProcess): Promise<NodeStatus> {
  const r = await h.cli(['status', '--json'])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as NodeStatus
}

async function connected (h: HostProcess, other: string): Promise<boolean> {
  const r = await h.cli(['peers', '--json'])
  return r.code === 0 && (JSON.parse(r.stdout) as Array<{ peerId: string, member: boolean }>).some((p) => p.peerId === other && p.member)
}

/** b founds a mesh, a joins it by invite; both are running and connected. */
async function pair (env: NodeJS.ProcessEnv = {}): Promise<{ dirA: string, dirB: string, a: HostProcess, b: HostProcess }> {
  const dirA = join(await tempDir(), 'a')
  const dirB = join(await tempDir(), 'b')
  assert.equal((await runCli(['--data-dir', dirB, 'init', '--mesh', 'restart'])).code, 0)
  assert.equal((await runCli(['--data-dir', dirA, 'init'])).code, 0)
  const b = await HostProcess.start(dirB, [], env)
  const a = await HostProcess.start(dirA, [], env)
  const code = (await b.cli(['invite'])).stdout.trim()
  const joined = await a.cli(['join', code])
  assert.equal(joined.code, 0, joined.stderr)
  await waitFor(async () => (await connected(a, b.peerId)) && (await connected(b, a.peerId)) ? true : undefined, 'a and b to connect')
  return { dirA, dirB, a, b }
}

test('a joined host and its inviter find each other again after both restart, with no bootstrap flag', { timeout: 240_000 }, async () => {
  const { dirA, dirB, a, b } = await pair()
  assert.equal(await a.stop(), 0)
  assert.equal(await b.stop(), 0)
  // The joiner first: it must find the mesh from what it kept, not wait to be dialled.
  const a2 = await HostProcess.start(dirA)
  const b2 = await HostProcess.start(dirB)
  try {
    await waitFor(async () => (await connected(a2, b2.peerId)) && (await connected(b2, a2.peerId)) ? true : undefined, 'a and b to reconnect')
    assert.equal((await status(a2)).meshUnreachable, null)
    assert.equal((await status(b2)).meshUnreachable, null)
  } finally {
    await a2.stop()
    await b2.stop()
  }
})

/** The member addresses a stopped host kept in its data dir. */
async function kept (dataDir: string): Promise<Map<string, string[]>> {
  return withOfflineStore(dataDir, async ({ meta }) => meta.addresses())
}

test('the inviter keeps the address the joiner listens on', { timeout: 240_000 }, async () => {
  const { a, b } = await pair({ FLEETMESH_LOG_LEVEL: 'debug' })
  // Learnt when the log admits it, from its identify (retried while it fails): the log says when.
  const keptA = (line: string): boolean => line.includes('member addresses kept') && line.includes(a.peerId)
  await waitFor(async () => b.stderr.split('\n').some(keptA) ? true : undefined, 'b to keep a\'s addresses')
  await a.stop()
  assert.equal(await b.stop(), 0)
  assert.deepEqual((await kept(b.dataDir)).get(a.peerId), a.addresses)
})

test('a host that joins with no daemon running keeps its inviter\'s addresses from the code', { timeout: 240_000 }, async () => {
  const dirB = join(await tempDir(), 'b')
  const dirC = join(await tempDir(), 'c')
  assert.equal((await runCli(['--data-dir', dirB, 'init', '--mesh', 'offline-join'])).code, 0)
  assert.equal((await runCli(['--data-dir', dirC, 'init'])).code, 0)
  const b = await HostProcess.start(dirB)
  try {
    const code = (await b.cli(['invite'])).stdout.trim()
    const joined = await runCli(['--data-dir', dirC, 'join', code])
    assert.equal(joined.code, 0, joined.stderr)
    assert.deepEqual((await kept(dirC)).get(b.peerId), b.addresses)
  } finally {
    await b.stop()
  }
})

test('a host that reaches no member says so in status and in its log', { timeout: 240_000 }, async () => {
  const { dirA, a, b } = await pair()
  assert.equal(await a.stop(), 0)
  assert.equal(await b.stop(), 0)
  const a2 = await HostProcess.start(dirA)
  try {
    const s = await waitFor(async () => { const s = await status(a2); return s.meshUnreachable !== null ? s : undefined }, 'status to report no reachable member')
    assert.ok(s.meshUnreachable!.addressesTried > 0, 'the inviter\'s kept addresses were dialled')
    assert.match(s.meshUnreachable!.hint, /fleetmesh start --bootstrap ADDR/)
    const human = await a2.cli(['status'])
    assert.match(human.stdout, /^WARNING: +no member reachable since .*check the network.*--bootstrap ADDR/m)
    const warn = a2.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number, msg: string }).find((l) => /no member of the mesh is reachable/.test(l.msg))
    assert.equal(warn?.level, 40, a2.stderr)
    assert.match(warn.msg, /check the network.*fleetmesh start --bootstrap ADDR/)
  } finally {
    await a2.stop()
  }
})

test('a revoked host is told who revoked it and when, and still knows after a restart', { timeout: 240_000 }, async () => {
  const { dirA, a, b } = await pair()
  try {
    const revoke = await b.cli(['revoke', a.peerId, '--reason', 'decommissioned'])
    assert.equal(revoke.code, 0, revoke.stderr)
    const live = await waitFor(async () => { const s = await status(a); return s.revoked !== null ? s : undefined }, 'a to learn it was revoked')
    assert.equal(live.revoked!.by, b.peerId)
    assert.equal(live.revoked!.reason, 'decommissioned')
    assert.equal(await a.stop(), 0)
    const a2 = await HostProcess.start(dirA)
    try {
      const s = await status(a2)
      assert.deepEqual(s.revoked, live.revoked)
      assert.equal(s.connectedPeers, 0)
      assert.equal(s.meshUnreachable, null, 'revoked, it does not also claim the network is down')
      const human = await a2.cli(['status'])
      assert.match(human.stdout, new RegExp(`^REVOKED: +this host was revoked by ${b.peerId} at ${new Date(live.revoked!.at).toISOString()} \\(decommissioned\\)`, 'm'))
      assert.match(a2.stderr, /this host was revoked from the mesh/)
    } finally {
      await a2.stop()
    }
  } finally {
    await a.stop()
    await b.stop()
  }
  assert.equal((await kept(b.dataDir)).has(a.peerId), false, 'the revoked member\'s addresses are dropped')
})
