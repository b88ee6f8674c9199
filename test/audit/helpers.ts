// Shared fixtures of the audit tests: real level stores in temp dirs and real libp2p nodes.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { AuditStore, type AuditStoreOptions } from '../../protocols/audit/store.js'
import { auditSublevel } from '../../protocols/audit/layout.js'
import { AuditSync, type AuditSyncOptions } from '../../protocols/audit/sync.js'
import { attachSignature, entryHash, signingBytes, ZERO_HASH } from '../../protocols/audit/codec.js'
import { createSigner } from '../../crypto/sign.js'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Entry } from '../../protocols/audit/types.js'

export interface TestStore {
  dir: string
  db: Level<string, Uint8Array>
  store: AuditStore
  key: Ed25519PrivateKey
  close: () => Promise<void>
}

export function tempDir (): string {
  return mkdtempSync(join(tmpdir(), 'fleetmesh-audit-'))
}

export async function openStore (opts: Partial<AuditStoreOptions> & { dir?: string, key?: Ed25519PrivateKey } = {}): Promise<TestStore> {
  const dir = opts.dir ?? tempDir()
  const key = opts.key ?? await generateKeyPair('Ed25519')
  const db = new Level<string, Uint8Array>(dir)
  await db.open()
  let store: AuditStore
  try {
    store = await AuditStore.open({ ...opts, db: auditSublevel(db), privateKey: key })
  } catch (err) {
    await db.close()
    throw err
  }
  return {
    dir,
    db,
    store,
    key,
    close: async () => {
      await store.close()
      await db.close()
    }
  }
}

export interface TestNode extends TestStore {
  libp2p: MeshLibp2p
  sync: AuditSync
  stop: (removeDir?: boolean) => Promise<void>
}

export async function startNode (opts: Partial<AuditStoreOptions> & { dir?: string, key?: Ed25519PrivateKey, syncOpts?: Partial<AuditSyncOptions> } = {}): Promise<TestNode> {
  const s = await openStore(opts)
  const libp2p = await createMeshLibp2p({ privateKey: s.key, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const sync = new AuditSync({ libp2p, store: s.store, announceDelayMs: 20, ...opts.syncOpts })
  await sync.start()
  return {
    ...s,
    libp2p,
    sync,
    stop: async (removeDir = true) => {
      await sync.stop()
      await libp2p.stop()
      await s.close()
      if (removeDir) rmSync(s.dir, { recursive: true, force: true })
    }
  }
}

export async function connect (a: MeshLibp2p, b: MeshLibp2p): Promise<void> {
  await a.dial(b.getMultiaddrs()[0])
}

/** Polls `cond` until true; fails after `timeoutMs` (generous: tests assert behaviour, not time). */
export async function until (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** Signs an arbitrary entry with a feed's key: how tests craft forks, gaps and bad links. */
export function craft (key: Ed25519PrivateKey, fields: { seq: number, prev: Uint8Array, kind?: string, body?: unknown, ts?: number }): { entry: Entry, bytes: Uint8Array } {
  const unsigned = { feed: peerIdFromPrivateKey(key).toString(), seq: fields.seq, prev: fields.prev, ts: fields.ts ?? 1767225600000 + fields.seq, kind: fields.kind ?? 'status', body: fields.body ?? { n: fields.seq } }
  const signed = signingBytes(unsigned)
  const sig = createSigner(key).sign(signed)
  return { entry: { ...unsigned, sig }, bytes: attachSignature(signed, unsigned, sig) }
}

/** A chain of `n` valid entries of one feed starting at seq 0. */
export function craftChain (key: Ed25519PrivateKey, n: number, kind = 'status'): Array<{ entry: Entry, bytes: Uint8Array }> {
  const out: Array<{ entry: Entry, bytes: Uint8Array }> = []
  let prev = ZERO_HASH
  for (let seq = 0; seq < n; seq++) {
    const e = craft(key, { seq, prev, kind })
    out.push(e)
    prev = entryHash(e.bytes)
  }
  return out
}
