// Signature checks of many entries at once, for the store's ingest and the whole-log verifiers.
// Worker threads start on the first large batch: a store that only appends never pays for them.
import { availableParallelism } from 'node:os'
import { Ed25519VerifyPool, verifyEd25519 } from '../../crypto/sign.js'
import { detachSignature } from './codec.js'
import { feedPublicKey } from './verify.js'
import type { Entry } from './types.js'

/** Batches at least this large go to the worker threads. */
const POOL_MIN_BATCH = 64
// The caller's thread also decodes, hashes and writes each entry (measured: ~0.8 of a signature
// check), so it takes a quarter of a worker's share of the signatures and the workers the rest.
const CALLER_VERIFY_SHARE = 0.25

/** Worker threads a store checks signatures on unless told otherwise: cores - 1, at most 2. */
export function defaultVerifyThreads (): number {
  return Math.min(2, Math.max(0, availableParallelism() - 1))
}

export class SignatureChecker {
  private readonly threads: number
  private pool: Ed25519VerifyPool | undefined

  /** `threads`: worker threads to use for large batches; 0 checks everything on this thread. */
  constructor (threads: number) {
    this.threads = threads
  }

  /** One verdict per entry, in order; the feed key of each must already be known to parse. */
  async verify (items: Array<{ entry: Entry, bytes: Uint8Array }>): Promise<boolean[]> {
    const checks = items.map(({ entry, bytes }) => ({ publicKey: feedPublicKey(entry.feed), message: detachSignature(bytes, entry), signature: entry.sig }))
    if (this.pool === undefined && this.threads > 0 && checks.length >= POOL_MIN_BATCH) this.pool = new Ed25519VerifyPool(this.threads, CALLER_VERIFY_SHARE)
    if (this.pool === undefined) return checks.map(c => verifyEd25519(c.publicKey, c.message, c.signature))
    return this.pool.verifyBatch(checks)
  }

  async close (): Promise<void> {
    await this.pool?.close()
  }
}
