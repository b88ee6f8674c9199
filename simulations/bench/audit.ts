// `npm run bench -- audit [--entries N] [--verify-threads N] [--quick]`: the audit chain's
// throughput, in one run (`--quick`: 5,000 entries unless --entries says otherwise):
//   entries           entries appended, verified and caught up on
//   verify_threads    worker threads that catch-up and raw verification check signatures on,
//                     beside the calling thread's share; 0: the calling thread alone
//   append_per_s      signed appends into level (group-committed, 512 in flight)
//   verify_per_s      verifyAll over the same store (decode, links, hashes, signatures) on the
//                     store's default worker threads, as a host runs it
//   catchup_per_s     a second node process, started empty, pulls and verifies every entry over
//                     loopback libp2p while this process serves them; timed by the child from
//                     its first request to its last stored entry
//   raw_verify_per_s  signature checks alone on every entry of this log: the store's
//                     SignatureChecker on verify_threads workers, batches the size sync delivers,
//                     all in flight, in this process with nothing else running
//   catchup_vs_raw    catchup_per_s / raw_verify_per_s: how close catch-up comes to the bound its
//                     signature checks set
// Both sides of catchup_vs_raw check signatures with the same code on the same number of threads,
// so the ratio prices what catch-up adds to the checks (transport, decoding, hashing, writes),
// not a difference in cores. That number is by default the store's own, less one core for the
// process serving the catch-up, which raw verification does not have beside it: on 2 cores the
// store's one worker would share a core with the server, and the ratio would count the server
// (measured: catch-up ran as fast with 0 workers as with 1, raw 1.4 times faster with 1), so
// there both sides verify on one thread.
// This file is also the child process: run with `--child` it joins, catches up and reports.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshLibp2p } from '../../node/libp2p.js'
import { AuditStore } from '../../protocols/audit/store.js'
import { auditSublevel } from '../../protocols/audit/layout.js'
import { AuditSync } from '../../protocols/audit/sync.js'
import { defaultVerifyThreads, SignatureChecker } from '../../protocols/audit/signatures.js'
import { MAX_BATCH_ENTRIES } from '../../protocols/audit/wire.js'
import type { StoredEntry } from '../../protocols/audit/types.js'

const SELF = fileURLToPath(import.meta.url)
const IN_FLIGHT = 512

function arg (args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name)
  return i === -1 ? fallback : Number(args[i + 1])
}

async function openStore (dir: string, withKey: boolean, verifyThreads?: number): Promise<{ db: Level<string, Uint8Array>, store: AuditStore }> {
  const db = new Level<string, Uint8Array>(dir)
  await db.open()
  const store = await AuditStore.open({ db: auditSublevel(db), privateKey: withKey ? await generateKeyPair('Ed25519') : undefined, verifyThreads })
  return { db, store }
}

/** A catch-up that has not finished by then is reported as failed, never waited on forever. */
const CATCHUP_DEADLINE_MS = 20 * 60_000

// A body of the size a status or health entry has in practice (~200 bytes of fields).
function body (i: number): unknown {
  return { n: i, unit: 'fleetmesh.service', state: 'active', generation: `/nix/store/${'x'.repeat(32)}-nixos-system-${i}`, checks: [{ name: 'http', ok: true, ms: i % 1000 }] }
}

async function child (addr: string, n: number, dir: string, verifyThreads: number): Promise<void> {
  const { db, store } = await openStore(dir, false, verifyThreads)
  const libp2p = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const sync = new AuditSync({ libp2p, store })
  let last = 0
  const done = new Promise<void>(resolve => {
    store.on('entry', (e) => {
      if (e.entry.seq === n - 1) {
        last = performance.now()
        resolve()
      }
    })
  })
  await sync.start()
  // the first request (the head exchange) goes out as soon as identify completes on this dial
  const first = performance.now()
  const server = multiaddr(addr)
  await libp2p.dial(server)
  // On a loaded machine the connection monitor may abort the link mid-catch-up; a host redials
  // (node/redial.ts) and its sync resumes from the entries it holds, so the bench does the same
  // rather than wait forever, and gives up with what it holds after CATCHUP_DEADLINE_MS.
  const redial = (): void => { if (last === 0) libp2p.dial(server).catch(() => { setTimeout(redial, 1000) }) }
  libp2p.addEventListener('peer:disconnect', redial)
  const deadline = setTimeout(() => {
    process.stderr.write(`audit bench child: caught up on ${(store.heads()[0]?.seq ?? -1) + 1} of ${n} entries in ${CATCHUP_DEADLINE_MS} ms; giving up\n`)
    process.exit(3)
  }, CATCHUP_DEADLINE_MS)
  await done
  clearTimeout(deadline)
  libp2p.removeEventListener('peer:disconnect', redial)
  process.stdout.write(JSON.stringify({ ms: last - first, n: (store.heads()[0]?.seq ?? -1) + 1 }) + '\n')
  await sync.stop()
  await libp2p.stop()
  await store.close()
  await db.close()
}

