// Wire schemas of the encrypter: the libp2p NoiseHandshakePayload protobuf (the same message
// libp2p-noise carries, so the identity binding is the one every libp2p implementation checks)
// and the 2-byte big-endian length prefix that frames every Noise message.
//
//   message NoiseExtensions { repeated bytes webtransport_certhashes = 1; repeated string stream_muxers = 2; }
//   message NoiseHandshakePayload { bytes identity_key = 1; bytes identity_sig = 2; optional NoiseExtensions extensions = 4; }
import { reader as createReader, writer as createWriter } from 'protons-runtime'
import { MalformedMessageError, MessageTooLargeError } from './errors.js'
import type { Reader, Writer } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Largest Noise message, ciphertext and tag included (the 16-bit length prefix's range). */
export const MAX_NOISE_MESSAGE = 65535
// Generous bounds that every libp2p key type (RSA-8192 included) fits in.
const MAX_IDENTITY_KEY = 2048
const MAX_IDENTITY_SIG = 2048
const MAX_EXTENSION_ITEMS = 32
const MAX_EXTENSION_ITEM = 1024

const WIRE_VARINT = 0
const WIRE_BYTES = 2

export interface NoiseExtensions {
  webtransportCerthashes: Uint8Array[]
  streamMuxers: string[]
}

export interface NoiseHandshakePayload {
  identityKey: Uint8Array
  identitySig: Uint8Array
  extensions?: NoiseExtensions
}

export function encodePayload (payload: NoiseHandshakePayload): Uint8Array {
  const w = createWriter()
  w.uint32(1 << 3 | WIRE_BYTES).bytes(payload.identityKey)
  w.uint32(2 << 3 | WIRE_BYTES).bytes(payload.identitySig)
  if (payload.extensions !== undefined) {
    w.uint32(4 << 3 | WIRE_BYTES).fork()
    encodeExtensions(w, payload.extensions)
    w.ldelim()
  }
  return w.finish()
}

function encodeExtensions (w: Writer, extensions: NoiseExtensions): void {
  for (const hash of extensions.webtransportCerthashes) w.uint32(1 << 3 | WIRE_BYTES).bytes(hash)
  for (const muxer of extensions.streamMuxers) w.uint32(2 << 3 | WIRE_BYTES).string(muxer)
}

/** Decodes and validates a payload: oversize → MessageTooLargeError, any other defect → MalformedMessageError. */
export function decodePayload (bytes: Uint8Array): NoiseHandshakePayload {
  const r = createReader(bytes)
  let identityKey: Uint8Array | undefined
  let identitySig: Uint8Array | undefined
  let extensions: NoiseExtensions | undefined
  guard(() => {
    while (r.pos < r.len) {
      const tag = r.uint32()
      switch (tag >>> 3) {
        case 1: identityKey = readBytes(r, tag, MAX_IDENTITY_KEY, 'identity_key'); break
        case 2: identitySig = readBytes(r, tag, MAX_IDENTITY_SIG, 'identity_sig'); break
        case 4: extensions = decodeExtensions(readBytes(r, tag, MAX_NOISE_MESSAGE, 'extensions')); break
        default: skipField(r, tag)
      }
    }
  })
  if (identityKey === undefined || identityKey.byteLength === 0) throw new MalformedMessageError('payload has no identity_key')
  if (identitySig === undefined || identitySig.byteLength === 0) throw new MalformedMessageError('payload has no identity_sig')
  return extensions === undefined ? { identityKey, identitySig } : { identityKey, identitySig, extensions }
}

function decodeExtensions (bytes: Uint8Array): NoiseExtensions {
  const r = createReader(bytes)
  const out: NoiseExtensions = { webtransportCerthashes: [], streamMuxers: [] }
  while (r.pos < r.len) {
    const tag = r.uint32()
    switch (tag >>> 3) {
      case 1:
        out.webtransportCerthashes.push(readBytes(r, tag, MAX_EXTENSION_ITEM, 'webtransport_certhashes'))
        break
      case 2:
        out.streamMuxers.push(utf8(readBytes(r, tag, MAX_EXTENSION_ITEM, 'stream_muxers')))
        break
      default: skipField(r, tag)
    }
    if (out.webtransportCerthashes.length + out.streamMuxers.length > MAX_EXTENSION_ITEMS) {
      throw new MessageTooLargeError('payload extensions have too many entries')
    }
  }
  return out
}

function readBytes (r: Reader, tag: number, max: number, field: string): Uint8Array {
  if ((tag & 7) !== WIRE_BYTES) throw new MalformedMessageError(`payload field ${field} has wire type ${tag & 7}`)
  const value = r.bytes()
  if (value.byteLength > max) throw new MessageTooLargeError(`payload field ${field} exceeds ${max} bytes`)
  return value
}

function skipField (r: Reader, tag: number): void {
  // unknown fields are skipped as protobuf requires, but only the wire types proto3 still uses
  const wireType = tag & 7
  if (wireType !== WIRE_VARINT && wireType !== WIRE_BYTES && wireType !== 1 && wireType !== 5) {
    throw new MalformedMessageError(`payload has unsupported wire type ${wireType}`)
  }
  r.skipType(wireType)
}

const decoder = new TextDecoder('utf-8', { fatal: true })
function utf8 (bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes)
  } catch {
    throw new MalformedMessageError('payload string is not valid UTF-8')
  }
}

function guard (decode: () => void): void {
  try {
    decode()
  } catch (err) {
    if (err instanceof MalformedMessageError || err instanceof MessageTooLargeError) throw err
    // the protobuf reader throws RangeError-like errors on truncated varints and lengths
    throw new MalformedMessageError('payload protobuf is truncated or malformed', { cause: err })
  }
}

export function encodeLength (length: number): Uint8Array {
  const out = new Uint8Array(2)
  out[0] = length >>> 8
  out[1] = length & 0xff
  return out
}
encodeLength.bytes = 2

export function decodeLength (data: Uint8Array | Uint8ArrayList): number {
  // RangeError is how @libp2p/utils' length-prefixed readers are told "wait for more bytes"
  if (data.byteLength < 2) throw new RangeError('length prefix needs 2 bytes')
  return data instanceof Uint8Array ? (data[0] << 8) | data[1] : data.getUint16(0)
}
decodeLength.bytes = 2
