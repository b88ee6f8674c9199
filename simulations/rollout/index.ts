// `npm run sim -- rollout --hosts 50 [--quick]`: N real libp2p hosts in one process publish-to-apply
// with apply time and soak at zero, so what is measured is how fast a signed release and the
// wave-by-wave outcomes travel by gossip and sync. Prints per-host percentiles and plots
// hosts on the new generation against time (out/sim-rollout.svg). `--quick` runs the same
// scenario on 10 hosts and plots beside the README's plot, not over it.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createSimMesh } from '../harness/sim-host.js'
import { linePlot } from '../harness/svg.js'
import type { BenchResult } from '../bench.js'

function arg (args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}

function pct (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}

export async function run (args: string[]): Promise<BenchResult> {
  const quick = args.includes('--quick')
  const n = arg(args, 'hosts', quick ? 10 : 50)
  const path = '/nix/store/0c8ayrdb1p1vcjrxh2kxi6wxjwl0q8r6-fleetmesh-sim-generation'
  process.stderr.write(`rollout: starting ${n} hosts\n`)
  const mesh = await createSimMesh(n)
  try {
    // Let gossipsub form its mesh (a few heartbeats) before timing anything.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    process.stderr.write('rollout: publishing\n')
    const t0 = Date.now()
    // as `release publish` signs it: numbered, with the membership basis its plan is frozen on
    const { id } = await mesh.founder.agent.publish({
      targets: [{ tag: 'web', path, sources: ['peers'] }],
      waves: [{ count: 1, gate: { healthy: 100, soakMs: 0 } }, { percent: 25, gate: { healthy: 100, soakMs: 0 } }, { percent: 100, gate: { healthy: 100, soakMs: 0 } }],
      maxFailures: 0
    })
    const until = t0 + 120_000
    while (mesh.hosts.some((h) => !h.applied.has(id))) {
      if (Date.now() > until) throw new Error(`only ${mesh.hosts.filter((h) => h.applied.has(id)).length}/${n} hosts applied within 120 s`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const known = mesh.hosts.map((h) => (h.known.get(id) ?? t0) - t0).sort((a, b) => a - b)
    const applied = mesh.hosts.map((h) => h.applied.get(id)! - t0).sort((a, b) => a - b)
    await mkdir('out', { recursive: true })
    const svg = join('out', quick ? 'sim-rollout-quick.svg' : 'sim-rollout.svg')
    await writeFile(svg, linePlot(`${n} hosts: publish to applied (apply time 0, soak 0)`, 'ms since publish', 'hosts', [
      { name: 'hold the release entry', color: '#1f77b4', points: known.map((t, i) => [t, i + 1]) },
      { name: 'on the new generation', color: '#d62728', points: applied.map((t, i) => [t, i + 1]) }
    ]))
    process.stderr.write(`rollout: plot written to ${svg}\n`)
    return {
      sim: 'rollout',
      hosts: n,
      known_p50_ms: pct(known, 50),
      known_p99_ms: pct(known, 99),
      applied_p50_ms: pct(applied, 50),
      all_applied_ms: applied[applied.length - 1]
    }
  } finally {
    await mesh.close()
  }
}
