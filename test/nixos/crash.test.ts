// kill -9 of a deploy daemon's executor at a phase of an apply, then a fresh process: the host
// recovers, unreported() yields exactly one outcome per attempt until reported(), and nothing
// unverified is reported ok. Real processes, real Nix, real activations and services
// (simulations/executor-kill/cases.ts). CI runs three phases drawn by the seed; `npm run sim --
// executor-kill` runs every phase, and FLEETMESH_TEST_SEED=N replays the pick in the titles.
import { after, before, describe, it } from 'node:test'
import { CASES, openKit, type Kit } from '../../simulations/executor-kill/cases.js'
import { seededPick, testSeed } from '../../simulations/harness/seeded.js'

const seed = testSeed(1)

describe(`NixExecutor after kill -9 at a phase of an apply (FLEETMESH_TEST_SEED=${seed})`, () => {
  let kit: Kit
  before(async () => { kit = await openKit() })
  after(async () => { await kit?.cleanup() })
  for (const c of seededPick(CASES, 3, seed)) it(`${c.name} (FLEETMESH_TEST_SEED=${seed})`, async () => { await c.run(kit) })
})
