// A host's long-term identity: an Ed25519 libp2p key (its peer id, and the key of its audit
// feed) plus a static X-Wing key that others seal room keys to. Both are 32-byte seeds kept
// in one 0600 file; anything else about them is derived, so the file has one small schema.
import { constants, promises as fs } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { IdentityError } from './errors.js'
import { XWING_SEED_BYTES, generateXWingSeed, xwingPublicKey } from './xwing.js'

export const IDENTITY_FILE_VERSION = 1
const SEED_BYTES = 32

export interface HostIdentity {
  privateKey: Ed25519PrivateKey
  peerId: PeerId
  /** X-Wing private seed: secret, never logged */
  xwingSeed: Uint8Array
  xwingPublicKey: Uint8Array
}

interface IdentityFile { v: number, ed25519: string, xwing: string }

async function fromSeeds (edSeed: Uint8Array, xwingSeed: Uint8Array): Promise<HostIdentity> {
  const privateKey = await generateKeyPairFromSeed('Ed25519', edSeed)
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), xwingSeed, xwingPublicKey: xwingPublicKey(xwingSeed) }
}

function decodeSeed (path: string, field: string, value: unknown, bytes: number): Uint8Array {
  if (typeof value !== 'string') throw new IdentityError('IDENTITY_CORRUPT', `${path}: field "${field}" is missing`)
  const seed = Buffer.from(value, 'base64')
  if (seed.length !== bytes || seed.toString('base64') !== value) {
    throw new IdentityError('IDENTITY_CORRUPT', `${path}: field "${field}" is not ${bytes} bytes of base64`)
  }
  return new Uint8Array(seed)
}

/**
 * Creates a new identity file. Fails with IDENTITY_EXISTS rather than replace one: losing a
 * host key silently would orphan its audit feed and every room key sealed to it.
 */
export async function createIdentity (path: string): Promise<HostIdentity> {
  const edSeed = new Uint8Array(randomBytes(SEED_BYTES))
  const xwingSeed = generateXWingSeed()
  const body: IdentityFile = {
    v: IDENTITY_FILE_VERSION,
    ed25519: Buffer.from(edSeed).toString('base64'),
    xwing: Buffer.from(xwingSeed).toString('base64')
  }
  await fs.mkdir(dirname(path), { recursive: true, mode: 0o700 })
  // Write a private temp file, fsync, then link() it into place: link fails if the target
  // exists, so two concurrent inits cannot both win, and a crash never leaves half a key file.
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await fs.open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600)
  try {
    await fh.writeFile(JSON.stringify(body) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await fs.link(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new IdentityError('IDENTITY_EXISTS', `${path} already exists; refusing to replace a host identity`)
    }
    throw err
  } finally {
    await fs.rm(tmp, { force: true })
  }
  return fromSeeds(edSeed, xwingSeed)
}

export async function loadIdentity (path: string): Promise<HostIdentity> {
  let stat
  try {
    stat = await fs.stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new IdentityError('IDENTITY_MISSING', `${path} does not exist; run "fleetmesh init" first`)
    }
    throw new IdentityError('IDENTITY_UNREADABLE', `${path}: ${(err as Error).message}`)
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new IdentityError('IDENTITY_INSECURE_MODE', `${path} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); run "chmod 600 ${path}"`)
  }
  let text: string
  try {
    text = await fs.readFile(path, 'utf8')
  } catch (err) {
    throw new IdentityError('IDENTITY_UNREADABLE', `${path}: ${(err as Error).message}`)
  }
  if (text.length > 4096) throw new IdentityError('IDENTITY_CORRUPT', `${path} is too large to be an identity file`)
  let body: Partial<IdentityFile>
  try {
    body = JSON.parse(text)
  } catch {
    throw new IdentityError('IDENTITY_CORRUPT', `${path} is not valid JSON`)
  }
  if (body === null || typeof body !== 'object' || body.v !== IDENTITY_FILE_VERSION) {
    throw new IdentityError('IDENTITY_CORRUPT', `${path}: unknown identity file version`)
  }
  return fromSeeds(decodeSeed(path, 'ed25519', body.ed25519, SEED_BYTES), decodeSeed(path, 'xwing', body.xwing, XWING_SEED_BYTES))
}

const PEER_KEY_CACHE_LIMIT = 4096
const peerKeys = new Map<string, Uint8Array>()

/**
 * The raw Ed25519 public key inside a peer id string (an audit feed, a room message's sender):
 * what every signature of that host verifies under. NOT_ED25519_PEER_ID for anything else,
 * including a second spelling of a valid id. Cached, as every received entry asks.
 */
export function peerIdPublicKey (id: string): Uint8Array {
  const cached = peerKeys.get(id)
  if (cached !== undefined) return cached
  let key: Uint8Array
  try {
    const peerId = peerIdFromString(id)
    // toString() must give back the same text: one feed, one spelling, one set of store keys
    if (peerId.type !== 'Ed25519' || peerId.toString() !== id) throw new Error('not an Ed25519 peer id in base58btc')
    key = peerId.publicKey.raw
  } catch (err) {
    throw new IdentityError('NOT_ED25519_PEER_ID', (err as Error).message)
  }
  if (peerKeys.size >= PEER_KEY_CACHE_LIMIT) peerKeys.delete(peerKeys.keys().next().value as string)
  peerKeys.set(id, key)
  return key
}
