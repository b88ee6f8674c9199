// How fast the watchdog brings a broken agent back to serving, with the process backend: a real
// agent (test/agents/fixtures/agent.mjs, a node HTTP server) under the daemon's Supervisor,
// writing its signed `agent` entries into a real audit store. `runs` times each (20; `--quick`
// 3; or the first positional argument), one after the other:
//   crash: the agent is told to exit(3);
//   hang:  it stops answering its health endpoint (liveness http, probed every 100 ms, hung after
//          HANG_TIMEOUT_MS without a passing probe; SIGTERM, then SIGKILL after the grace);
//   leak:  it takes LEAK_MIB at once, over its ceiling (LEAK_CEILING, about 60 MiB above what
//          the agent holds at rest; RSS checked every LEAK_INTERVAL_MS, a /proc scan of its
//          process group); the clock starts when the agent says it holds the memory, so the
//          time measured is the watchdog's, not the leak's own growth (faulting pages in runs
//          at ~120 MB/s on a loaded machine here: a bigger leak would block the agent long
//          enough to be taken for a hang).
// Each run checks that the watchdog restarted the agent for the fault it was given:
// a restart for another reason is not a measurement of this one.
// *_to_serving_ms runs from the moment the fault is caused to the first 200 from the health
// endpoint of a NEW process (its pid differs: the old one cannot answer for it); the health
// endpoint is polled every 5 ms. Between runs the agent stays up for the backoff's maximum, so
// each fault meets the policy's first restart delay (backoffInitialMs, 100 ms), as an agent
// that fails now and then does. Each run is printed on stderr.
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { request } from 'node:http'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Registry } from 'prom-client'
import { AuditStore, auditSublevel } from '../../protocols/audit/index.js'
import { createNodeKindRegistry } from '../../node/store.js'
import { parseAgentSpec } from '../../node/agents/spec.js'
import { agentMetrics } from '../../node/agents/metrics.js'
import { ProcessBackend } from '../../node/agents/process.js'
import { Supervisor } from '../../node/agents/supervisor.js'
import { freePort } from '../../test/fixtures/nix/fixtures.js'

const AGENT = fileURLToPath(new URL('../../test/agents/fixtures/agent.mjs', import.meta.url))
const HANG_TIMEOUT_MS = 1000
const LEAK_INTERVAL_MS = 200
const LEAK_CEILING = 112 * 1024 * 1024
const LEAK_MIB = 64
const BACKOFF_MAX_MS = 500

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function healthy (port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(500) })
    await res.text()
    return res.status === 200
  } catch {
    return false
  }
}

/** POST /crash|/hang|/leak on a fresh connection (a pooled one may be to the previous process); true once answered. */
async function poke (port: number, fault: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: `/${fault}`, method: 'POST', agent: false }, (res) => { res.resume(); res.on('end', () => { resolve(true) }) })
    req.on('error', () => { resolve(false) })
    req.end()
  })
}

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const quick = args.includes('--quick')
  const runs = Number(args.find(a => !a.startsWith('--')) ?? (quick ? 3 : 20))
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`)
  const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-bench-watchdog-'))
  const db = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  const store = await AuditStore.open({ db: auditSublevel(db), privateKey: await generateKeyPair('Ed25519'), kinds: createNodeKindRegistry() })
  const port = await freePort()
  const spec = parseAgentSpec('bench', 'agent', {
    name: 'bench',
    command: process.execPath,
    args: [AGENT],
    env: { PORT: String(port) },
    restart: { backoffInitialMs: 100, backoffMaxMs: BACKOFF_MAX_MS, maxRestarts: 1000, windowMs: 60_000 },
    liveness: { kind: 'http', url: `http://127.0.0.1:${port}/health`, intervalMs: 100, timeoutMs: HANG_TIMEOUT_MS },
    memoryMaxBytes: LEAK_CEILING,
    memoryIntervalMs: LEAK_INTERVAL_MS,
    stopGraceMs: 1000
  })
  const quiet = { info: () => {}, warn: () => {}, error: () => {} }
  const supervisor = new Supervisor({
    specs: [spec],
    dir,
    backend: new ProcessBackend(),
    append: async (kind, body) => await store.append(kind, body),
    metrics: agentMetrics(new Registry()),
    logger: quiet,
    apiUrl: 'http://127.0.0.1:1'
  })
  const pid = (): number | null => supervisor.status('bench').pid
  /** serving again: a new process answers its health endpoint */
  const serving = async (old: number | null): Promise<void> => {
    const until = performance.now() + 60_000
    while (pid() === old || pid() === null || !await healthy(port)) {
      if (performance.now() > until) throw new Error(`the agent did not come back within 60 s: ${JSON.stringify(supervisor.status('bench'))}`)
      await sleep(5)
    }
  }
  const times: Record<'crash' | 'hang' | 'leak', number[]> = { crash: [], hang: [], leak: [] }
  try {
    supervisor.start()
    await serving(null)
    for (let i = 0; i < runs; i++) {
      for (const fault of ['crash', 'hang', 'leak'] as const) {
        let ms: number | undefined
        while (ms === undefined) {
          // up long enough that the backoff is back at its first step
          await sleep(BACKOFF_MAX_MS + 100)
          await serving(-1)
          const old = pid()
          const before = supervisor.status('bench').restarts[fault] ?? 0
          let t0 = performance.now()
          // a loaded machine may have had the agent restarted meanwhile (slow to start is hung): not a run
          if (!await poke(port, fault === 'leak' ? `leak?mb=${LEAK_MIB}` : fault)) {
            process.stderr.write(`run ${i + 1} ${fault}: the agent was not there to take it; again\n`)
            continue
          }
          if (fault === 'leak') t0 = performance.now()
          await serving(old)
          const restarts = supervisor.status('bench').restarts
          if ((restarts[fault] ?? 0) <= before) throw new Error(`run ${i + 1} ${fault}: the agent was restarted, but not for a ${fault} (restarts by reason: ${JSON.stringify(restarts)})`)
          ms = Math.round(performance.now() - t0)
        }
        times[fault].push(ms)
        process.stderr.write(`run ${i + 1} ${fault}: serving again after ${ms} ms\n`)
      }
    }
  } finally {
    await supervisor.stop()
    await store.close()
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return {
    bench: 'watchdog',
    crash_to_serving_ms_p50: median(times.crash),
    hang_to_serving_ms_p50: median(times.hang),
    leak_to_serving_ms_p50: median(times.leak),
    runs
  }
}
