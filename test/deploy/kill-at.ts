// Loaded into a daemon through NODE_OPTIONS (`--import tsx --import <this file>`): kills the
// process with SIGKILL at one point around the deploy agent's log appends, once per data dir, so
// a test can leave a real host in the exact state a crash in that window leaves. Nothing else
// changes: the append itself is the store's own.
// FLEETMESH_TEST_KILL: JSON [{ dataDir, at }], at one of
// - 'after-apply-start': the apply-start entry is durable, the executor has not begun;
// - 'before-outcome': the engine's journal holds the terminal outcome, the log lacks its entry;
// - 'after-outcome': the outcome entry is durable, the journal was not yet told reported().
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { AuditStore as Store } from '../../protocols/audit/store.js'

export type KillPoint = 'after-apply-start' | 'before-outcome' | 'after-outcome'
export interface KillSpec { dataDir: string, at: KillPoint }

const OUTCOMES = new Set(['apply-ok', 'apply-failed'])
const specs = JSON.parse(process.env.FLEETMESH_TEST_KILL ?? '[]') as KillSpec[]
const argv = process.argv
const dataDir = argv[argv.indexOf('--data-dir') + 1]
const spec = argv.includes('start') ? specs.find((s) => s.dataDir === dataDir) : undefined

/** Where a host records that it was killed, so the restarted daemon runs untouched. */
export function killMarker (dir: string): string {
  return join(dir, 'killed-by-test')
}

if (spec !== undefined && !existsSync(killMarker(spec.dataDir))) {
  // The store of the tree this daemon runs (dist/ when built, the sources under tsx otherwise):
  // patching another copy of the module would leave the daemon's own appends untouched.
  const store = new URL('../protocols/audit/store.js', pathToFileURL(argv[1]))
  const { AuditStore } = await import(store.href) as { AuditStore: typeof Store }
  const append = AuditStore.prototype.append
  const die = (): never => {
    writeFileSync(killMarker(spec.dataDir), spec.at)
    process.kill(process.pid, 'SIGKILL')
    throw new Error('unreachable')
  }
  AuditStore.prototype.append = async function (this: Store, kind: string, body: unknown) {
    if (spec.at === 'before-outcome' && OUTCOMES.has(kind)) die()
    const stored = await append.call(this, kind, body)
    if (spec.at === 'after-apply-start' && kind === 'apply-start') die()
    if (spec.at === 'after-outcome' && OUTCOMES.has(kind)) die()
    return stored
  }
}
