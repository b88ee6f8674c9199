// `fleetmesh start`: run a node in the foreground until SIGINT/SIGTERM, then close it in
// order so the store is consistent (a kill -9 is covered by the store's atomic batches).
import { runtimeEnv } from './config.js'
import { MeshNode, type MeshNodeOptions } from './mesh.js'

/** Resolves once the node has stopped after a signal; rejects if it cannot start or stop. */
export async function runDaemon (opts: MeshNodeOptions, out: (line: string) => void): Promise<void> {
  // Listen before starting: a signal that lands while the node is still opening must
  // still close it cleanly rather than kill the process half-way.
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  const node = await MeshNode.start({ ...runtimeEnv(), ...opts })
  out(`peer id: ${node.identity.peerId.toString()}`)
  for (const a of node.addresses()) out(`listening: ${a}`)
  out(`control api: ${node.apiUrl}`)
  const signal = await signalled
  node.log.info({ signal }, 'shutting down')
  await node.stop()
}
