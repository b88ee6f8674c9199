// `fleetmesh init`: a data dir with an identity and a default config; with --mesh, this host
// also founds a mesh: the first entry of its feed is the signed genesis naming it admin.
import { promises as fs } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { createIdentity } from '../crypto/identity.js'
import { DEFAULT_CONFIG, dataPaths } from './config.js'
import { sharedConfig, writeConfig } from './config-file.js'
import { NodeError } from './errors.js'
import { withOfflineStore } from './offline.js'
import { defaultHostName } from './host-names.js'
import { HOST_NAME_RULE, isHostName } from '../protocols/membership/index.js'

export interface InitResult {
  peerId: string
  /** this host's name: `--name`, else the machine's hostname */
  name: string
  dataDir: string
  /** the config file the host runs on: the data dir's, written now, or a shared one left as it is */
  config: string
  mesh: { id: string, name: string } | null
}

export async function initHost (dataDir: string, opts: { listen?: string[], mesh?: string, tags?: string[], name?: string }): Promise<InitResult> {
  const paths = dataPaths(dataDir)
  // Checked before anything is written: a refused name must not leave a half-made data dir.
  if (opts.mesh !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(opts.mesh)) throw new NodeError('API_BAD_REQUEST', 'a mesh name is 1-64 letters, digits, ".", "_" or "-"')
  if (opts.name !== undefined && !isHostName(opts.name)) throw new NodeError('API_BAD_REQUEST', `--name: "${opts.name}" is not a host name; write ${HOST_NAME_RULE}`)
  const host = opts.name ?? defaultHostName()
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  // mkdir leaves an existing dir's mode alone; the daemon refuses to start in a loose one.
  await fs.chmod(dataDir, 0o700)
  const identity = await createIdentity(paths.identity).catch((err: { code?: string }) => {
    if (err.code === 'IDENTITY_EXISTS') throw new NodeError('ALREADY_INITIALISED', `${dataDir} is already initialised`)
    throw err
  })
  // A host on --config, FLEETMESH_CONFIG or /etc/fleetmesh/config.json gets no copy of its own
  // to shadow that file (unless it is given --listen, which is written down here).
  const shared = opts.listen === undefined ? await sharedConfig() : undefined
  if (shared === undefined) await writeConfig(dataDir, { ...DEFAULT_CONFIG, listen: opts.listen ?? DEFAULT_CONFIG.listen })
  const config = shared ?? paths.config
  const peerId = identity.peerId.toString()
  const mesh = opts.mesh === undefined ? null : { id: `${opts.mesh}-${randomBytes(8).toString('hex')}`, name: opts.mesh }
  await withOfflineStore(dataDir, async ({ store, meta }) => {
    // A crash before this leaves no stored name: join then falls back to the hostname.
    await meta.setHostName(host)
    if (mesh === null) return
    await store.append('genesis', { mesh: mesh.id, name: mesh.name, founder: peerId, xwing: identity.xwingPublicKey, host })
    // The genesis names no tags; the founder grants its own, like any admin would.
    if (opts.tags !== undefined && opts.tags.length > 0) await store.append('grant', { peer: peerId, tags: opts.tags })
    await meta.setMesh({ meshId: mesh.id, name: mesh.name, founder: peerId, trusted: [] })
  })
  return { peerId, name: host, dataDir, config, mesh }
}
