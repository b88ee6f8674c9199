// How light the installed command is: the wall time of `fleetmesh --help` and of `status` with
// no daemon running (it exits 3), and the resident memory of an idle node with no peers once it
// has run for 30 s. It runs the compiled bin on this Node, which `npm run bench` builds first
// (a dist/ older than the tree is refused). `--quick` waits 5 s and times fewer runs.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { assertBuilt } from '../harness/processes.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'node', 'bin', 'fleetmesh.js')

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const round = (x: number): number => Math.round(x * 10) / 10

/** Wall time of one run of the bin, which must exit with `expected`. */
function timed (args: string[], expected: number): number {
  const t = performance.now()
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' })
  const ms = performance.now() - t
  if (r.status !== expected) throw new Error(`fleetmesh ${args.join(' ')} exited ${r.status} (expected ${expected}): ${r.stderr}`)
  return ms
}

/** VmRSS of a process, in MiB. */
async function rssMib (pid: number): Promise<number> {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
  if (kb === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(kb[1]) / 1024
}

/** Starts a node on `dataDir`, lets it idle for `idleMs` and returns its RSS, then stops it. */
async function idleRss (dataDir: string, idleMs: number): Promise<number> {
  const endpoint = join(dataDir, 'api.json')
  const daemon = spawn(process.execPath, [BIN, '--data-dir', dataDir, 'start'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  daemon.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  let running = true
  const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => { running = false; resolve(code) }))
  try {
    for (let i = 0; !existsSync(endpoint); i++) {
      if (!running || i > 600) throw new Error(`the node did not start: ${stderr}`)
      await sleep(100)
    }
    await sleep(idleMs)
    // The node's own pid, as it records it for clients: the process that runs the CLI.
    const { pid } = JSON.parse(await readFile(endpoint, 'utf8')) as { pid: number }
    return await rssMib(pid)
  } finally {
    daemon.kill('SIGTERM')
    const code = await exited
    if (code !== 0) process.stderr.write(`footprint: the node exited ${code} on SIGTERM: ${stderr}\n`)
  }
}

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const quick = args.includes('--quick')
  const runs = quick ? 5 : 15
  assertBuilt()
  const dir = await mkdtemp(join(tmpdir(), 'fleetmesh-footprint-'))
  try {
    const dataDir = join(dir, 'host')
    timed(['--data-dir', dataDir, 'init'], 0)
    const help: number[] = []
    const status: number[] = []
    for (let i = 0; i < runs; i++) {
      help.push(timed(['--help'], 0))
      status.push(timed(['--data-dir', dataDir, 'status'], 3))
    }
    process.stderr.write(`footprint: --help ${round(median(help))} ms, status ${round(median(status))} ms (p50 of ${runs}); idling a node\n`)
    const rss = await idleRss(dataDir, quick ? 5_000 : 30_000)
    return {
      bench: 'footprint',
      cli_help_ms_p50: round(median(help)),
      status_no_daemon_ms_p50: round(median(status)),
      idle_rss_mib: round(rss)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
