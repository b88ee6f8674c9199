// Detached activations: real processes in their own session whose pid, output and exit code
// land in files, so that whoever waits (the starter or a restarted daemon) learns one result.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { activateDetached, type DetachedActivation } from '../../nixos/activation.js'

describe('activateDetached', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'fleetmesh-activation-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  const activation = (id: string, script: string, timeoutMs = 60_000): DetachedActivation =>
    ({ dir: join(dir, 'acts'), id, argv: ['/bin/sh', '-c', script], env: { COUNT: join(dir, `${id}.count`) }, timeoutMs, what: id })

  it('runs once per id: a second waiter gets the same result without starting it again', async () => {
    const a = activation('once', 'echo x >> "$COUNT"; sleep 0.5; echo done')
    // The second waiter comes once the first has recorded its start, as a restarted daemon does.
    const started = async (): Promise<void> => { while (!existsSync(join(dir, 'acts', 'once.run'))) await sleep(5) }
    await Promise.all([activateDetached(a), started().then(async () => { await activateDetached(a) })])
    await activateDetached(a)
    assert.equal(await readFile(join(dir, 'once.count'), 'utf8'), 'x\n', await readFile(join(dir, 'acts', 'once.out'), 'utf8'))
  })

  it('a failing activation reports its exit code and output', async () => {
    await assert.rejects(activateDetached(activation('fails', 'echo broken unit >&2; exit 4')), (err: Error & { code?: string }) =>
      err.code === 'ACTIVATION_FAILED' && /exited 4/.test(err.message) && /broken unit/.test(err.message))
  })

  it('runs in a session of its own: killing its process group spares its caller', async () => {
    // Had it run in this test runner's group, the runner would die here.
    const a = activation('own-group', 'kill -9 "-$(cut -d" " -f5 /proc/$$/stat)"; echo alive > "$COUNT"')
    await assert.rejects(activateDetached(a), (err: Error & { code?: string }) => err.code === 'ACTIVATION_FAILED' && /without a result/.test(err.message))
    await assert.rejects(readFile(join(dir, 'own-group.count'), 'utf8'))
  })

  it('a timed-out activation is killed with its whole group', async () => {
    const a = activation('slow', 'sleep 30 & echo $! > "$COUNT"; wait', 500)
    await assert.rejects(activateDetached(a), (err: Error & { code?: string }) => err.code === 'ACTIVATION_FAILED' && /timed out/.test(err.message))
    const pid = Number((await readFile(join(dir, 'slow.count'), 'utf8')).trim())
    await sleep(200)
    // Gone, or a zombie nobody reaped yet (a container's init may not).
    const state = await readFile(`/proc/${pid}/status`, 'utf8').then((t) => /^State:\s*(\S)/m.exec(t)?.[1], () => 'gone')
    assert.ok(state === 'gone' || state === 'Z', `the background sleep went with the group: ${state}`)
  })

  it('an activation whose wrapper is gone without a result is lost, never started again', async () => {
    const a = activation('lost', 'echo x >> "$COUNT"')
    await writeFile(join(dir, 'acts', 'lost.run'), JSON.stringify({ startedAt: Date.now() }))
    await writeFile(join(dir, 'acts', 'lost.pid'), '999999')
    await assert.rejects(activateDetached(a), (err: Error & { code?: string }) => err.code === 'ACTIVATION_FAILED' && /without a result/.test(err.message))
    await assert.rejects(readFile(join(dir, 'lost.count'), 'utf8'))
  })
})
