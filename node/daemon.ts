// `fleetmesh start`: run a node in the foreground until SIGINT/SIGTERM, then close it in
// order so the store is consistent (a kill -9 is covered by the store's atomic batches).
import { dataPaths, runtimeEnv } from './config.js'
import { MeshNode, type MeshNodeOptions } from './mesh.js'

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const

/** Resolves once the node has stopped after a signal; rejects if it cannot start or stop. */
export async function runDaemon (opts: MeshNodeOptions, out: (line: string) => void): Promise<void> {
  // Listen before starting: a signal that lands while the node is still opening must
  // still close it cleanly rather than kill the process half-way. The listeners stay for the
  // whole shutdown: a terminal's Ctrl-C reaches every process of its group, so a wrapper or an
  // impatient second press must not hit the default action (death, leaving api.json and
  // daemon.lock behind). A third signal is an operator who means it: exit at once.
  let node: MeshNode | undefined
  let received = 0
  // set once the clean stop is done: the process is on its way out, and a late press (a fast
  // stop finishes before the finger does) must neither kill it nor claim files were left behind
  let stopped = false
  let stop!: (signal: string) => void
  const signalled = new Promise<string>((resolve) => { stop = resolve })
  const onSignal = (signal: NodeJS.Signals): void => {
    received++
    if (received === 1) return stop(signal)
    if (stopped) {
      if (received === 2) process.stderr.write(`fleetmesh: ${signal}: already stopping; the clean stop is done\n`)
      return
    }
    if (received === 2) {
      const msg = 'already stopping; send the signal once more to exit at once, without the clean stop'
      if (node !== undefined) node.log.warn({ signal }, msg)
      else process.stderr.write(`fleetmesh: ${signal}: ${msg}\n`)
      return
    }
    const paths = dataPaths(opts.dataDir)
    process.stderr.write(`fleetmesh: ${signal} again: exiting without a clean stop; ${paths.apiEndpoint} and ${paths.lock} may be left behind (the next start takes over the stale lock)\n`)
    process.exit(130)
  }
  for (const s of STOP_SIGNALS) process.on(s, onSignal)
  try {
    node = await MeshNode.start({ ...runtimeEnv(), ...opts })
    out(`peer id: ${node.identity.peerId.toString()}`)
    for (const a of node.addresses()) out(`listening: ${a}`)
    out(`control api: ${node.apiUrl}`)
    const signal = await signalled
    node.log.info({ signal }, 'shutting down')
    await node.stop()
    stopped = true
  } finally {
    // after a clean stop the listeners stay (they keep nothing alive): see `stopped`
    if (!stopped) for (const s of STOP_SIGNALS) process.off(s, onSignal)
  }
}
