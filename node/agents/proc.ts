// Resident memory of a process group, from /proc: the sum over every process whose group is
// the agent's, so a leak in a child the agent started counts too. One scan of /proc serves
// every agent asking within SCAN_TTL_MS.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

const SCAN_TTL_MS = 50

let pageSize: number | undefined
function page (): number {
  if (pageSize === undefined) {
    try {
      pageSize = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim())
    } catch {
      pageSize = NaN
    }
    if (!Number.isSafeInteger(pageSize) || pageSize <= 0) pageSize = 4096
  }
  return pageSize
}

let scanned: { at: number, byGroup: Map<number, number> } | undefined

/** /proc/PID/stat: the command is in parentheses and may hold anything, so fields count from its last ")". */
function groupAndRss (stat: string): [number, number] | undefined {
  const end = stat.lastIndexOf(')')
  if (end < 0) return undefined
  const f = stat.slice(end + 2).split(' ')
  // after the command: state(3) ppid(4) pgrp(5) … rss(24), so pgrp is f[2] and rss f[21]
  const pgrp = Number(f[2])
  const rss = Number(f[21])
  return Number.isSafeInteger(pgrp) && Number.isSafeInteger(rss) ? [pgrp, rss] : undefined
}

function scan (): Map<number, number> {
  const now = performance.now()
  if (scanned !== undefined && now - scanned.at < SCAN_TTL_MS) return scanned.byGroup
  const byGroup = new Map<number, number>()
  const size = page()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue
    }
    const r = groupAndRss(stat)
    if (r !== undefined) byGroup.set(r[0], (byGroup.get(r[0]) ?? 0) + r[1] * size)
  }
  scanned = { at: now, byGroup }
  return byGroup
}

/** /proc/PID/stat's starttime (clock ticks after boot): with the pid, it names one process for good. */
export function startTime (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Bytes resident in process group `pgid`, or undefined when no process is left in it. */
export function groupRss (pgid: number): number | undefined {
  return scan().get(pgid)
}
