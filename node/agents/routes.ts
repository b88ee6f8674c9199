// The agents' control API:
//   operator only:
//   GET  /v1/agents                       every agent's status
//   POST /v1/agents/:name/restart         restart (a failed agent too) → its status
//   GET  /v1/agents/:name/logs?since=&tail=&wait=
//        its output from cursor `since` (default: the last `tail` bytes, 64 KiB), waiting up to
//        `wait` ms for something new → {text, from, cursor, dropped}
//   the agent itself, with its own agent token:
//   POST /v1/agents/:name/heartbeat       → its status
import type { ApiServer } from '../api.js'
import { NodeError } from '../errors.js'
import type { LogRead } from './logs.js'
import type { Supervisor } from './supervisor.js'
import type { AgentStatus } from './unit.js'

const MAX_WAIT_MS = 30_000

function count (name: string, v: string | null, max: number): number | undefined {
  if (v === null || v === '') return undefined
  const n = Number(v)
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > max) throw new NodeError('API_BAD_REQUEST', `${name} must be a whole number up to ${max}`)
  return n
}

export function registerAgentRoutes (api: ApiServer, supervisor: Supervisor): void {
  api.route('GET', '/v1/agents', async (): Promise<AgentStatus[]> => supervisor.list())

  api.route('POST', '/v1/agents/:name/restart', async (req): Promise<AgentStatus> => await supervisor.restart(req.params.name!))

  api.route('POST', '/v1/agents/:name/heartbeat', async (req): Promise<AgentStatus> => supervisor.heartbeat(req.principal, req.params.name!), { agents: true })

  api.route('GET', '/v1/agents/:name/logs', async (req): Promise<LogRead> => {
    const log = supervisor.log(req.params.name!)
    const since = count('since', req.query.get('since'), Number.MAX_SAFE_INTEGER)
    const tail = count('tail', req.query.get('tail'), 1024 ** 3)
    const wait = count('wait', req.query.get('wait'), MAX_WAIT_MS) ?? 0
    const first = log.read(since, tail)
    if (first.text !== '' || wait === 0 || since === undefined) return first
    const ac = new AbortController()
    const timer = setTimeout(() => { ac.abort() }, wait)
    req.raw.once('close', () => { ac.abort() })
    try {
      await log.next(ac.signal)
    } finally {
      clearTimeout(timer)
      ac.abort()
    }
    return log.read(since, tail)
  })
}
