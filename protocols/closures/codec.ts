// Wire format of /fleetmesh/closure/1.0.0. The requester sends one frame, `{path}`, and closes
// its write side. The server answers with one header frame, then, only when the header says
// ok, exactly `bytes` raw bytes of `nix-store --export` of the closure, and closes.
// A frame is a 4-byte big-endian length and that many bytes of canonical CBOR: the raw export
// follows the header on the same stream, so the header needs a length the reader can stop at.
// The metadata (`infos`) travels with the bytes because `nix-store --import` accepts corrupted
// data silently: the importer verifies every path against it.
import { isStorePath } from '../../crypto/ids.js'
import { CanonicalError, decodeCanonical, encodeCanonical } from '../canonical.js'
import { ClosuresError, WIRE_ERROR_CODES, type ClosuresErrorCode } from './errors.js'
import type { PathInfo } from './store.js'

export const CLOSURE_PROTOCOL = '/fleetmesh/closure/1.0.0'

export const FRAME_PREFIX_BYTES = 4
export const MAX_REQUEST_BYTES = 512
/** A whole system closure has a few thousand paths; ~1 KiB of metadata each fits with room. */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024
export const MAX_INFOS = 65_536
export const MAX_SIGNATURES = 16
export const MAX_SIGNATURE_CHARS = 256
export const MAX_CODE_CHARS = 64
export const MAX_MESSAGE_CHARS = 1024

export interface ClosureRequest { path: string }

export type ClosureHeader =
  | { ok: true, infos: PathInfo[], bytes: number }
  | { ok: false, code: ClosuresErrorCode, message: string }

const SRI_SHA256_RE = /^sha256-[A-Za-z0-9+/]{43}=$/

function bad (why: string): ClosuresError {
  return new ClosuresError('MESSAGE_MALFORMED', why)
}

function asMap (v: unknown, keys: string[], what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw bad(`${what} is not a map`)
  const got = Object.keys(v).sort()
  if (got.length !== keys.length || got.some((k, i) => k !== keys[i])) throw bad(`${what} fields must be exactly ${keys.join(', ')}`)
  return v as Record<string, unknown>
}

/** `v` when it is a store path other than a derivation: only built outputs are closures to move. */
export function storePath (v: unknown, what: string, code: ClosuresErrorCode = 'MESSAGE_MALFORMED'): string {
  if (isStorePath(v) && !v.endsWith('.drv')) return v
  throw new ClosuresError(code, `${what} is not a store path: ${JSON.stringify(String(v).slice(0, 300))}`)
}

function decode (body: Uint8Array, maxBytes: number): unknown {
  try {
    return decodeCanonical(body, maxBytes)
  } catch (err) {
    if (err instanceof CanonicalError) throw new ClosuresError(err.code === 'TOO_LARGE' ? 'MESSAGE_TOO_LARGE' : 'MESSAGE_MALFORMED', err.message)
    throw err
  }
}

/** The length prefix and `body`. */
export function frame (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_PREFIX_BYTES + body.length)
  new DataView(out.buffer).setUint32(0, body.length)
  out.set(body, FRAME_PREFIX_BYTES)
  return out
}

export function encodeRequest (req: ClosureRequest): Uint8Array {
  return encodeCanonical({ path: storePath(req.path, 'path', 'INVALID_STORE_PATH') })
}

export function decodeRequest (body: Uint8Array): ClosureRequest {
  const m = asMap(decode(body, MAX_REQUEST_BYTES), ['path'], 'request')
  return { path: storePath(m.path, 'path', 'INVALID_STORE_PATH') }
}

export function encodeHeader (h: ClosureHeader): Uint8Array {
  if (h.ok) return encodeCanonical({ ok: true, infos: h.infos.map(i => ({ path: i.path, narHash: i.narHash, narSize: i.narSize, references: i.references, signatures: i.signatures })), bytes: h.bytes })
  return encodeCanonical({ ok: false, code: h.code, message: h.message.slice(0, MAX_MESSAGE_CHARS) })
}

export function decodeHeader (body: Uint8Array): ClosureHeader {
  const v = decode(body, MAX_HEADER_BYTES)
  const ok = (v as Record<string, unknown> | null)?.ok
  if (ok === false) {
    const m = asMap(v, ['code', 'message', 'ok'], 'error header')
    if (typeof m.code !== 'string' || m.code.length > MAX_CODE_CHARS || !WIRE_ERROR_CODES.has(m.code)) throw bad(`unknown error code ${JSON.stringify(String(m.code).slice(0, MAX_CODE_CHARS))}`)
    if (typeof m.message !== 'string' || m.message.length > MAX_MESSAGE_CHARS) throw bad(`error message must be a string of at most ${MAX_MESSAGE_CHARS} characters`)
    return { ok, code: m.code as ClosuresErrorCode, message: m.message }
  }
  if (ok !== true) throw bad('header has no ok flag')
  const m = asMap(v, ['bytes', 'infos', 'ok'], 'header')
  if (!Array.isArray(m.infos) || m.infos.length === 0 || m.infos.length > MAX_INFOS) throw bad(`infos must be a list of 1..${MAX_INFOS}`)
  const infos = m.infos.map(decodeInfo)
  const paths = new Set(infos.map(i => i.path))
  if (paths.size !== infos.length) throw bad('infos list a path twice')
  let narTotal = 0
  for (const i of infos) {
    // A closure is closed under references: anything else could not be imported and verified.
    const missing = i.references.find(r => !paths.has(r))
    if (missing !== undefined) throw bad(`${i.path} references ${missing}, which is not in the closure`)
    narTotal += i.narSize
  }
  // The export wraps every NAR in framing, so it is always longer than the NARs themselves.
  if (!Number.isSafeInteger(m.bytes) || (m.bytes as number) <= narTotal) throw bad(`bytes must be an integer above the NARs' total of ${narTotal}`)
  return { ok, infos, bytes: m.bytes as number }
}

function decodeInfo (v: unknown, n: number): PathInfo {
  const what = `infos[${n}]`
  const m = asMap(v, ['narHash', 'narSize', 'path', 'references', 'signatures'], what)
  const path = storePath(m.path, `${what}.path`)
  if (typeof m.narHash !== 'string' || !SRI_SHA256_RE.test(m.narHash)) throw bad(`${what}.narHash is not an SRI sha256 hash`)
  if (!Number.isSafeInteger(m.narSize) || (m.narSize as number) <= 0) throw bad(`${what}.narSize is not a positive integer`)
  if (!Array.isArray(m.references) || m.references.length > MAX_INFOS) throw bad(`${what}.references must be a list of at most ${MAX_INFOS}`)
  const references = m.references.map((r, j) => storePath(r, `${what}.references[${j}]`))
  if (!Array.isArray(m.signatures) || m.signatures.length > MAX_SIGNATURES || m.signatures.some(s => typeof s !== 'string' || s.length === 0 || s.length > MAX_SIGNATURE_CHARS)) {
    throw bad(`${what}.signatures must be at most ${MAX_SIGNATURES} strings of 1..${MAX_SIGNATURE_CHARS} characters`)
  }
  return { path, narHash: m.narHash, narSize: m.narSize as number, references, signatures: [...m.signatures as string[]] }
}
