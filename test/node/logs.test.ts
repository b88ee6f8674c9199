// The daemon's log format: coloured pino-pretty lines on a terminal, JSON lines otherwise,
// FLEETMESH_LOG_FORMAT to choose. Real `fleetmesh start` processes; `script` gives a terminal.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { cliArgv, HostProcess, runCli, tempDir } from '../../simulations/harness/processes.js'

/** `fleetmesh start` on a pseudo-terminal; stopped with Ctrl-C once it has started. Returns what the terminal showed. */
async function onTerminal (dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = spawn('script', ['-qec', `exec ${process.execPath} ${cliArgv().join(' ')} --data-dir ${dataDir} start`, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] })
  const closed = new Promise<number | null>((resolve) => { child.on('close', resolve) })
  let output = ''
  let pressed = false
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    output += d
    if (!pressed && output.includes('control api:') && output.includes('node started')) {
      pressed = true
      child.stdin.write('\x03')
    }
  })
  assert.equal(await closed, 0, output)
  child.stdin.destroy()
  return output
}

async function host (): Promise<string> {
  const dir = join(await tempDir(), 'a')
  assert.equal((await runCli(['--data-dir', dir, 'init'])).code, 0)
  return dir
}

// Colour escapes: ESC [ … m.
const ANSI = /\x1b\[[0-9;]*m/

test('on a terminal the daemon logs coloured lines for people', { timeout: 120_000 }, async () => {
  const output = await onTerminal(await host())
  const line = output.split('\n').find((l) => l.includes('node started'))
  assert.ok(line !== undefined, output)
  assert.match(line, ANSI)
  assert.match(line.replace(new RegExp(ANSI.source, 'g'), ''), /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: node started/)
  assert.doesNotMatch(output, /"level":30/)
})

test('FLEETMESH_LOG_FORMAT=json keeps JSON lines on a terminal', { timeout: 120_000 }, async () => {
  const output = await onTerminal(await host(), { FLEETMESH_LOG_FORMAT: 'json' })
  const line = output.split('\n').find((l) => l.includes('node started'))
  assert.equal((JSON.parse(line!) as { msg: string, level: number }).level, 30)
})

test('off a terminal the daemon logs JSON lines, or pretty ones without colour when asked', { timeout: 120_000 }, async () => {
  const dir = await host()
  const json = await HostProcess.start(dir)
  await json.stop()
  const started = json.stderr.split('\n').find((l) => l.includes('node started'))
  assert.equal((JSON.parse(started!) as { msg: string }).msg, 'node started')
  const pretty = await HostProcess.start(dir, [], { FLEETMESH_LOG_FORMAT: 'pretty' })
  await pretty.stop()
  assert.match(pretty.stderr, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: node started/m)
  assert.doesNotMatch(pretty.stderr, ANSI)
})

test('an unknown FLEETMESH_LOG_FORMAT is refused with what to write', { timeout: 120_000 }, async () => {
  const r = await runCli(['--data-dir', await host(), 'start'], { env: { FLEETMESH_LOG_FORMAT: 'xml' } })
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /FLEETMESH_LOG_FORMAT: must be json or pretty .*not xml/)
})
