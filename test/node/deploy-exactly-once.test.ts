// Exactly one outcome per attempt, across kill -9 of a real daemon in one of the agent's crash
// windows (simulations/crash-windows/run.ts: after its apply-start is in the log but before the
// engine journalled anything; after the engine's terminal journal write but before the outcome
// entry; after the outcome entry but before the journal heard it was reported). CI kills one
// victim in a window drawn by the seed; `npm run sim -- crash-windows` runs every window at once,
// and FLEETMESH_TEST_SEED=N replays the pick named in the test's title.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { crashWindows, WINDOWS } from '../../simulations/crash-windows/run.js'
import { seededPick, testSeed } from '../../simulations/harness/seeded.js'

const seed = testSeed(1)
const windows = seededPick(WINDOWS, 1, seed)

test(`a host killed in one of the agent's crash windows reports its attempt exactly once (${windows.join(', ')}; FLEETMESH_TEST_SEED=${seed})`, { timeout: 15 * 60_000 }, async () => {
  const r = await crashWindows(windows)
  assert.equal(r.checked, r.hosts * windows.length, 'every host was checked for every victim')
  assert.deepEqual(r.problems, [], `FLEETMESH_TEST_SEED=${seed} replays this pick`)
})
