// One request/response exchange over a libp2p stream, for every protocol of this layer that
// answers a request with a series of frames (audit sync, room history): length-prefixed frames,
// the request first, then data frames and a closing `end`, or an `error` frame with a stable
// code. A bad request is answered with that typed error frame, never with a bare reset, so the
// requester learns why; both sides bound every frame before they parse it.
import * as lp from 'it-length-prefixed'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { send } from './send.js'

export interface EndFrame { t: 'end' }
export interface ErrorFrame { t: 'error', code: string, message: string }
/** An error frame's message is cut to this many characters. */
export const MAX_ERROR_MESSAGE_CHARS = 1024

/** What a protocol supplies: its frame codec and how it names the failures this exchange meets. */
export interface Exchange<Req, Frame extends { t: string }, E extends Error & { code: string }> {
  maxRequestBytes: number
  maxFrameBytes: number
  encodeRequest: (req: Req) => Uint8Array
  decodeRequest: (bytes: Uint8Array) => Req
  encodeFrame: (frame: Frame | EndFrame | ErrorFrame) => Uint8Array
  decodeFrame: (bytes: Uint8Array) => Frame | EndFrame | ErrorFrame
  /** the protocol's typed error for anything thrown here, including the length-prefix decoder's */
  toError: (err: unknown) => E
  /** the typed error for a peer that refused, or hung up before `end` */
  failed: (message: string) => E
}

/** The length-prefix decoder's errors, named for what they mean on the wire. */
export function lengthPrefixFault (err: unknown): 'too-large' | 'malformed' | undefined {
  const name = (err as Error | undefined)?.name
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') return 'too-large'
  if (name === 'InvalidMessageLengthError' || name === 'UnexpectedEOFError') return 'malformed'
  return undefined
}

async function sendFrame<E extends Error & { code: string }> (stream: Stream, bytes: Uint8Array, failed: (message: string) => E): Promise<void> {
  await send(stream, lp.encode.single(bytes), { closed: () => failed('stream closed while sending') })
}

// The stream's bytes without its return(): a decoder that gives up on a bad frame would otherwise
// end the stream through it, and the peer would get a reset instead of a typed error frame.
function readOnly (stream: Stream): AsyncIterable<Uint8Array | Uint8ArrayList> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = stream[Symbol.asyncIterator]()
      return { next: async () => it.next() }
    }
  }
}

/**
 * The requester's side: sends `req` on a fresh stream and hands each data frame to `onFrame`
 * until `end`. An error frame, a close before `end` or an oversize frame throws; the stream is
 * closed on success and aborted otherwise.
 */
export async function request<Req, Frame extends { t: string }, E extends Error & { code: string }> (
  stream: Stream, ex: Exchange<Req, Frame, E>, req: Req, onFrame: (frame: Frame) => Promise<void>
): Promise<void> {
  try {
    await sendFrame(stream, ex.encodeRequest(req), ex.failed)
    let ended = false
    for await (const chunk of lp.decode(stream, { maxDataLength: ex.maxFrameBytes })) {
      const frame = ex.decodeFrame(chunk.subarray())
      if (frame.t === 'end') {
        ended = true
        break
      }
      if (frame.t === 'error') {
        const refused = frame as ErrorFrame
        throw ex.failed(`peer refused: ${refused.code}: ${refused.message}`)
      }
      await onFrame(frame as Frame)
    }
    if (!ended) throw ex.failed('peer closed the stream before the end frame')
    await stream.close()
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/**
 * The responder's side: reads one request, lets `handle` answer it with data frames through
 * `reply`, then sends `end`. Anything `handle` or the decoders throw is answered with an error
 * frame carrying its code; the error is returned so the caller can penalise the peer after the
 * reply has gone out.
 */
export async function respond<Req, Frame extends { t: string }, E extends Error & { code: string }> (
  stream: Stream, ex: Exchange<Req, Frame, E>, handle: (req: Req, reply: (frame: Frame) => Promise<void>) => Promise<void>
): Promise<E | undefined> {
  const reply = async (frame: Frame | EndFrame | ErrorFrame): Promise<void> => { await sendFrame(stream, ex.encodeFrame(frame), ex.failed) }
  try {
    const first = await lp.decode(readOnly(stream), { maxDataLength: ex.maxRequestBytes })[Symbol.asyncIterator]().next()
    if (first.done === true) throw ex.toError(Object.assign(new Error('stream ended before a request'), { name: 'UnexpectedEOFError' }))
    await handle(ex.decodeRequest(first.value.subarray()), reply)
    await reply({ t: 'end' })
    await stream.close()
    return undefined
  } catch (err) {
    const error = ex.toError(err)
    try {
      await reply({ t: 'error', code: error.code, message: error.message.slice(0, MAX_ERROR_MESSAGE_CHARS) })
      await stream.close()
    } catch {
      stream.abort(error)
    }
    return error
  }
}
