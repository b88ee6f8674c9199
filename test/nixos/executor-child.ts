// A deploy daemon's executor in a process of its own, for the crash tests: the real NixExecutor
// (real libp2p, real level db and audit store, real Nix profile) runs a list of operations and
// prints each result as a JSON line. It SIGKILLs itself when the executor logs the engine event
// named by KILL_ON, or at a `die` operation, leaving everything on disk exactly as a crash would.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { readFile, writeFile } from 'node:fs/promises'
import { pino } from 'pino'
import type { HealthCheck } from '../../nixos/index.js'
import { DEFAULT_DEPLOY } from '../../node/config.js'
import { NixExecutor, type Intent } from '../../node/deploy/index.js'
import { createMeshLibp2p } from '../../node/libp2p.js'
import { createNodeKindRegistry, openDb } from '../../node/store.js'
import { AuditStore, auditSublevel } from '../../protocols/audit/index.js'

export type ChildOp =
  | { op: 'run', intent: Intent, sources?: string[] }
  | { op: 'rollbackSoak', intent: Intent, reason: string }
  | { op: 'unreported' }
  | { op: 'reported', id: string }
  | { op: 'die' }

export interface ChildArgs {
  dir: string
  profile: string
  env: Record<string, string>
  checks: HealthCheck[]
  killOn: string | null
  ops: ChildOp[]
}

const args = JSON.parse(process.env.EXECUTOR_CHILD_ARGS ?? '') as ChildArgs
const print = (v: unknown): void => { process.stdout.write(`${JSON.stringify(v)}\n`) }

// One identity per host dir, kept across restarts like a daemon's.
const keyFile = `${args.dir}/key`
const privateKey = await readFile(keyFile).then((b) => privateKeyFromProtobuf(b) as Ed25519PrivateKey, async () => {
  const k = await generateKeyPair('Ed25519')
  await writeFile(keyFile, privateKeyToProtobuf(k))
  return k
})
const log = pino({ level: 'info' }, {
  write: (line: string) => {
    const { msg } = JSON.parse(line) as { msg?: string }
    print({ log: msg })
    if (args.killOn !== null && msg === `deploy: ${args.killOn}`) process.kill(process.pid, 'SIGKILL')
  }
})
const db = await openDb(`${args.dir}/db`)
const store = await AuditStore.open({ db: auditSublevel(db), privateKey, kinds: createNodeKindRegistry() })
const libp2p = await createMeshLibp2p({ privateKey, listen: [] })
const executor = new NixExecutor({
  config: { ...DEFAULT_DEPLOY, profile: args.profile, activationEnv: args.env, activationTimeoutMs: 60_000, healthChecks: args.checks, soakMs: 200 },
  db,
  libp2p,
  membership: { isMember: () => true },
  store,
  log
})
for (const op of args.ops) {
  switch (op.op) {
    case 'run': print({ op: op.op, result: await executor.run(op.intent, op.sources ?? []) }); break
    case 'rollbackSoak': print({ op: op.op, result: await executor.rollbackSoak(op.intent, op.reason) }); break
    case 'unreported': print({ op: op.op, result: await executor.unreported() }); break
    case 'reported': await executor.reported(op.id); print({ op: op.op, result: op.id }); break
    case 'die': process.kill(process.pid, 'SIGKILL')
  }
}
await libp2p.stop()
await db.close()
