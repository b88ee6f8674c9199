#!/usr/bin/env node
// The installed `fleetmesh` command. It may be launched by an older system Node, so it re-execs
// the CLI on Node >= 22 (the project's pinned node@24 when present) with the TypeScript loader.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const major = Number(process.versions.node.split('.')[0])
let nodeBin = process.execPath
if (major < 22) {
  try {
    nodeBin = join(dirname(require.resolve('node/package.json')), 'bin', 'node')
  } catch {
    process.stderr.write(`fleetmesh: needs Node >= 22 (this is ${process.version}); run "npm ci" to get the pinned Node 24\n`)
    process.exit(1)
  }
}
// The loader is resolved from this file, not from the caller's working directory.
const child = spawn(nodeBin, ['--import', import.meta.resolve('tsx'), join(here, '..', 'cli.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
child.on('exit', (code, signal) => process.exit(code ?? (signal != null ? 1 : 0)))
