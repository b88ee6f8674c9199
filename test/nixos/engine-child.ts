// Runs one apply in a separate process for the crash tests: it SIGKILLs itself when the
// engine emits the event named by KILL_AT, leaving the journal exactly as a crash would.
import { Level } from 'level'
import { DeployEngine, Journal, NixProfileBackend, type HealthPolicy } from '../../nixos/index.js'

interface ChildArgs { profile: string, db: string, path: string, env: Record<string, string>, policy: HealthPolicy, killAt: string | null }

const args = JSON.parse(process.env.ENGINE_CHILD_ARGS ?? '') as ChildArgs
const db = new Level<string, string>(args.db)
const engine = new DeployEngine({
  backend: new NixProfileBackend({ profile: args.profile, activation: { env: args.env } }),
  journal: new Journal(db.sublevel('deploy')),
  health: args.policy,
  onEvent: (ev) => {
    process.stdout.write(`${JSON.stringify(ev)}\n`)
    if (ev.kind === args.killAt) process.kill(process.pid, 'SIGKILL')
  }
})
const out = await engine.apply({ path: args.path })
process.stdout.write(`${JSON.stringify({ outcome: out })}\n`)
await db.close()
