// Ed25519 signing and verification on node:crypto KeyObjects. Audit entries are signed and
// checked by the ten thousand, so keys are imported once (raw bytes behind a fixed DER prefix)
// and reused: re-importing per call costs more than the signature itself.
import { createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import type { Ed25519PrivateKey } from '@libp2p/interface'

export const ED25519_PUBLIC_KEY_BYTES = 32
export const ED25519_SIGNATURE_BYTES = 64

// RFC 8410 encodings of an Ed25519 key with its 32 raw bytes appended: the only DER that varies.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

// Enough for every member key of a large fleet; bounded so a flood of unknown feeds cannot
// grow it without limit.
const VERIFY_CACHE_LIMIT = 4096

/** The signing key is not a usable Ed25519 key (wrong size, or halves that do not match). */
export class SigningKeyError extends Error {
  readonly code = 'SIGNING_KEY_INVALID'
  override readonly name = 'SigningKeyError'
}

export interface Signer {
  /** 32-byte raw Ed25519 public key */
  readonly publicKey: Uint8Array
  sign: (message: Uint8Array) => Uint8Array
}

export type Verifier = (message: Uint8Array, signature: Uint8Array) => boolean

/** A signer over a libp2p Ed25519 key; the secret stays inside a KeyObject from here on. */
export function createSigner (privateKey: Ed25519PrivateKey): Signer {
  const raw = privateKey.raw
  if (raw.length !== 64) throw new SigningKeyError(`Ed25519 private key must be 64 bytes, got ${raw.length}`)
  const keyObject = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
  const derived = createPublicKey(keyObject).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length)
  const publicKey = privateKey.publicKey.raw
  // libp2p keeps seed and public key side by side; a key file whose halves disagree would
  // produce signatures nobody can verify against the peer id, so refuse it up front.
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES || !timingSafeEqual(derived, publicKey) || !timingSafeEqual(derived, raw.subarray(32))) {
    throw new SigningKeyError('Ed25519 private key does not match its public key')
  }
  return {
    publicKey: new Uint8Array(publicKey),
    sign: (message) => new Uint8Array(sign(null, message, keyObject))
  }
}

/** A verifier bound to one raw 32-byte public key; throws SigningKeyError for a wrong size. */
export function ed25519Verifier (publicKeyRaw: Uint8Array): Verifier {
  if (publicKeyRaw.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new SigningKeyError(`Ed25519 public key must be ${ED25519_PUBLIC_KEY_BYTES} bytes, got ${publicKeyRaw.length}`)
  }
  const keyObject: KeyObject = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKeyRaw]), format: 'der', type: 'spki' })
  return (message, signature) => signature.length === ED25519_SIGNATURE_BYTES && verify(null, message, keyObject, signature)
}

const verifiers = new Map<string, Verifier>()

/** Verifies with a cached KeyObject per public key; false (never a throw) for malformed input. */
export function verifyEd25519 (publicKeyRaw: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKeyRaw.length !== ED25519_PUBLIC_KEY_BYTES) return false
  const id = Buffer.from(publicKeyRaw.buffer, publicKeyRaw.byteOffset, publicKeyRaw.byteLength).toString('base64')
  let verifier = verifiers.get(id)
  if (verifier === undefined) {
    try {
      verifier = ed25519Verifier(publicKeyRaw)
    } catch {
      // not a point on the curve: no signature can be valid under it
      return false
    }
    if (verifiers.size >= VERIFY_CACHE_LIMIT) verifiers.delete(verifiers.keys().next().value as string)
    verifiers.set(id, verifier)
  }
  return verifier(message, signature)
}

export interface SignatureCheck {
  publicKey: Uint8Array
  message: Uint8Array
  signature: Uint8Array
}

