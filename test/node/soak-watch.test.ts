// The gate soak watch across real processes: a canary whose service dies after its apply-ok, in
// the middle of its wave's gate soak, reports the failure to the log, and that report alone keeps
// the next wave from ever starting on every host. Nothing here races a clock: the service is
// broken only once the canary's apply-ok is in the log, and the gate soak is far longer than the
// test may run, so the soak cannot end (and open wave 1) by itself while the test looks.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { buildGeneration } from '../fixtures/nix/fixtures.js'
import type { EntryRow, NodeStatus } from '../../node/routes.js'
import type { Decision, ReleaseBody, ReleaseStatus } from '../../protocols/rollout/index.js'

const TEST_MS = 10 * 60_000
const GATE_SOAK_MS = 3 * TEST_MS
const WAIT_MS = 120_000

/**
 * The host's entries of one kind for one release. Filtered by kind so the output stays a few
 * lines: the CLI ends with process.exit(), which drops whatever stdout a pipe has not taken yet,
 * the newest lines of a long log (about 40 KB in, on this machine).
 */
async function entries (host: FleetHost, kind: string, release: string): Promise<EntryRow[]> {
  const r = await host.cli(['audit', 'log', '--kind', kind, '--json'])
  assert.equal(r.code, 0, `${host.name}: audit log --kind ${kind}: ${r.stderr}`)
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EntryRow)
    .filter((e) => (e.body as { release?: string }).release === release)
}

test('a canary whose service fails during its gate soak reports it, and the next wave never starts', { timeout: TEST_MS }, async () => {
  const fleet = await Fleet.create({
    hosts: [
      { name: 'a', role: 'admin', tags: ['web'] },
      { name: 'b', tags: ['web'] },
      { name: 'c', tags: ['web'] }
    ],
    soakMs: 300
  })
  const version = `soak-watch-${Date.now()}`
  const status = async (h: FleetHost, id: string): Promise<ReleaseStatus> => h.json<ReleaseStatus>(['release', 'status', id])
  const decision = async (h: FleetHost): Promise<Decision | null> => (await h.json<NodeStatus>(['status'])).deploy?.decision ?? null
  try {
    const [path] = await Promise.all([buildGeneration(version, 'good'), fleet.pairAll()])
    const r = await fleet.founder.json<ReleaseBody>(['release', 'publish', '--tag', 'web', '--path', path, '--waves', '1,100%', '--gate', `healthy=100%,soak=${GATE_SOAK_MS}ms`])

    await fleet.waitFor(`the canary's apply-ok for ${r.id} in ${fleet.founder.name}'s log`, async () => (await entries(fleet.founder, 'apply-ok', r.id)).length > 0, WAIT_MS)
    const [ok] = await entries(fleet.founder, 'apply-ok', r.id)
    const canary = fleet.hosts.find((h) => h.peerId === ok.feed)!
    const rest = fleet.hosts.filter((h) => h !== canary)

    // Before the break, the gate counts the canary and only its soak holds wave 1: without the
    // failure report, wave 1 would start when that clock runs out.
    for (const h of rest) {
      await fleet.waitFor(`${h.name} to wait for wave 0's soak with the canary ${canary.name} healthy`, async () => {
        const d = await decision(h)
        return d?.release === r.id && d.action === 'wait' && /wave 0 has 1\/1 healthy.*soak/.test(d.reason) && d.until !== undefined
      }, WAIT_MS)
    }

    // The canary's apply-ok is in the log, so the engine's own verification is over: only the
    // soak watch can notice this.
    const pid = Number((await readFile(join(canary.serviceDir, 'service.pid'), 'utf8')).trim())
    process.kill(pid, 'SIGKILL')

    for (const h of fleet.hosts) {
      await fleet.waitFor(`the canary ${canary.name}'s failing health entry for ${r.id} in ${h.name}'s log`,
        async () => (await entries(h, 'health', r.id)).some((e) => e.feed === canary.peerId && (e.body as { ok: boolean }).ok === false), WAIT_MS)
    }
    const [failure] = (await entries(canary, 'health', r.id)).filter((e) => e.feed === canary.peerId)
    assert.ok(failure.seq > ok.seq, 'the failure was reported after apply-ok, by the soak watch')

    // The gate lost its healthy host: wave 1 now waits on no clock at all, so it never starts.
    for (const h of rest) {
      await fleet.waitFor(`${h.name} to wait for wave 0 with no healthy host and no soak clock`, async () => {
        const d = await decision(h)
        return d?.release === r.id && d.action === 'wait' && /wave 0 has 0\/1 healthy/.test(d.reason) && d.until === undefined
      }, WAIT_MS)
    }
    for (const h of fleet.hosts) {
      const starts = await entries(h, 'apply-start', r.id)
      assert.deepEqual(starts.map((e) => [e.feed, (e.body as { wave: number }).wave]), [[canary.peerId, 0]], `${h.name}: only the canary started ${r.id}`)
      const s = await status(h, r.id)
      assert.equal(s.state, 'rolling', `${h.name} sees ${r.id} ${s.state}`)
      assert.match(s.reason ?? '', /^wave 0: 0\/1 healthy, needs 100 % \(1\)$/, `${h.name}: no soak left to wait out`)
      assert.deepEqual(s.waves.map((w) => [w.healthy, w.applying, w.pending]), [[0, 0, 0], [0, 0, rest.length]], `${h.name}: wave 0 unhealthy, wave 1 untouched`)
    }
    for (const h of rest) assert.notEqual(await h.activeVersion(), version, `${h.name} never activated ${version}`)
  } finally {
    await fleet.close()
  }
})
