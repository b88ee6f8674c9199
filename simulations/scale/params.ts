// The gossipsub overlay parameters the simulator models, read from the installed
// @libp2p/gossipsub's own constants module (the package does not export it), so the simulation
// follows the real defaults when the dependency changes instead of a copy that drifts.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface GossipParams {
  D: number
  Dlo: number
  Dhi: number
  Dlazy: number
  gossipFactor: number
  historyGossip: number
  historyLength: number
  heartbeatMs: number
}

const NAMES: Record<keyof GossipParams, string> = {
  D: 'GossipsubD',
  Dlo: 'GossipsubDlo',
  Dhi: 'GossipsubDhi',
  Dlazy: 'GossipsubDlazy',
  gossipFactor: 'GossipsubGossipFactor',
  historyGossip: 'GossipsubHistoryGossip',
  historyLength: 'GossipsubHistoryLength',
  heartbeatMs: 'GossipsubHeartbeatInterval'
}

// the module writes values as literals or as multiples of its `second`/`minute` constants
function value (expr: string): number {
  const units: Record<string, number> = { second: 1000, minute: 60_000 }
  const m = /^\s*([\d.]+)?\s*\*?\s*(second|minute)?\s*$/.exec(expr)
  if (m === null || (m[1] === undefined && m[2] === undefined)) throw new Error(`unreadable gossipsub constant: ${expr}`)
  return (m[1] === undefined ? 1 : Number(m[1])) * (m[2] === undefined ? 1 : units[m[2]])
}

export function gossipsubDefaults (): GossipParams {
  const entry = fileURLToPath(import.meta.resolve('@libp2p/gossipsub'))
  const text = readFileSync(join(dirname(entry), 'constants.js'), 'utf8')
  const out: Partial<GossipParams> = {}
  for (const [key, name] of Object.entries(NAMES) as Array<[keyof GossipParams, string]>) {
    const m = new RegExp(`export const ${name} = ([^;]+);`).exec(text)
    if (m === null) throw new Error(`${name} not found in @libp2p/gossipsub constants`)
    out[key] = value(m[1])
  }
  return out as GossipParams
}
