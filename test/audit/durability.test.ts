// Issue 13, finding 7: a host must not fork its own feed after a power cut. A power cut loses
// what the kernel had not written to the disk, which no test can cut short; what it cannot
// lose is what was fsynced. So the real store runs in a child process under strace, and every
// acknowledged append of the host's own feed (the moment others may hear of the entry) must
// come after an fsync of the LevelDB write-ahead log that holds it. An acknowledged entry then
// survives the cut, and the host's next append continues after it instead of re-signing its
// seq with different content, which every member would flag as equivocation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers.js'


test('every acknowledged append of the host\'s own feed is fsynced to the write-ahead log before append() resolves', { timeout: 300_000 }, async () => {
  const dir = tempDir()
  const trace = join(dir, 'strace.txt')
  const db = join(dir, 'db')
  const script = fileURLToPath(new URL('./fixtures/append-ack.ts', import.meta.url))
  const count = 6
  try {
    // -y names each fd's file; -ttt orders the lines of all threads by time
    const child = spawn('strace', ['-f', '-ttt', '-y', '-e', 'trace=fsync,fdatasync,write', '-o', trace, process.execPath, '--import', 'tsx', script, db, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
    assert.equal(code, 0)
    assert.match(out, /DONE/)
    const lines = readFileSync(trace, 'utf8').split('\n')
      .map(l => /^\d+\s+(\d+\.\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map(m => ({ t: Number(m[1]), call: m[2] }))
      .sort((a, b) => a.t - b.t)
    const isWalSync = (call: string): boolean => /^f(data)?sync\(\d+<[^>]*\.log>/.test(call) && call.includes(db)
    const acks = lines.flatMap((l, i) => /^write\(1<.*"ACK (\d+)\\n"/.exec(l.call) !== null ? [i] : [])
    assert.equal(acks.length, count, `acknowledgements in the trace: ${acks.length}`)
    // Each append is its own batch: between one acknowledgement and the next, the WAL is fsynced.
    for (let k = 1; k < acks.length; k++) {
      const synced = lines.slice(acks[k - 1] + 1, acks[k]).some(l => isWalSync(l.call))
      assert.ok(synced, `append ${k} was acknowledged with no fsync of the write-ahead log since append ${k - 1}`)
    }
  } finally {
    if (process.env.KEEP === undefined) rmSync(dir, { recursive: true, force: true })
    else console.log(dir)
  }
})
