#!/usr/bin/env node
// The installed `fleetmesh` command: the CLI compiled into dist/ by `npm run build` (which
// `npm ci` runs as its prepare script), so no TypeScript loader runs on a host. On Node >= 22
// it runs in this process: the daemon is then the process a supervisor started and signals.
// It may be launched by an older system Node, so below 22 it re-execs onto the pinned node@24.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Whether this process is in its terminal's foreground group (/proc/self/stat: pgrp, then tpgid). */
function inForeground () {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(f[2]) > 0 && f[2] === f[5]
  } catch {
    return false
  }
}

const cli = new URL('../../dist/node/cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write(`fleetmesh: ${fileURLToPath(cli)} is missing; build it with "npm run build" (npm ci does)\n`)
  process.exit(1)
}
// The daemon idles most of its life: V8's default young generation (16 MiB semi-spaces) costs it
// about 25 MiB of RSS for nothing, so `start` runs with 2 MiB ones (docs/architecture.md, footprint).
const DAEMON_FLAGS = ['--max-semi-space-size=2']
const daemon = process.argv.slice(2).includes('start')
const hasFlags = DAEMON_FLAGS.every((f) => process.execArgv.includes(f))
if (Number(process.versions.node.split('.')[0]) >= 22) {
  // execve keeps the pid: the process a supervisor started is still the one it signals.
  if (daemon && !hasFlags && typeof process.execve === 'function') {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...DAEMON_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env)
  }
  await import(cli.href)
} else {
  let nodeBin
  try {
    nodeBin = join(dirname(createRequire(import.meta.url).resolve('node/package.json')), 'bin', 'node')
  } catch {
    process.stderr.write(`fleetmesh: needs Node >= 22 (this is ${process.version}); run "npm ci" to get the pinned Node 24\n`)
    process.exit(1)
  }
  const child = spawn(nodeBin, [...(daemon ? DAEMON_FLAGS : []), fileURLToPath(cli), ...process.argv.slice(2)], { stdio: 'inherit' })
  // A terminal's Ctrl-C goes to its whole foreground process group, the child included:
  // forwarding it too would stop the daemon twice. Signals sent to this pid alone are forwarded.
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { if (!(sig === 'SIGINT' && inForeground())) child.kill(sig) })
  child.on('exit', (code, signal) => process.exit(code ?? (signal != null ? 1 : 0)))
}
