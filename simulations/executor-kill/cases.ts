// kill -9 of a deploy daemon's executor at every phase of an apply, then a fresh process: the
// host recovers, unreported() yields exactly one outcome per attempt until reported(), and
// nothing unverified is reported ok. Real processes (test/nixos/executor-child.ts), real Nix,
// real activations and services. Each case starts from its own host running k1. CI runs a seeded
// few (test/nixos/crash.test.ts); `npm run sim -- executor-kill` runs every phase.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NixProfileBackend, type ApplyOutcome, type HealthCheck } from '../../nixos/index.js'
import type { Intent, Unreported } from '../../node/deploy/index.js'
import { activeVersion, buildGeneration, ensureNix, fixtureHost, type FixtureHost } from '../../test/fixtures/nix/fixtures.js'
import type { ChildArgs, ChildOp } from '../../test/nixos/executor-child.js'

const childScript = fileURLToPath(new URL('../../test/nixos/executor-child.ts', import.meta.url))

interface ChildRun { signal: NodeJS.Signals | null, results: Array<{ op: string, result: unknown }>, logs: string[] }

/** The marker the fixture's activation of `version` reads: it SIGKILLs the daemon's group. */
type Before = (host: FixtureHost, pid: number) => Promise<void>

async function runChild (host: FixtureHost, ops: ChildOp[], opts: { killOn?: string, before?: Before } = {}): Promise<ChildRun> {
  const args: ChildArgs = { dir: host.dir, profile: host.profile, env: host.env, checks: checks(host), killOn: opts.killOn ?? null, ops }
  // Its own process group, as a daemon under its service manager: the group an activation that
  // restarts the daemon kills.
  const child = spawn(process.execPath, ['--import', 'tsx', childScript], { env: { ...process.env, EXECUTOR_CHILD_ARGS: JSON.stringify(args) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  await opts.before?.(host, child.pid as number)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => { child.once('close', (c, s) => { resolve([c, s]) }) })
  const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  if (signal === null && code !== 0) throw new Error(`executor child exited ${code}: ${stderr}`)
  return {
    signal,
    results: lines.filter((l) => 'op' in l) as ChildRun['results'],
    logs: lines.filter((l) => 'log' in l).map((l) => String(l.log))
  }
}

function checks (host: FixtureHost): HealthCheck[] {
  // `probe-kill` SIGKILLs the daemon at its first probe while the marker exists: a crash mid-verification.
  const marker = join(host.stateDir, 'kill-on-probe')
  return [
    { kind: 'http', name: 'web', url: host.url, intervalMs: 50, retries: 10, timeoutMs: 300, startPeriodMs: 5000 },
    { kind: 'command', name: 'probe-kill', command: `if [ -e ${marker} ]; then rm -f ${marker}; kill -9 $PPID; fi`, intervalMs: 50, startPeriodMs: 0 }
  ]
}

const killGroupOn = (version: string): Before => async (host, pid) => { await writeFile(join(host.stateDir, `kill-group-on-${version}`), String(pid)) }

const results = <T>(run: ChildRun, op: string): T[] => run.results.filter((r) => r.op === op).map((r) => r.result as T)

/** What every case uses: the built generations, fresh hosts, and the checks after a restart. */
export interface Kit {
  gens: Record<string, string>
  intent: (release: string, path: string, revert?: boolean) => Intent
  /** A host running k1, applied, verified and reported. */
  baseline: () => Promise<FixtureHost>
  /**
   * The restarted daemon: exactly one unreported outcome, for `attempt`; gone once reported,
   * and still gone after another restart.
   */
  restart: (host: FixtureHost, attempt: Intent) => Promise<ApplyOutcome>
  /** the host runs `version` as profile generation `number`, and its service answers */
  runs: (host: FixtureHost, version: string, number: number) => Promise<void>
  cleanup: () => Promise<void>
}

export async function openKit (): Promise<Kit> {
  await ensureNix()
  const gens: Record<string, string> = {}
  const entries = await Promise.all((([['k1', 'good'], ['k2', 'good'], ['k-500', 'status500']]) as const).map(async ([v, mode]) => [v, await buildGeneration(v, mode)] as const))
  for (const [v, path] of entries) gens[v] = path
  const hosts: FixtureHost[] = []
  let n = 0
  const intent = (release: string, path: string, revert = false): Intent => ({ applyId: `${String(++n).padStart(4, '0')}-${release}`, release, path, revert })
  return {
    gens,
    intent,
    async baseline () {
      const host = await fixtureHost()
      hosts.push(host)
      const first = intent('base', gens.k1)
      const run = await runChild(host, [{ op: 'run', intent: first }, { op: 'reported', id: first.applyId }, { op: 'unreported' }])
      assert.equal(results<ApplyOutcome>(run, 'run')[0]?.status, 'ok')
      assert.deepEqual(results(run, 'unreported'), [[]])
      return host
    },
    async restart (host, attempt) {
      const run = await runChild(host, [{ op: 'unreported' }, { op: 'reported', id: attempt.applyId }, { op: 'unreported' }])
      assert.equal(run.signal, null)
      const [first, afterReport] = results<Unreported[]>(run, 'unreported')
      assert.equal(first?.length, 1, JSON.stringify(first))
      assert.deepEqual(first[0]?.intent, attempt)
      assert.deepEqual(afterReport, [])
      const again = await runChild(host, [{ op: 'unreported' }])
      assert.deepEqual(results(again, 'unreported'), [[]])
      return first[0]?.outcome as ApplyOutcome
    },
    async runs (host, version, number) {
      assert.equal(await activeVersion(host.stateDir), version)
      assert.equal((await fetch(host.url)).status, 200)
      assert.deepEqual(await new NixProfileBackend({ profile: host.profile }).current(), { number, path: gens[version] })
    },
    async cleanup () { for (const h of hosts.splice(0)) await h.cleanup() }
  }
}

export interface KillCase { name: string, run: (k: Kit) => Promise<void> }

/** Every phase of an apply a kill -9 can hit, in the order an apply passes them. */
export const CASES: readonly KillCase[] = [
  {
    name: 'during fetch: a transient failure, nothing switched; the same attempt may run again',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r2', k.gens.k2 as string)
      const crashed = await runChild(host, [{ op: 'run', intent: x }], { killOn: 'apply-start' })
      assert.equal(crashed.signal, 'SIGKILL')
      const out = await k.restart(host, x)
      assert.ok(out.status === 'failed' && out.transient === true && out.code === 'APPLY_INTERRUPTED', JSON.stringify(out))
      await k.runs(host, 'k1', 1)
      const retried = await runChild(host, [{ op: 'run', intent: x }, { op: 'reported', id: x.applyId }, { op: 'unreported' }])
      assert.equal(results<ApplyOutcome>(retried, 'run')[0]?.status, 'ok')
      assert.deepEqual(results(retried, 'unreported'), [[]])
      await k.runs(host, 'k2', 2)
    }
  },
  {
    name: 'after setting the profile, before activation: the profile is reset, nothing activated, transient',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r2', k.gens.k2 as string)
      assert.equal((await runChild(host, [{ op: 'run', intent: x }], { killOn: 'switched' })).signal, 'SIGKILL')
      const out = await k.restart(host, x)
      assert.ok(out.status === 'failed' && out.transient === true, JSON.stringify(out))
      await k.runs(host, 'k1', 1)
    }
  },
  {
    name: 'during activation, by the activation restarting the daemon itself: finished and verified by the restarted daemon',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r2', k.gens.k2 as string)
      const crashed = await runChild(host, [{ op: 'run', intent: x }], { before: killGroupOn('k2') })
      assert.equal(crashed.signal, 'SIGKILL')
      assert.deepEqual(results(crashed, 'run'), [])
      const out = await k.restart(host, x)
      assert.deepEqual(out, { status: 'ok', id: x.applyId, generation: { number: 2, path: k.gens.k2 } })
      await k.runs(host, 'k2', 2)
    }
  },
  {
    name: 'during verification: verified again in full, then ok',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r2', k.gens.k2 as string)
      const crashed = await runChild(host, [{ op: 'run', intent: x }], { before: async (h) => { await writeFile(join(h.stateDir, 'kill-on-probe'), '') } })
      assert.equal(crashed.signal, 'SIGKILL')
      assert.ok(!crashed.logs.includes('deploy: apply-ok'))
      const out = await k.restart(host, x)
      assert.equal(out.status, 'ok')
      await k.runs(host, 'k2', 2)
    }
  },
  {
    name: 'after the terminal journal write: the outcome is kept for the restarted daemon',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r2', k.gens.k2 as string)
      assert.equal((await runChild(host, [{ op: 'run', intent: x }], { killOn: 'apply-ok' })).signal, 'SIGKILL')
      assert.equal((await k.restart(host, x)).status, 'ok')
      await k.runs(host, 'k2', 2)
    }
  },
  {
    name: 'after the outcome, before reported(): returned again, once',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r2', k.gens.k2 as string)
      const crashed = await runChild(host, [{ op: 'run', intent: x }, { op: 'die' }])
      assert.equal(crashed.signal, 'SIGKILL')
      assert.equal(results<ApplyOutcome>(crashed, 'run')[0]?.status, 'ok')
      assert.equal((await k.restart(host, x)).status, 'ok')
    }
  },
  {
    name: 'during the rollback of a failed apply: the rollback is finished, rolled back once',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r500', k.gens['k-500'] as string)
      // The rollback re-activates k1, and that activation kills the daemon.
      assert.equal((await runChild(host, [{ op: 'run', intent: x }], { before: killGroupOn('k1') })).signal, 'SIGKILL')
      const out = await k.restart(host, x)
      assert.ok(out.status === 'rolled-back', JSON.stringify(out))
      assert.deepEqual(out.generation, { number: 1, path: k.gens.k1 })
      await k.runs(host, 'k1', 1)
    }
  },
  {
    name: 'during the soak watch, then during rollbackSoak: nothing to report, then the rollback once',
    run: async (k) => {
      const host = await k.baseline()
      const x = k.intent('r2', k.gens.k2 as string)
      // Applied, reported, then killed while soaking: the journal owes nothing.
      const soaking = await runChild(host, [{ op: 'run', intent: x }, { op: 'reported', id: x.applyId }, { op: 'die' }])
      assert.equal(soaking.signal, 'SIGKILL')
      assert.deepEqual(results(await runChild(host, [{ op: 'unreported' }]), 'unreported'), [[]])
      await k.runs(host, 'k2', 2)
      // The soak failed: rolled back to k1, and that activation kills the daemon.
      const rolling = await runChild(host, [{ op: 'rollbackSoak', intent: x, reason: 'web failed during the gate soak' }], { before: killGroupOn('k1') })
      assert.equal(rolling.signal, 'SIGKILL')
      const out = await k.restart(host, x)
      assert.ok(out.status === 'rolled-back', JSON.stringify(out))
      assert.equal(out.reason, 'web failed during the gate soak')
      await k.runs(host, 'k1', 1)
    }
  }
]
