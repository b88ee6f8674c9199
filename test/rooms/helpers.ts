// An N-host mesh in one process for room tests: real libp2p nodes, a real audit store and sync
// per host on a temp level db, and a membership view folded from each host's own store. Host 0
// is the founder (genesis) and admits the others, each with its X-Wing key.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { HostIdentity } from '../../crypto/identity.js'
import { generateXWingSeed, xwingPublicKey } from '../../crypto/xwing.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { AuditStore, auditSublevel, AuditSync, createKindRegistry } from '../../protocols/audit/index.js'
import { applyEntry, createMembershipState, membershipSchemas, standingAt, viewOf, type MembershipState } from '../../protocols/membership/index.js'
import { roomSchemas, RoomService, roomsSublevel, type RejectEvent, type RoomMembershipView, type RoomServiceOptions } from '../../protocols/rooms/index.js'
import { until } from '../audit/helpers.js'

export const MESH = 'rooms-test-mesh'

export interface TestHost {
  id: string
  identity: HostIdentity
  dir: string
  db: Level<string, Uint8Array>
  store: AuditStore
  libp2p: MeshLibp2p
  sync: AuditSync
  /** undefined for a host started without a service */
  rooms: RoomService
  membership: RoomMembershipView
  rejected: RejectEvent[]
  /** added to the clock of the host's audit store: a host that backdates (or postdates) its entries */
  clock: { offsetMs: number }
  /** stops rooms, sync and libp2p; the store and db stay open */
  goOffline: () => Promise<void>
  /** a new libp2p (same key), sync and room service on the same store and db */
  goOnline: () => Promise<void>
  close: () => Promise<void>
}

export async function newIdentity (): Promise<HostIdentity> {
  const privateKey = await generateKeyPair('Ed25519')
  const xwingSeed = generateXWingSeed()
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), xwingSeed, xwingPublicKey: xwingPublicKey(xwingSeed) }
}

function membershipOf (state: MembershipState): RoomMembershipView {
  return {
    isMember: (p) => viewOf(state).members.has(p),
    xwingOf: (p) => viewOf(state).members.get(p)?.xwing,
    isAdmin: (p) => viewOf(state).members.get(p)?.role === 'admin',
    standingAt: (feed, seq, ts) => standingAt(state, feed, seq, ts)
  }
}

/** `serviceOpts: null` starts no room service (a test attaches its own, e.g. node/rooms.ts). */
export async function startHost (identity: HostIdentity, founder: string, serviceOpts: Partial<RoomServiceOptions> | null = {}): Promise<TestHost> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-rooms-'))
  const db = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' })
  await db.open()
  const kinds = createKindRegistry()
  kinds.registerParsers(membershipSchemas)
  kinds.registerParsers(roomSchemas)
  const clock = { offsetMs: 0 }
  const store = await AuditStore.open({ db: auditSublevel(db), privateKey: identity.privateKey, kinds, now: () => Date.now() + clock.offsetMs })
  const state = createMembershipState({ meshId: MESH, founder })
  // the view follows the store before the room service sees the same entry
  store.on('entry', ({ entry }) => { applyEntry(state, entry) })
  const membership = membershipOf(state)
  const host = { id: identity.peerId.toString(), identity, dir, db, store, membership, rejected: [] as RejectEvent[], clock } as TestHost
  host.goOnline = async () => {
    host.libp2p = await createMeshLibp2p({ privateKey: identity.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
    host.sync = new AuditSync({ libp2p: host.libp2p, store, announceDelayMs: 20 })
    await host.sync.start()
    if (serviceOpts === null) return
    host.rooms = new RoomService({ libp2p: host.libp2p, store, identity, membership, db: roomsSublevel(db), repairDelayMs: 500, ...serviceOpts })
    host.rooms.on('rejected', (r) => { host.rejected.push(r) })
    await host.rooms.start()
  }
  host.goOffline = async () => {
    await host.rooms?.stop()
    await host.sync.stop()
    await host.libp2p.stop()
  }
  host.close = async () => {
    await host.goOffline()
    await store.close()
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
  await host.goOnline()
  return host
}

export async function connect (a: TestHost, b: TestHost): Promise<void> {
  await a.libp2p.dial(b.libp2p.getMultiaddrs()[0])
}

export { until }

/** `n` hosts, fully connected, all holding the genesis and every admit. */
export async function startMesh (n: number, serviceOpts: Partial<RoomServiceOptions> = {}, bare: number[] = []): Promise<TestHost[]> {
  const ids = await Promise.all(Array.from({ length: n }, newIdentity))
  const founder = ids[0]!.peerId.toString()
  const hosts: TestHost[] = []
  for (const [i, id] of ids.entries()) hosts.push(await startHost(id, founder, bare.includes(i) ? null : serviceOpts))
  await hosts[0]!.store.append('genesis', { mesh: MESH, name: 'rooms test', founder, xwing: ids[0]!.xwingPublicKey })
  for (const h of hosts.slice(1)) await hosts[0]!.store.append('admit', { peer: h.id, role: 'host', tags: [], xwing: h.identity.xwingPublicKey })
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await connect(hosts[i]!, hosts[j]!)
  await until(() => hosts.every(h => hosts.every(o => h.membership.isMember(o.id))), 'every host to see every admit')
  return hosts
}

/** Until every host in `hosts` sees the others subscribed to the room's topic. */
export async function meshed (hosts: TestHost[], topic: string): Promise<void> {
  await until(() => hosts.every(h => {
    const subs = h.libp2p.services.pubsub.getSubscribers(topic).map(String)
    return hosts.every(o => o === h || subs.includes(o.id))
  }), `gossip subscriptions on ${topic}`)
}
