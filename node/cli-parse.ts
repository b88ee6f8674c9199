// Parsers of the CLI's flag values, shared by every command group. Each refuses what it cannot
// read with a usage error (exit 2) that says which flag, what was given and how to write it.
import { CommanderError } from 'commander'
import { TAG_RE } from '../crypto/ids.js'
import { durationMs } from './duration.js'
import { fileErrorLine } from './errors.js'

export function usage (message: string): never {
  throw new CommanderError(2, 'fleetmesh.usage', message)
}

/** A duration in milliseconds: 500ms, 90s, 30m, 2h, 7d (plain digits are milliseconds). */
export function parseDuration (flag: string, text: string): number {
  const ms = durationMs(text, 'ms')
  if (ms !== undefined) return ms
  usage(/^\s*\d+(ms|s|m|h|d)?\s*$/.test(text) ? `${flag}: "${text}" is too long a duration` : `${flag}: "${text}" is not a duration; write a number with a unit: 500ms, 90s, 30m, 2h or 7d`)
}

/** A whole number no smaller than `min`. */
export function parseCount (flag: string, text: string, min = 0): number {
  const t = text.trim()
  const n = Number(t)
  if (!/^-?\d+$/.test(t) || !Number.isSafeInteger(n)) usage(`${flag}: "${text}" is not a whole number; write e.g. ${flag} ${Math.max(min, 1)}`)
  if (n < min) usage(`${flag}: must be at least ${min}, not ${n}`)
  return n
}

export type PercentOrCount = { percent: number } | { count: number }

/** `25%` (1-100) or a host count (`3`, at least 0). */
export function parsePercentOrCount (flag: string, text: string): PercentOrCount {
  const t = text.trim()
  const p = /^(\d+)%$/.exec(t)
  if (p !== null) {
    const percent = Number(p[1])
    if (percent > 100) usage(`${flag}: "${text}" is more than 100%`)
    return { percent }
  }
  if (/^\d+$/.test(t)) return { count: parseCount(flag, t, 0) }
  usage(`${flag}: "${text}" is neither a count nor a percentage; write e.g. 3 or 25%`)
}

/** One of `choices`, named in the error when it is not. */
export function parseChoice<T extends string> (flag: string, text: string, choices: readonly T[], what: string): T {
  if ((choices as readonly string[]).includes(text)) return text as T
  usage(`${flag}: "${text}" is not ${what}; write ${choices.slice(0, -1).join(', ')}${choices.length > 1 ? ' or ' : ''}${choices[choices.length - 1]}`)
}

/** `--since`: an ISO time, epoch milliseconds, or a duration back from now (90s, 2h, 7d). */
export function parseSince (flag: string, text: string, now = Date.now()): number {
  if (/^\d+(ms|s|m|h|d)$/.test(text)) return now - parseDuration(flag, text)
  if (/^\d+$/.test(text)) return Number(text)
  const t = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(t)) usage(`${flag}: cannot read "${text}" as a time; write a duration back from now (2h, 7d), an ISO time (2026-01-31T12:00:00Z) or epoch milliseconds`)
  return t
}

/**
 * Listen or peer addresses given on the command line. `withPeer`: a bootstrap address must end
 * in the peer's id, which the mesh's Noise handshake checks. Loads the multiaddr codec only here,
 * so commands that take no address do not pay for it.
 */
export async function parseMultiaddrs (flag: string, texts: string[] | undefined, withPeer = false): Promise<string[] | undefined> {
  if (texts === undefined) return undefined
  const { multiaddr } = await import('@multiformats/multiaddr')
  for (const text of texts) {
    let ok = false
    try {
      ok = multiaddr(text).toString() !== '/'
    } catch {}
    if (!ok) usage(`${flag}: "${text}" is not a multiaddr; write e.g. ${withPeer ? '/ip4/10.0.0.1/tcp/4001/p2p/PEER_ID' : '/ip4/0.0.0.0/tcp/4001'}`)
    if (withPeer && !/\/p2p\/[^/]+$/.test(text)) usage(`${flag}: "${text}" names no peer; end it with /p2p/PEER_ID (a member's "listening:" address from "fleetmesh status")`)
  }
  return texts
}

/** For repeatable flags. */
export function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

export function parseTag (text: string): string {
  if (!TAG_RE.test(text)) usage(`--tag: "${text}" is not a tag; write 1-64 lower-case letters, digits, ".", "_", ":" or "-" (e.g. web, eu-west:db)`)
  return text
}

/** A file a flag names must be there before anything starts (the daemon would stop on it half-way). */
export async function readableFile (flag: string, path: string): Promise<void> {
  const { access, constants } = await import('node:fs/promises')
  await access(path, constants.R_OK).catch((err: unknown) => usage(`${flag}: ${fileErrorLine(err) ?? (err as Error).message}`))
}
