// What the scenario reads of the honest hosts, through their own CLI and /metrics only: the log
// they hold, the rooms they fold, the messages their agents read, and their heap.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FleetHost } from '../harness/fleet.js'
import type { EntryRow } from '../../node/routes.js'
import type { RoomInfo, RoomMessageOut, RoomStats } from '../../protocols/rooms/index.js'

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** One attack and whether every honest host withstood it. */
export interface Outcome { attack: string, blocked: boolean }

export async function entries (host: FleetHost, feed?: string): Promise<EntryRow[]> {
  const r = await host.cli(['audit', 'log', ...(feed !== undefined ? ['--feed', feed] : []), '--json'])
  if (r.code !== 0) throw new Error(`${host.name}: audit log: ${r.stderr}`)
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as EntryRow)
}

export async function rooms (host: FleetHost): Promise<RoomInfo[]> {
  return await host.json<RoomInfo[]>(['room', 'list'])
}

export async function room (host: FleetHost, id: string): Promise<RoomInfo | undefined> {
  return (await rooms(host)).find((r) => r.id === id)
}

export async function texts (host: FleetHost, id: string): Promise<string[]> {
  const r = await host.cli(['room', 'tail', id, '--json'])
  if (r.code !== 0) throw new Error(`${host.name}: room tail: ${r.stderr}`)
  return r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as RoomMessageOut).text)
}

export async function stats (host: FleetHost, id: string): Promise<RoomStats> {
  return await host.json<RoomStats>(['room', 'stats', id])
}

export async function send (host: FleetHost, id: string, agent: string, text: string): Promise<void> {
  await host.json(['room', 'send', id, text, '--agent', agent])
}

/**
 * The honest hosts' common state: every entry they hold, and every room as they fold it. Equal
 * digests are what "the honest hosts still agree" means.
 */
export async function digest (host: FleetHost): Promise<string> {
  const log = (await entries(host)).map((e) => `${e.feed}:${e.seq}:${e.hash}`).sort()
  const views = (await rooms(host)).map((r) => JSON.stringify([r.id, r.creator, r.epoch, r.members.map((m) => `${m.host}/${m.agent}`).sort()])).sort()
  return createHash('sha256').update([...log, ...views].join('\n')).digest('hex')
}

/** The daemon's heap as its own /metrics reports it, in MiB. */
async function heapMiB (host: FleetHost): Promise<number> {
  const { url } = JSON.parse(await readFile(join(host.dataDir, 'api.json'), 'utf8')) as { url: string }
  const token = (await readFile(join(host.dataDir, 'api-token'), 'utf8')).trim()
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text()
  const m = /^nodejs_heap_size_used_bytes\s+(\d+(?:\.\d+)?)/m.exec(text)
  if (m === null) throw new Error(`${host.name}: no heap gauge in /metrics`)
  return Number(m[1]) / 2 ** 20
}

/** Samples every honest host's heap until stopped: the largest growth over its first sample. */
export class HeapWatch {
  maxGrowthMiB = 0
  private running = true
  private readonly loop: Promise<void>

  constructor (hosts: FleetHost[]) {
    const baseline = new Map<string, number>()
    this.loop = (async () => {
      while (this.running) {
        for (const h of hosts) {
          const mib = await heapMiB(h).catch(() => undefined)
          if (mib === undefined) continue
          if (!baseline.has(h.name)) baseline.set(h.name, mib)
          this.maxGrowthMiB = Math.max(this.maxGrowthMiB, mib - baseline.get(h.name)!)
        }
        await sleep(200)
      }
    })()
  }

  async stop (): Promise<number> {
    this.running = false
    await this.loop
    return this.maxGrowthMiB
  }
}

/** Polls `check` until it holds or `ms` pass; whether it held. */
export async function eventually (check: () => Promise<boolean>, ms = 30_000): Promise<boolean> {
  const until = Date.now() + ms
  for (;;) {
    if (await check().catch(() => false)) return true
    if (Date.now() > until) return false
    await sleep(300)
  }
}
