// How long a host serves a bad generation before it is healthy again, on real Nix with the
// fixture generations: a good generation is applied, then a generation whose service answers
// HTTP 500 is applied `runs` times (10; `--quick` 2; or the first positional argument).
//
// detect_to_healthy_ms_* runs from the result of the bad generation's FIRST FAILING probe to
// the result of the previous generation's FIRST PASSING probe after the switch back (both
// monotonic, from the engine's onProbe). It therefore includes detection (the bad generation
// must fail `retries` consecutive probes `intervalMs` apart: 3 × 50 ms here), the
// switch back, re-activation, the old service's start-up and the probe that finds it healthy.
// Each run is printed on stderr. A run whose previous generation never passes (the apply
// ends `failed`) has no end point: it is counted in failed_runs, never dropped silently, and
// p50/max are over the runs that recovered ('none' when none did: no duration is invented).
// switch_ms_p50 is the median of every profile switch, the apply's and the rollback's.
//
// The bad generation is checked with 3 retries 50 ms apart and no start period, so it is found
// out quickly. The old generation is re-verified by the engine with at least the default start
// period (DEFAULT_START_PERIOD_MS, 10 s): its service may take ~300 ms to listen on an idle
// 2-core machine and seconds on a loaded one, and a slow restart of a generation that proved
// itself is not a failed rollback. Failures of the old generation before its first passing probe
// fall inside the measured time, so a slower machine shows up as a longer duration, not as a
// failed run. load_avg_1m_start/_end: the 1-minute load average when the bench started and ended.
import { loadavg } from 'node:os'
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
  const loadAtStart = loadavg()[0] as number
  const quick = args.includes('--quick')
  const runs = Number(args.find(a => !a.startsWith('--')) ?? (quick ? 2 : 10))
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`)
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
    activate: async (id) => { await profile.activate(id) },
    current: async () => await profile.current(),
    list: async () => await profile.list(),
    rollback: async (to) => { const t = performance.now(); const g = await profile.rollback(to); switchMs.push(performance.now() - t); return g },
    gc: async (k) => await profile.gc(k),
    preview: async (p) => await profile.preview(p)
  }
  const web = { kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 3, timeoutMs: 500, startPeriodMs: 0 } as const
  const health: HealthPolicy = { soakMs: 200, checks: [web] }
  let firstFail: number | null = null
  let firstPass: number | null = null
  let verdictAt: number | null = null
  const engine = new DeployEngine({
    backend,
    journal: new Journal(db.sublevel('deploy')),
    health,
    onProbe: (p) => {
      if (p.phase === 'verifying' && !p.ok) firstFail ??= p.at
      if (p.phase === 'rolling-back' && p.ok) firstPass ??= p.at
    },
    onEvent: (ev) => { if (ev.kind === 'health-failed') verdictAt ??= performance.now() }
  })
  const detectToHealthy: number[] = []
  let failedRuns = 0
  try {
    // Setting up, not measured: the first service may take its time on a loaded machine.
    const first = await engine.apply({ path: good, health: { ...health, checks: [{ ...web, startPeriodMs: 60_000 }] } })
    if (first.status !== 'ok') throw new Error(`baseline generation did not apply: ${JSON.stringify(first)}`)
    for (let i = 0; i < runs; i++) {
      firstFail = firstPass = verdictAt = null
      const out = await engine.apply({ path: bad })
      const label = `rollback ${i + 1}/${runs}`
      if (out.status === 'ok') throw new Error(`${label}: the HTTP 500 generation passed its health checks`)
      if (firstFail === null) throw new Error(`${label}: no failing probe of the bad generation: ${JSON.stringify(out)}`)
      if (out.status === 'failed' || firstPass === null) {
        failedRuns++
        process.stderr.write(`${label}: FAILED, the previous generation did not come back: ${out.status === 'failed' ? out.reason : 'no passing probe'}\n`)
        continue
      }
      detectToHealthy.push(firstPass - firstFail)
      process.stderr.write(`${label}: ${round(firstPass - firstFail)} ms (failure declared after ${round((verdictAt ?? NaN) - firstFail)} ms)\n`)
    }
  } finally {
    await db.close()
    await host.cleanup()
  }
  const recovered = detectToHealthy.length > 0
  return {
    bench: 'rollback',
    runs,
    failed_runs: failedRuns,
    detect_to_healthy_ms_p50: recovered ? round(median(detectToHealthy)) : 'none',
    detect_to_healthy_ms_max: recovered ? round(Math.max(...detectToHealthy)) : 'none',
    switch_ms_p50: round(median(switchMs)),
    load_avg_1m_start: round(loadAtStart),
    load_avg_1m_end: round(loadavg()[0] as number)
  }
}
