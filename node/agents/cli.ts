// `fleetmesh agents …`: the agents this host supervises, through the local API with the operator
// token. `logs --follow` long-polls the logs route from the cursor of its last read.
import type { Command } from 'commander'
import type { ControlClient } from '../client.js'
import type { LogRead } from './logs.js'
import type { AgentStatus } from './unit.js'

const FOLLOW_WAIT_MS = 25_000

const out = (line: string): void => { process.stdout.write(line + '\n') }

function describe (s: AgentStatus): string {
  const restarts = Object.entries(s.restarts).map(([k, n]) => `${k} ${n}`).join(', ')
  const state = s.state === 'failed' ? 'FAILED' : s.state === 'running' && !s.live ? 'running, not live' : s.state
  return [
    s.name.padEnd(16),
    state.padEnd(18),
    `pid ${s.pid ?? '-'}`.padEnd(12),
    `rss ${s.rssBytes === null ? '-' : `${(s.rssBytes / 1048576).toFixed(1)} MiB`}`.padEnd(14),
    `restarts ${restarts === '' ? '0' : restarts}`,
    s.escalation !== null ? `  rolling back ${s.escalation.release}` : '',
    s.reason !== null && s.state !== 'running' ? `  (${s.reason})` : ''
  ].join(' ').trimEnd()
}

const path = (name: string, rest: string): string => `/v1/agents/${encodeURIComponent(name)}${rest}`

export function registerAgentCommands (program: Command, client: () => Promise<ControlClient>): void {
  const agents = program.command('agents')
    .description('the agents this host supervises: state, restarts, logs')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const list = await (await client()).get<AgentStatus[]>('/v1/agents')
      if (o.json === true) { out(JSON.stringify(list)); return }
      if (list.length === 0) out('no agents configured ("agents" in config.json)')
      for (const s of list) out(describe(s))
    })

  agents.command('restart <name>')
    .description('restart an agent now (a failed one too, with its crash-loop count cleared)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { json?: boolean }) => {
      const s = await (await client()).post<AgentStatus>(path(name, '/restart'))
      out(o.json === true ? JSON.stringify(s) : `restarting: ${describe(s)}`)
    })

  agents.command('logs <name>')
    .description('an agent\'s output (stdout and stderr), from its bounded log files')
    .option('--follow', 'keep printing new output')
    .action(async (name: string, o: { follow?: boolean }) => {
      const c = await client()
      let r = await c.get<LogRead>(path(name, '/logs'))
      process.stdout.write(r.text)
      while (o.follow === true) {
        r = await c.get<LogRead>(path(name, `/logs?since=${r.cursor}&wait=${FOLLOW_WAIT_MS}`))
        if (r.dropped) process.stderr.write('[output rotated away before it was read]\n')
        process.stdout.write(r.text)
      }
    })
}