async function catchUp (addr: string, n: number, verifyThreads: number): Promise<{ ms: number, n: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-bench-audit-child-'))
  try {
    const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--child', addr, String(n), dir, String(verifyThreads)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const code = await new Promise<number | null>(resolve => proc.once('exit', resolve))
    if (code !== 0) throw new Error(`catch-up child exited with ${code}`)
    return JSON.parse(out.trim().split('\n').pop() as string)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function rawVerifyRate (samples: StoredEntry[], verifyThreads: number): Promise<number> {
  const checker = new SignatureChecker(verifyThreads)
  try {
    const batches = Array.from({ length: Math.ceil(samples.length / MAX_BATCH_ENTRIES) }, (_, i) => samples.slice(i * MAX_BATCH_ENTRIES, (i + 1) * MAX_BATCH_ENTRIES))
    // the pool's workers start on the first batch: not part of the figure, as a catching-up
    // store has them running after its first batch too
    await checker.verify(batches[0])
    const start = performance.now()
    const verdicts = (await Promise.all(batches.map(async b => await checker.verify(b)))).flat()
    const ms = performance.now() - start
    if (!verdicts.every(ok => ok)) throw new Error('raw verify rejected a valid signature')
    return samples.length / ms * 1000
  } finally {
    await checker.close()
  }
}

export async function run (args: string[]): Promise<Record<string, number | string>> {
  const n = arg(args, '--entries', args.includes('--quick') ? 5_000 : 100_000)
  const verifyThreads = arg(args, '--verify-threads', Math.max(0, Math.min(defaultVerifyThreads(), availableParallelism() - 2)))
  const dir = mkdtempSync(join(tmpdir(), 'fleetmesh-bench-audit-'))
  const { db, store } = await openStore(dir, true)
  try {
    let t = performance.now()
    for (let i = 0; i < n; i += IN_FLIGHT) {
      await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, n - i) }, async (_, j) => store.append('status', body(i + j))))
      if (i % 20_000 === 0) process.stderr.write(`audit bench: appended ${i}/${n}\n`)
    }
    const appendPerS = n / (performance.now() - t) * 1000

    t = performance.now()
    const v = await store.verifyAll()
    const verifyPerS = n / (performance.now() - t) * 1000
    if (!v.ok || v.entries !== n) throw new Error(`verifyAll failed: ${JSON.stringify(v)}`)
    process.stderr.write(`audit bench: verified ${n}\n`)

    const rawPerS = await rawVerifyRate(await store.range(store.feed as string, 0, n - 1), verifyThreads)

    const libp2p = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const sync = new AuditSync({ libp2p, store })
    await sync.start()
    let caught
    try {
      caught = await catchUp(libp2p.getMultiaddrs()[0].toString(), n, verifyThreads)
    } finally {
      await sync.stop()
      await libp2p.stop()
    }
    if (caught.n !== n) throw new Error(`child caught up on ${caught.n} of ${n}`)
    const catchupPerS = n / caught.ms * 1000
    return {
      bench: 'audit',
      entries: n,
      verify_threads: verifyThreads,
      append_per_s: Math.round(appendPerS),
      verify_per_s: Math.round(verifyPerS),
      catchup_per_s: Math.round(catchupPerS),
      raw_verify_per_s: Math.round(rawPerS),
      catchup_vs_raw: Number((catchupPerS / rawPerS).toFixed(3))
    }
  } finally {
    await store.close()
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] === SELF && process.argv[2] === '--child') {
  await child(process.argv[3], Number(process.argv[4]), process.argv[5], Number(process.argv[6]))
  process.exit(0)
}
