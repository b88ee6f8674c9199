// The process backend: each run is a process group of its own (a detached spawn: its pid is its
// group id), so a signal reaches everything the agent started and no child outlives a restart.
// The daemon sees the leader's exit at once from the child's exit event; whatever is left of the
// group then is killed before the run counts as ended.
//
// A detached group outlives a daemon that is killed outright, so each run is recorded in the
// agent's directory (`run.json`: pid and /proc start time, which together name one process for
// good) and the next daemon kills what a record still names before it starts the agent again:
// never two copies of an agent, never a stranger killed for a reused pid.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { NodeError } from '../errors.js'
import { writeFileAtomic } from '../fs-atomic.js'
import type { AgentBackend, AgentExit, AgentRun } from './backend.js'
import type { RotatingLog } from './logs.js'
import { groupRss, startTime } from './proc.js'
import type { AgentSpec } from './types.js'

const RUN_FILE = 'run.json'
const REAP_WAIT_MS = 2000

function killGroup (pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal)
  } catch {
    // the group is gone
  }
}

/** uid and gid of a user, from /etc/passwd (what getpwnam reads on a host without NSS modules). */
function userIds (name: string): { uid: number, gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === name)
  const f = line?.split(':')
  if (f === undefined || f.length < 4) throw new NodeError('CONFIG_INVALID', `agent user ${name} does not exist on this host`)
  return { uid: Number(f[2]), gid: Number(f[3]) }
}

/** Kills the group a run record of an earlier daemon still names, and waits for its leader to go. */
async function reap (file: string): Promise<void> {
  let rec: { pid?: unknown, start?: unknown }
  try {
    rec = JSON.parse(readFileSync(file, 'utf8')) as typeof rec
  } catch {
    return
  }
  const pid = rec.pid
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 1 || typeof rec.start !== 'string' || startTime(pid) !== rec.start) return
  killGroup(pid, 'SIGKILL')
  const until = performance.now() + REAP_WAIT_MS
  while (startTime(pid) === rec.start && performance.now() < until) {
    // a zombie waiting for an init that reaps slowly holds no port and no memory
    if (/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export class ProcessBackend implements AgentBackend {
  /** per run file: its writes in start order */
  private readonly records = new Map<string, Promise<void>>()

  async start (spec: AgentSpec, env: Record<string, string>, cwd: string, log: RotatingLog): Promise<AgentRun> {
    const ids = spec.user === undefined ? {} : userIds(spec.user)
    if (spec.user !== undefined && process.getuid?.() !== 0) throw new NodeError('CONFIG_INVALID', `agent ${spec.name}: "user" needs the daemon to run as root`)
    const file = join(log.dir, RUN_FILE)
    await this.records.get(file)
    await reap(file)
    const child = spawn(spec.command, spec.args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...ids })
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', reject)
    })
    const pid = child.pid as number
    // not awaited: the agent starts now; the next start of this agent waits for the record
    this.records.set(file, writeFileAtomic(file, JSON.stringify({ pid, start: startTime(pid) ?? '' }) + '\n', 0o600).catch(() => {}))
    const write = (chunk: Buffer): void => { log.write(chunk) }
    child.stdout.on('data', write)
    child.stderr.on('data', write)
    const exited = new Promise<AgentExit>((resolve) => {
      child.once('exit', (code, signal) => {
        // the leader is gone: nothing it started may outlive the run
        killGroup(pid, 'SIGKILL')
        resolve({ code, signal })
      })
    })
    let stopping: Promise<AgentExit> | undefined
    return {
      pid,
      exited,
      stop: async (graceMs) => {
        stopping ??= (async () => {
          killGroup(pid, 'SIGTERM')
          const timer = setTimeout(() => { killGroup(pid, 'SIGKILL') }, graceMs)
          try {
            return await exited
          } finally {
            clearTimeout(timer)
          }
        })()
        return await stopping
      },
      rssBytes: async () => groupRss(pid)
    }
  }
}