// Runs as an eval'd worker so it needs no TypeScript loader and no file beside the compiled
// code. Batch layout, per item: u32 message length, 32-byte key, 64-byte signature, message.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createPublicKey, verify } = require('node:crypto')
const SPKI = Buffer.from('${SPKI_PREFIX.toString('hex')}', 'hex')
const keys = new Map()
parentPort.on('message', ({ id, buf, count }) => {
  const bytes = Buffer.from(buf)
  const out = new Uint8Array(count)
  let at = 0
  for (let i = 0; i < count; i++) {
    const len = bytes.readUInt32LE(at)
    const pub = bytes.subarray(at + 4, at + 36)
    const sig = bytes.subarray(at + 36, at + 100)
    const msg = bytes.subarray(at + 100, at + 100 + len)
    at += 100 + len
    const id = pub.toString('base64')
    let key = keys.get(id)
    try {
      if (key === undefined) {
        if (keys.size > ${VERIFY_CACHE_LIMIT}) keys.clear()
        key = createPublicKey({ key: Buffer.concat([SPKI, pub]), format: 'der', type: 'spki' })
        keys.set(id, key)
      }
      out[i] = verify(null, msg, key, sig) ? 1 : 0
    } catch { out[i] = 0 }
  }
  parentPort.postMessage({ id, out }, [out.buffer])
})
`

// Below this many signatures the cost of copying to a worker and back outweighs the gain.
const POOL_MIN_BATCH = 32

function wellSized (c: SignatureCheck): boolean {
  return c.publicKey.length === ED25519_PUBLIC_KEY_BYTES && c.signature.length === ED25519_SIGNATURE_BYTES
}

interface Job { resolve: (out: Uint8Array) => void, reject: (err: Error) => void }

/**
 * Verifies batches of Ed25519 signatures on worker threads plus the calling thread, so a host
 * catching up on a long log uses every core it has. Workers are unref'd: an idle pool never
 * keeps a process alive. If a worker dies the pool falls back to the calling thread.
 */
export class Ed25519VerifyPool {
  private readonly workers: Worker[] = []
  private readonly jobs = new Map<number, Job>()
  private nextId = 0

  /**
   * @param size worker threads
   * @param callerShare work the calling thread does itself, relative to one worker (0: none)
   */
  constructor (size: number, private readonly callerShare = 1) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true })
      w.unref()
      w.on('message', ({ id, out }: { id: number, out: Uint8Array }) => {
        const job = this.jobs.get(id)
        this.jobs.delete(id)
        job?.resolve(out)
      })
      w.on('error', (err) => { this.fail(err) })
      this.workers.push(w)
    }
  }

  get size (): number {
    return this.workers.length
  }

  /** One boolean per check, in order; malformed keys or signature sizes give false. */
  async verifyBatch (checks: SignatureCheck[]): Promise<boolean[]> {
    const n = checks.length
    const inline = (c: SignatureCheck): boolean => verifyEd25519(c.publicKey, c.message, c.signature)
    if (this.workers.length === 0 || n < POOL_MIN_BATCH) return checks.map(inline)
    // the calling thread takes `callerShare` of a worker's share: less when it has other work
    const own = Math.floor(n * this.callerShare / (this.callerShare + this.workers.length))
    const per = Math.ceil((n - own) / this.workers.length)
    const posted: Array<Promise<Uint8Array>> = []
    for (let from = own, w = 0; from < n; from += per, w++) {
      posted.push(this.post(this.workers[w], checks.slice(from, from + per)))
    }
    const results = checks.slice(0, own).map(inline)
    const outs = await Promise.all(posted)
    for (const out of outs) for (const ok of out) results.push(ok === 1 && wellSized(checks[results.length]))
    return results
  }

  private async post (worker: Worker, checks: SignatureCheck[]): Promise<Uint8Array> {
    let total = 0
    for (const c of checks) total += 100 + (wellSized(c) ? c.message.length : 0)
    const buf = new Uint8Array(total)
    const view = new DataView(buf.buffer)
    let at = 0
    for (const c of checks) {
      // a wrong-size key or signature travels as an empty slot whose result verifyBatch
      // discards: zero bytes are a small-order key and signature, not a safe "no"
      const sane = wellSized(c)
      view.setUint32(at, sane ? c.message.length : 0, true)
      if (sane) {
        buf.set(c.publicKey, at + 4)
        buf.set(c.signature, at + 36)
        buf.set(c.message, at + 100)
      }
      at += 100 + (sane ? c.message.length : 0)
    }
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject })
      worker.postMessage({ id, buf: buf.buffer, count: checks.length }, [buf.buffer])
    })
  }

  private fail (err: Error): void {
    for (const job of this.jobs.values()) job.reject(err)
    this.jobs.clear()
    for (const w of this.workers) void w.terminate()
    this.workers.length = 0
  }

  async close (): Promise<void> {
    const workers = this.workers.splice(0)
    await Promise.all(workers.map(async w => w.terminate()))
  }
}
