// How fast a host is healthy again after a bad generation: from the health check that
// declares failure to the previous generation switched back, re-activated and passing its
// check (measured on real Nix with the fixture generations), plus the median switch time.
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Level } from 'level'
import { DeployEngine, Journal, NixProfileBackend, type Backend, type HealthPolicy } from '../../nixos/index.js'
import { buildGeneration, ensureNix, fixtureHost } from '../../test/fixtures/nix/fixtures.js'

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const round = (x: number): number => Math.round(x * 10) / 10

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const runs = Number(args[0] ?? 10)
  await ensureNix()
  const good = await buildGeneration('bench-good', 'good')
  const bad = await buildGeneration('bench-500', 'status500')
  const host = await fixtureHost()
  const db = new Level<string, string>(join(host.dir, 'db'))
  const profile = new NixProfileBackend({ profile: host.profile, activation: { env: host.env } })
  const switchMs: number[] = []
  // Times every switch, the apply's and the rollback's: both are what a host waits on.
  const backend: Backend = {
    fetch: async (p, s) => { await profile.fetch(p, s) },
    switch: async (p) => { const t = performance.now(); const g = await profile.switch(p); switchMs.push(performance.now() - t); return g },
    activate: async () => { await profile.activate() },
    current: async () => await profile.current(),
    list: async () => await profile.list(),
    rollback: async (to) => { const t = performance.now(); const g = await profile.rollback(to); switchMs.push(performance.now() - t); return g },
    gc: async (k) => await profile.gc(k),
    preview: async (p) => await profile.preview(p)
  }
  const health: HealthPolicy = { soakMs: 200, checks: [{ kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 3, timeoutMs: 500 }] }
  let detectedAt = 0
  const detectToHealthy: number[] = []
  const engine = new DeployEngine({
    backend,
    journal: new Journal(db.sublevel('deploy')),
    health,
    onEvent: (ev) => {
      if (ev.kind === 'health-failed') detectedAt = performance.now()
      if (ev.kind === 'rollback') detectToHealthy.push(performance.now() - detectedAt)
    }
  })
  try {
    const first = await engine.apply({ path: good })
    if (first.status !== 'ok') throw new Error(`baseline generation did not apply: ${JSON.stringify(first)}`)
    for (let i = 0; i < runs; i++) {
      const out = await engine.apply({ path: bad })
      if (out.status !== 'rolled-back') throw new Error(`run ${i}: expected a rollback, got ${JSON.stringify(out)}`)
      process.stderr.write(`rollback ${i + 1}/${runs}: ${round(detectToHealthy.at(-1) ?? 0)} ms\n`)
    }
  } finally {
    await db.close()
    await host.cleanup()
  }
  return {
    bench: 'rollback',
    runs,
    detect_to_healthy_ms_p50: round(median(detectToHealthy)),
    detect_to_healthy_ms_max: round(Math.max(...detectToHealthy)),
    switch_ms_p50: round(median(switchMs))
  }
}
