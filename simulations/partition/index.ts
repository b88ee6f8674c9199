// `npm run sim -- partition [--hosts 30] [--quick]`: 30 real hosts (10 with --quick) split into
// two halves in the middle of a rollout and healed. The founder publishes as `release publish`
// does; the split comes while the two canaries (one on each side) soak, and each side's wave 1
// opens on its own canary's `soaked` (the canary gate needs half of them). During the split a
// wave-1 host on one side fails, halting the release there; the other side cannot open the next
// wave (its gate needs every wave-1 host's signed ok, which cannot cross the split). After
// healing, every host must hold the same log, the same member set and the same decision, and no
// host may have applied a later wave.
import { createHash } from 'node:crypto'
import { createSimMesh, type SimHost } from '../harness/sim-host.js'
import { planOf, releaseStatus } from '../../protocols/rollout/index.js'
import type { BenchResult } from '../bench.js'

async function until (what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function digest (parts: string[]): string {
  return createHash('sha256').update(parts.sort().join('\n')).digest('hex').slice(0, 16)
}

const logDigest = (h: SimHost): string => digest(h.store.heads().map((x) => `${x.feed}:${x.seq}:${Buffer.from(x.hash).toString('hex')}`))
const memberDigest = (h: SimHost): string => digest([...(h.membership.view()?.members ?? new Map())].map(([p, m]) => `${p}:${m.role}:${m.tags.join(',')}`))

export async function run (args: string[]): Promise<BenchResult> {
  const i = args.indexOf('--hosts')
  const n = i >= 0 ? Number(args[i + 1]) : args.includes('--quick') ? 10 : 30
  if (!Number.isInteger(n) || n < 6) throw new Error('--hosts must be an integer ≥ 6')
  const half = new Set<string>()
  let split = false
  const mesh = await createSimMesh(n, {
    blocked: (self) => split ? new Set(mesh.hosts.map((h) => h.peerId).filter((p) => half.has(p) !== half.has(self))) : new Set()
  })
  try {
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const body = await mesh.founder.agent.publish({
      targets: [{ tag: 'web', path: '/nix/store/0c8ayrdb1p1vcjrxh2kxi6wxjwl0q8r6-fleetmesh-sim-generation', sources: ['peers'] }],
      waves: [
        { count: 2, gate: { healthy: 50, soakMs: 4000 } },
        { percent: 60, gate: { healthy: 100, soakMs: 0 } },
        { percent: 100, gate: { healthy: 100, soakMs: 0 } }
      ],
      maxFailures: 0
    })
    const id = body.id
    const plan = planOf(mesh.founder.rollout, body, mesh.founder.view)
    if (plan === undefined) throw new Error('the founder does not hold its own release\'s basis')
    // The halves take turns through the hosts in wave order, so each side holds hosts of every
    // wave whatever keys the hosts drew (with 10 hosts, a random half can lack wave-1 hosts).
    const byWave = [...mesh.hosts].sort((a, b) => (plan.waveOf.get(a.peerId) ?? 0) - (plan.waveOf.get(b.peerId) ?? 0))
    byWave.forEach((h, k) => { if (k % 2 === 0) half.add(h.peerId) })
    const sideA = mesh.hosts.filter((h) => half.has(h.peerId))
    const sideB = mesh.hosts.filter((h) => !half.has(h.peerId))
    /** hosts of `wave` that this host has seen write anything for the release */
    const starts = (h: SimHost, wave: number): number => [...h.rollout.outcomes.get(id)?.latest.keys() ?? []]
      .filter((host) => plan.waveOf.get(host) === wave).length
    const failing = sideA.find((h) => plan.waveOf.get(h.peerId) === 1)
    if (failing === undefined || !sideB.some((h) => plan.waveOf.get(h.peerId) === 1)) throw new Error(`wave 1 has ${plan.waves[1].length} hosts: too few to put one on each side`)
    // wave 1 opens only after a canary's 4 s soak: set before any wave-1 host can apply
    failing.opts.failApply = true
    process.stderr.write(`partition: release published; canaries ${plan.waves[0].length}, wave 1 ${plan.waves[1].length}, wave 2 ${plan.waves[2].length}; failing host on side A\n`)

    // Both canaries ok and known everywhere, still inside their gate's soak: split now.
    const okOrSoaked = new Set(['apply-ok', 'soaked'])
    await until('every host to hold both canaries\' ok', () => mesh.hosts.every((h) => plan.waves[0].every((c) => okOrSoaked.has(h.rollout.outcomes.get(id)?.latest.get(c)?.kind ?? ''))))
    split = true
    await Promise.all(mesh.hosts.map(async (h) => { await h.cut() }))
    const splitAt = Date.now()
    process.stderr.write('partition: split into two halves\n')

    await until('side A to see the halt', () => sideA.every((h) => releaseStatus(h.rollout, h.view, id)?.state === 'halted'))
    await until('side B to finish wave 1', () => sideB.filter((h) => plan.waveOf.get(h.peerId) === 1).every((h) => h.applied.has(id)))
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const bWaiting = sideB.every((h) => releaseStatus(h.rollout, h.view, id)?.state === 'rolling')
    const startsDuringSplit = mesh.hosts.reduce((s, h) => s + starts(h, 2), 0)
    process.stderr.write(`partition: side A halted; side B waits at wave 2 (${bWaiting}); wave-2 starts so far ${startsDuringSplit}\n`)

    split = false
    const healAt = Date.now()
    for (const [i, h] of sideB.entries()) await h.dial(sideA[i % sideA.length].address())
    const target = (): boolean => new Set(mesh.hosts.map(logDigest)).size === 1
    await until('every host to hold the same log after healing', target, 120_000)
    const converged = Date.now() - healAt
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const states = new Set(mesh.hosts.map((h) => releaseStatus(h.rollout, h.view, id)?.state))
    const laterWaveStarts = mesh.hosts.reduce((s, h) => s + starts(h, 2), 0)
    const result = {
      sim: 'partition',
      hosts: n,
      split_ms: healAt - splitAt,
      heal_converge_ms: converged,
      later_wave_starts: laterWaveStarts,
      side_b_waited: bWaiting ? 1 : 0,
      halted_everywhere: states.size === 1 && states.has('halted') ? 1 : 0,
      log_digests: new Set(mesh.hosts.map(logDigest)).size,
      member_digests: new Set(mesh.hosts.map(memberDigest)).size,
      decision_digests: new Set(mesh.hosts.map((h) => h.desired())).size
    }
    if (result.later_wave_starts !== 0 || result.halted_everywhere !== 1 || result.log_digests !== 1 || result.member_digests !== 1 || result.decision_digests !== 1 || result.side_b_waited !== 1) {
      throw new Error(`partition safety violated: ${JSON.stringify(result)}`)
    }
    return result
  } finally {
    await mesh.close()
  }
}
