// A seeded pick of the cases a test runs out of a matrix whose full run is a scenario
// (`npm run sim -- crash-windows`, `executor-kill`): CI runs a few of them, the seed in the
// test's name replays the same few (`FLEETMESH_TEST_SEED=N`).
import { mulberry32 } from '../scale/network.js'

/** The seed of this run: FLEETMESH_TEST_SEED, or `fallback` so that CI runs the same pick each time. */
export function testSeed (fallback: number): number {
  const raw = process.env.FLEETMESH_TEST_SEED
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`FLEETMESH_TEST_SEED must be a non-negative integer, not ${raw}`)
  return n
}

/** `k` distinct items of `items`, drawn by `seed`, in their original order. */
export function seededPick<T> (items: readonly T[], k: number, seed: number): T[] {
  const next = mulberry32(seed)
  const idx = items.map((_, i) => i)
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[idx[i], idx[j]] = [idx[j], idx[i]]
  }
  return idx.slice(0, Math.min(k, idx.length)).sort((x, y) => x - y).map((i) => items[i])
}
