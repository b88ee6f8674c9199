// Rooms through real daemons: three `fleetmesh start` processes paired by invite codes, one
// room, 1 KiB messages. Agents are the bench process itself, speaking to each host's local API
// with agent tokens, as agent processes do: alice sends with POST on host a, bob and carol
// listen on hosts b and c with the server-sent-event stream. Latency is agent to agent: from
// just before alice's POST to the moment a listener reads the message off its stream, on this
// process's one clock; measured one message at a time (a small gap, no queueing). Throughput:
// a burst sent with WINDOW requests in flight, until both listeners hold all of it.
// Args: [latency messages = 300] [burst messages = 1000].
import { performance } from 'node:perf_hooks'
import { Fleet, type FleetHost } from '../../simulations/harness/fleet.js'
import { ControlClient } from '../../node/client.js'
import { RoomClient } from '../../node/room-client.js'
import type { RoomInfo, RoomStats } from '../../protocols/rooms/index.js'

const SIZE = 1024
const GAP_MS = 5
const WINDOW = 8
const WARMUP = 20

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

  constructor (client: RoomClient, room: string) {
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
    await new Promise<void>((resolve) => { this.waiters.push({ n, resolve }) })
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

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const latencyCount = Number(args[0] ?? 300)
  const burst = Number(args[1] ?? 1000)
  const fleet = await Fleet.create({ hosts: [{ name: 'a', role: 'admin' }, { name: 'b' }, { name: 'c' }], onProgress: say })
  const listeners: Listener[] = []
  try {
    await fleet.pairAll()
    const [a, b, c] = ['a', 'b', 'c'].map(n => fleet.host(n)) as [FleetHost, FleetHost, FleetHost]
    const room = (await a.json<RoomInfo>(['room', 'create', 'bench', '--member', `${a.peerId}:alice`, '--member', `${b.peerId}:bob`, '--member', `${c.peerId}:carol`])).id
    await fleet.waitFor('the room\'s gossip mesh', async () => {
      for (const h of [a, b, c]) {
        const api = await ControlClient.forDataDir(h.dataDir)
        if (!(await api.get<RoomInfo[]>('/v1/rooms')).some(r => r.id === room)) return false
        const peers = (await api.get<RoomStats>(`/v1/rooms/${room}/stats`)).peers
        if (![a, b, c].every(o => o === h || peers.includes(o.peerId))) return false
      }
      return true
    })
    const alice = await agentClient(a, 'alice')
    listeners.push(new Listener(await agentClient(b, 'bob'), room), new Listener(await agentClient(c, 'carol'), room))
    say(`room ${room} ready on 3 daemons`)

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
    await fleet.waitFor('every burst message at both listeners', async () => listeners.every(l => l.arrivals.size >= last + 1), 120_000)
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
