// Rooms through real daemons: three `fleetmesh start` processes paired by invite codes, one
// room, 1 KiB messages. Agents are the bench process itself, speaking to each host's local API
// with agent tokens, as agent processes do: alice sends with POST on host a, bob and carol
// listen on hosts b and c with the server-sent-event stream. Latency is agent to agent: from
// just before alice's POST to the moment a listener reads the message off its stream, on this
// process's one clock; measured one message at a time (a small gap, no queueing). Throughput:
// a burst sent with WINDOW requests in flight, until both listeners hold all of it.
// Args: [latency messages = 300] [burst messages = 1000] [--quick: 30 and 100 unless given].
// The room is ready once every host holds it and exchanges its gossip with at least one other
// host, as in test/node/rooms.test.ts: every host relays, so carol may hear alice through bob's
// daemon, and her latency then includes that hop, as it would in a fleet whose mesh came out so.
import { performance } from 'node:perf_hooks'
import { Fleet, type FleetHost } from '../harness/fleet.js'
import { ControlClient } from '../../node/client.js'
import { RoomClient } from '../../node/room-client.js'
import type { RoomInfo, RoomStats } from '../../protocols/rooms/index.js'

const SIZE = 1024
const GAP_MS = 5
const WINDOW = 8
const WARMUP = 20
/** A message not read this long after it was sent is lost, not slow. */
const DELIVERY_TIMEOUT_MS = 30_000

const say = (line: string): void => { process.stderr.write(`rooms bench: ${line}\n`) }

/** A text of SIZE bytes that names its message number. */
function payload (n: number): string {
  const head = `${n}|`
  return head + 'x'.repeat(SIZE - head.length)
}

function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

const round = (x: number): number => Math.round(x * 100) / 100

/** One listening agent: the arrival time of every message number it reads off its stream. */
class Listener {
  readonly arrivals = new Map<number, number>()
  private readonly ac = new AbortController()
  private readonly waiters: Array<{ n: number, resolve: () => void }> = []
  readonly done: Promise<void>

  constructor (readonly agent: string, client: RoomClient, room: string) {
    this.done = (async () => {
      for await (const m of client.stream(room, { signal: this.ac.signal })) {
        const n = Number(m.text.slice(0, m.text.indexOf('|')))
        this.arrivals.set(n, performance.now())
        for (const w of this.waiters.filter(x => this.arrivals.has(x.n))) {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          w.resolve()
        }
      }
    })()
  }

  async got (n: number): Promise<void> {
    if (this.arrivals.has(n)) return
    let timer: NodeJS.Timeout | undefined
    const waiter = { n, resolve: () => {} }
    try {
      await new Promise<void>((resolve, reject) => {
        waiter.resolve = resolve
        this.waiters.push(waiter)
        timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1)
          reject(new Error(`${this.agent} did not read message ${n} within ${DELIVERY_TIMEOUT_MS} ms of waiting (read ${this.arrivals.size} messages)`))
        }, DELIVERY_TIMEOUT_MS)
      })
    } finally {
      clearTimeout(timer)
    }
  }

  async close (): Promise<void> {
    this.ac.abort()
    await this.done
  }
}

async function agentClient (h: FleetHost, agent: string): Promise<RoomClient> {
  const { token } = await h.json<{ token: string }>(['room', 'token', agent])
  return new RoomClient({ url: (await ControlClient.forDataDir(h.dataDir)).url, token })
}

/**
 * Until every host holds the room and exchanges its gossip with at least one of the others; on
 * timeout the error says what each host showed last. Returns each host's topic peers then.
 */
async function meshed (fleet: Fleet, hosts: FleetHost[], room: string): Promise<string> {
  const name = (peer: string): string => hosts.find(h => h.peerId === peer)?.name ?? peer
  let seen = 'nothing yet'
  try {
    await fleet.waitFor(`every host to hold room ${room} with at least one other host as a topic peer`, async () => {
      const views = await Promise.all(hosts.map(async (h) => {
        const api = await ControlClient.forDataDir(h.dataDir)
        if (!(await api.get<RoomInfo[]>('/v1/rooms')).some(r => r.id === room)) return { h, peers: undefined }
        return { h, peers: (await api.get<RoomStats>(`/v1/rooms/${room}/stats`)).peers }
      }))
      seen = views.map(({ h, peers }) => `${h.name}: ${peers === undefined ? 'no room' : `topic peers [${peers.map(name).join(',')}]`}`).join('; ')
      return views.every(({ h, peers }) => peers !== undefined && hosts.some(o => o !== h && peers.includes(o.peerId)))
    })
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${seen}`, { cause: err })
  }
  return seen
}

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const quick = args.includes('--quick')
  const counts = args.filter(a => a !== '--quick')
  const latencyCount = Number(counts[0] ?? (quick ? 30 : 300))
  const burst = Number(counts[1] ?? (quick ? 100 : 1000))
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b' }, { name: 'c' }], onProgress: say })
  const listeners: Listener[] = []
  try {
    await fleet.pairAll()
    const [a, b, c] = ['a', 'b', 'c'].map(n => fleet.host(n)) as [FleetHost, FleetHost, FleetHost]
    const room = (await a.json<RoomInfo>(['room', 'create', 'bench', '--member', `${a.peerId}:alice`, '--member', `${b.peerId}:bob`, '--member', `${c.peerId}:carol`])).id
    const mesh = await meshed(fleet, [a, b, c], room)
    const alice = await agentClient(a, 'alice')
    listeners.push(new Listener('bob', await agentClient(b, 'bob'), room), new Listener('carol', await agentClient(c, 'carol'), room))
    say(`room ${room} ready on 3 daemons (${mesh})`)

    let next = 0
    const sendOne = async (): Promise<{ n: number, at: number }> => {
      const n = next++
      const at = performance.now()
      await alice.send(room, payload(n))
      return { n, at }
    }
    for (let i = 0; i < WARMUP; i++) await sendOne()
    await Promise.all(listeners.map(async l => l.got(next - 1)))

    const latencies: number[] = []
    for (let i = 0; i < latencyCount; i++) {
      const { n, at } = await sendOne()
      await Promise.all(listeners.map(async l => l.got(n)))
      for (const l of listeners) latencies.push(l.arrivals.get(n)! - at)
      await new Promise(resolve => setTimeout(resolve, GAP_MS))
    }
    say(`${latencies.length} latency samples`)

    const first = next
    const last = first + burst - 1
    const start = performance.now()
    await Promise.all(Array.from({ length: WINDOW }, async () => {
      while (next <= last) await sendOne()
    }))
    const burstRead = (l: Listener): number => Array.from({ length: burst }, (_, i) => first + i).filter(n => l.arrivals.has(n)).length
    await fleet.waitFor('every burst message at both listeners', async () => listeners.every(l => burstRead(l) === burst), 120_000)
      .catch((err: Error) => { throw new Error(`${err.message}; read ${listeners.map(l => `${l.agent} ${burstRead(l)}`).join(', ')} of ${burst}`, { cause: err }) })
    const done = Math.max(...listeners.flatMap(l => Array.from({ length: burst }, (_, i) => l.arrivals.get(first + i)!)))
    return {
      bench: 'rooms',
      transport: 'fleetmesh daemons, local API (agent tokens, SSE)',
      latency_p50_ms: round(percentile(latencies, 50)),
      latency_p99_ms: round(percentile(latencies, 99)),
      msgs_per_s: Math.round(burst / ((done - start) / 1000)),
      message_bytes: SIZE,
      hosts: 3
    }
  } finally {
    for (const l of listeners) await l.close().catch(() => {})
    await fleet.close()
  }
}
