// One host of the rooms benchmark, in its own process, driven over the IPC channel by
// simulations/bench/rooms.ts. It runs the same host fixture as test/rooms (real libp2p, audit
// store and sync, membership fold, room service) and timestamps what it sends and receives with
// the shared monotonic-on-one-machine clock performance.timeOrigin + performance.now().
import { performance } from 'node:perf_hooks'
import { multiaddr } from '@multiformats/multiaddr'
import { MESH, newIdentity, startHost, until, type TestHost } from '../../test/rooms/helpers.js'
import { roomTopic, type RoomMessageOut } from '../../protocols/rooms/index.js'

type Command = { t: string, [k: string]: unknown }

const now = (): number => performance.timeOrigin + performance.now()
const identity = await newIdentity()
let host: TestHost | undefined
const latencies: number[] = []
let received = 0
let lastReceivedAt = 0

function reply (msg: Record<string, unknown>): void {
  process.send!(msg)
}

/** A text of `size` bytes that starts with its send time. */
function payload (size: number): string {
  const head = `${now().toFixed(3)}|`
  return head + 'x'.repeat(Math.max(0, size - head.length))
}

function onMessage (m: RoomMessageOut): void {
  if (m.sender === host!.id) return
  const at = now()
  latencies.push(at - Number(m.text.slice(0, m.text.indexOf('|'))))
  received++
  lastReceivedAt = at
}

async function handle (c: Command): Promise<Record<string, unknown>> {
  switch (c.t) {
    case 'start':
      host = await startHost(identity, c.founder as string)
      host.rooms.on('message', onMessage)
      return { addr: host.libp2p.getMultiaddrs()[0]!.toString() }
    case 'genesis':
      await host!.store.append('genesis', { mesh: MESH, name: 'rooms bench', founder: host!.id, xwing: identity.xwingPublicKey })
      for (const a of c.admits as Array<{ peer: string, xwing: string }>) {
        await host!.store.append('admit', { peer: a.peer, role: 'host', tags: [], xwing: new Uint8Array(Buffer.from(a.xwing, 'base64')) })
      }
      return {}
    case 'dial':
      for (const addr of c.addrs as string[]) await host!.libp2p.dial(multiaddr(addr))
      return {}
    case 'members':
      await until(() => (c.peers as string[]).every(p => host!.membership.isMember(p)), 'every admit')
      return {}
    case 'create': {
      const room = await host!.rooms.create({ name: 'bench', members: (c.peers as string[]).map(p => ({ host: p, agent: 'bot' })) })
      return { room: room.id }
    }
    case 'ready': {
      const topic = roomTopic(c.room as string)
      await until(() => host!.rooms.room(c.room as string)?.member === true, 'the room')
      await until(() => {
        const subs = host!.libp2p.services.pubsub.getSubscribers(topic).map(String)
        return (c.peers as string[]).every(p => p === host!.id || subs.includes(p))
      }, 'topic subscriptions')
      return {}
    }
    case 'send': {
      // one at a time with a gap: latency without queueing
      const count = c.count as number
      const start = now()
      for (let i = 0; i < count; i++) {
        await host!.rooms.send(c.room as string, 'bot', payload(c.size as number))
        if ((c.gapMs as number) > 0) await new Promise(resolve => setTimeout(resolve, c.gapMs as number))
      }
      return { start, end: now() }
    }
    case 'stats':
      return { latencies, received, lastReceivedAt }
    case 'reset':
      latencies.length = 0
      received = 0
      return {}
    case 'exit':
      await host?.close()
      setImmediate(() => process.exit(0))
      return {}
    default:
      throw new Error(`unknown command ${c.t}`)
  }
}

process.on('message', (c: Command & { id: number }) => {
  handle(c).then(
    (r) => { reply({ id: c.id, ok: true, ...r }) },
    (err: Error) => { reply({ id: c.id, ok: false, error: err.message }) }
  )
})
reply({ t: 'hello', peer: identity.peerId.toString(), xwing: Buffer.from(identity.xwingPublicKey).toString('base64') })
