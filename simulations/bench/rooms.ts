// Rooms: three host processes, one room, 1 KiB messages. Latency is from just before the sender
// encrypts to the moment a receiver's service emits the decrypted, verified, stored message,
// measured one message at a time (no queueing); throughput is a burst sent back to back, until
// both receivers hold all of it. Args: [latency messages = 300] [burst messages = 1000].
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const HOST = fileURLToPath(new URL('./rooms-host.ts', import.meta.url))
const SIZE = 1024

interface Reply { id?: number, t?: string, ok?: boolean, error?: string, [k: string]: unknown }

class Host {
  peer = ''
  xwing = ''
  private next = 0
  private readonly waiting = new Map<number, (r: Reply) => void>()
  readonly hello: Promise<void>

  constructor (readonly proc: ChildProcess) {
    proc.once('exit', (code) => {
      for (const resolve of this.waiting.values()) resolve({ ok: false, error: `bench host exited with ${code}` })
      this.waiting.clear()
    })
    let greeted: () => void
    this.hello = new Promise(resolve => { greeted = resolve })
    proc.on('message', (r: Reply) => {
      if (r.t === 'hello') {
        this.peer = r.peer as string
        this.xwing = r.xwing as string
        greeted()
        return
      }
      this.waiting.get(r.id!)?.(r)
      this.waiting.delete(r.id!)
    })
  }

  async call (t: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.next++
    const reply = await new Promise<Reply>((resolve) => {
      this.waiting.set(id, resolve)
      this.proc.send({ t, id, ...args })
    })
    if (reply.ok !== true) throw new Error(`${t}: ${reply.error}`)
    return reply
  }
}

function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

async function receivedAll (h: Host, n: number): Promise<Reply> {
  for (;;) {
    const s = await h.call('stats')
    if ((s.received as number) >= n) return s
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const round = (x: number): number => Math.round(x * 100) / 100

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const latencyCount = Number(args[0] ?? 300)
  const burst = Number(args[1] ?? 1000)
  const hosts = [0, 1, 2].map(() => new Host(fork(HOST, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })))
  try {
    await Promise.all(hosts.map(async h => h.hello))
    const [a, b, c] = hosts as [Host, Host, Host]
    const peers = hosts.map(h => h.peer)
    const started = await Promise.all(hosts.map(async h => h.call('start', { founder: a.peer })))
    const addr = (h: Host): string => started[hosts.indexOf(h)]!.addr as string
    await a.call('genesis', { admits: [b, c].map(h => ({ peer: h.peer, xwing: h.xwing })) })
    await b.call('dial', { addrs: [addr(a)] })
    await c.call('dial', { addrs: [addr(a), addr(b)] })
    await Promise.all(hosts.map(async h => h.call('members', { peers })))
    const room = (await a.call('create', { peers })).room as string
    await Promise.all(hosts.map(async h => h.call('ready', { room, peers })))
    process.stderr.write(`rooms bench: room ${room} ready on 3 hosts\n`)

    const WARMUP = 20
    await a.call('send', { room, count: WARMUP, size: SIZE, gapMs: 5 })
    for (const h of [b, c]) await receivedAll(h, WARMUP)
    await Promise.all([b, c].map(async h => h.call('reset')))
    await a.call('send', { room, count: latencyCount, size: SIZE, gapMs: 5 })
    const latencies: number[] = []
    for (const h of [b, c]) latencies.push(...((await receivedAll(h, latencyCount)).latencies as number[]))
    process.stderr.write(`rooms bench: ${latencies.length} latency samples\n`)

    await Promise.all([b, c].map(async h => h.call('reset')))
    const sent = await a.call('send', { room, count: burst, size: SIZE, gapMs: 0 })
    let done = 0
    for (const h of [b, c]) done = Math.max(done, (await receivedAll(h, burst)).lastReceivedAt as number)
    const seconds = (done - (sent.start as number)) / 1000
    return {
      bench: 'rooms',
      latency_p50_ms: round(percentile(latencies, 50)),
      latency_p99_ms: round(percentile(latencies, 99)),
      msgs_per_s: Math.round(burst / seconds),
      message_bytes: SIZE,
      hosts: 3
    }
  } finally {
    await Promise.allSettled(hosts.map(async h => h.call('exit')))
  }
}
