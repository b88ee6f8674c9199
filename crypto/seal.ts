// Sealing a room's epoch key to one member host (docs/architecture.md, rooms): HPKE (RFC 9180) base mode with
// KEM X-Wing, KDF HKDF-SHA256, AEAD ChaCha20-Poly1305, to the host's static X-Wing key.
//
// Sealed layout (fixed size, 1169 bytes):  version(1) = 0x01 || enc(1120) || ct(32 + 16 tag)
//
// HPKE `info` binds the room id, the epoch and the recipient's peer id, so a sealed key cannot
// be replayed as another room's key, another epoch's key, or to another host. X-Wing private
// keys are the 32-byte seed of crypto/xwing.ts; @hpke's X-Wing expands the same seed into the
// same public key as @noble's ml_kem768_x25519 (checked in test/crypto/seal.test.ts).
import type { CipherSuite } from '@hpke/core'
import { SealError } from './errors.js'
import { XWING_PUBLIC_KEY_BYTES, XWING_SEED_BYTES } from './xwing.js'

export const SEAL_VERSION = 1
export const EPOCH_KEY_BYTES = 32
const ENC_BYTES = 1120
const TAG_BYTES = 16
export const SEALED_EPOCH_KEY_BYTES = 1 + ENC_BYTES + EPOCH_KEY_BYTES + TAG_BYTES
const INFO_DOMAIN = 'fleetmesh room epoch key v1'
const MAX_ID_BYTES = 256

// One suite for the process: the KEM caches its crypto provider after first use. Loaded on the
// first seal or open, as a host in no room never needs @hpke (about 4 MiB of an idle daemon).
let suitePromise: Promise<CipherSuite> | undefined
async function hpkeSuite (): Promise<CipherSuite> {
  suitePromise ??= (async () => {
    const [{ CipherSuite, HkdfSha256 }, { Chacha20Poly1305 }, { XWing }] = await Promise.all([
      import('@hpke/core'), import('@hpke/chacha20poly1305'), import('@hpke/hybridkem-x-wing')
    ])
    return new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() })
  })()
  return suitePromise
}
const utf8 = new TextEncoder()

export interface SealEpochKeyParams {
  /** the recipient host's X-Wing public key (1216 bytes), from its admit entry */
  recipientPublicKey: Uint8Array
  recipientPeerId: string
  roomId: string
  /** non-negative integer */
  epoch: number
  /** the 32-byte epoch key; secret */
  key: Uint8Array
}

export interface OpenEpochKeyParams {
  /** this host's X-Wing seed; secret */
  seed: Uint8Array
  /** this host's peer id: a key sealed to another host does not open */
  peerId: string
  roomId: string
  epoch: number
  sealed: Uint8Array
}

function malformed (message: string): never {
  throw new SealError('SEAL_MALFORMED', message)
}

/** Deterministic, length-prefixed: domain, room id, epoch (u64 BE), recipient peer id. */
export function sealInfo (roomId: string, epoch: number, peerId: string): Uint8Array {
  if (!Number.isSafeInteger(epoch) || epoch < 0) malformed('epoch must be a non-negative integer')
  const fields = [utf8.encode(INFO_DOMAIN), utf8.encode(roomId), utf8.encode(peerId)]
  if (fields[1]!.length === 0 || fields[1]!.length > MAX_ID_BYTES) malformed(`room id must be 1..${MAX_ID_BYTES} bytes`)
  if (fields[2]!.length === 0 || fields[2]!.length > MAX_ID_BYTES) malformed(`peer id must be 1..${MAX_ID_BYTES} bytes`)
  const out = Buffer.alloc(fields.reduce((n, f) => n + 4 + f.length, 0) + 8)
  let o = 0
  for (const [i, f] of fields.entries()) {
    o = out.writeUInt32BE(f.length, o)
    out.set(f, o)
    o += f.length
    if (i === 1) o = out.writeBigUInt64BE(BigInt(epoch), o)
  }
  return new Uint8Array(out)
}

export async function sealEpochKey (p: SealEpochKeyParams): Promise<Uint8Array> {
  if (p.key.length !== EPOCH_KEY_BYTES) malformed(`epoch key must be ${EPOCH_KEY_BYTES} bytes`)
  if (p.recipientPublicKey.length !== XWING_PUBLIC_KEY_BYTES) malformed(`X-Wing public key must be ${XWING_PUBLIC_KEY_BYTES} bytes`)
  const info = sealInfo(p.roomId, p.epoch, p.recipientPeerId)
  const suite = await hpkeSuite()
  const recipientPublicKey = await suite.kem.importKey('raw', new Uint8Array(p.recipientPublicKey).buffer, true)
  const { enc, ct } = await suite.seal({ recipientPublicKey, info }, p.key)
  const out = new Uint8Array(SEALED_EPOCH_KEY_BYTES)
  out[0] = SEAL_VERSION
  out.set(new Uint8Array(enc), 1)
  out.set(new Uint8Array(ct), 1 + ENC_BYTES)
  return out
}

export async function openEpochKey (p: OpenEpochKeyParams): Promise<Uint8Array> {
  if (p.seed.length !== XWING_SEED_BYTES) malformed(`X-Wing seed must be ${XWING_SEED_BYTES} bytes`)
  if (!(p.sealed instanceof Uint8Array) || p.sealed.length === 0) malformed('sealed epoch key is empty')
  if (p.sealed[0] !== SEAL_VERSION) throw new SealError('SEAL_VERSION', `sealed epoch key version ${p.sealed[0]} is not supported (this build reads ${SEAL_VERSION})`)
  if (p.sealed.length !== SEALED_EPOCH_KEY_BYTES) malformed(`sealed epoch key must be ${SEALED_EPOCH_KEY_BYTES} bytes, got ${p.sealed.length}`)
  const info = sealInfo(p.roomId, p.epoch, p.peerId)
  const suite = await hpkeSuite()
  const recipientKey = await suite.kem.importKey('raw', new Uint8Array(p.seed).buffer, false)
  try {
    const key = await suite.open({ recipientKey, enc: p.sealed.slice(1, 1 + ENC_BYTES), info }, p.sealed.slice(1 + ENC_BYTES))
    return new Uint8Array(key)
  } catch {
    // X-Wing decapsulation never fails (implicit rejection): a wrong key, room, epoch,
    // recipient or any flipped byte all surface here as an AEAD failure.
    throw new SealError('SEAL_OPEN_FAILED', `sealed epoch key for room ${p.roomId} epoch ${p.epoch} does not open with this host's key`)
  }
}
