// Byte plumbing for the closure protocol on libp2p 3 streams: paced reading, frames followed
// by raw bytes, and sending with backpressure.
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { send as sendBounded, type SendErrors } from '../send.js'
import { Uint8ArrayList } from 'uint8arraylist'
import { FRAME_PREFIX_BYTES } from './codec.js'
import { ClosuresError } from './errors.js'

/** Bytes buffered before the reader pauses the stream; it resumes below half of this. */
export const DEFAULT_HIGH_WATER = 4 * 1024 * 1024

/**
 * The stream's bytes as they arrive. Unlike the stream's own iterator this pauses the stream
 * when `highWater` bytes wait unread: a closure of gigabytes may arrive faster than
 * `nix-store --import` writes it, and a paused yamux stream stops granting send window, so
 * the sender waits instead of this host buffering the difference.
 */
export async function * readPaced (stream: Stream, highWater = DEFAULT_HIGH_WATER): AsyncGenerator<Uint8Array> {
  const queue: Uint8Array[] = []
  let queued = 0
  let ended = stream.readableEnded
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = (): void => { wake?.(); wake = undefined }
  const onMessage = (evt: StreamMessageEvent): void => {
    const bytes = evt.data.subarray()
    queue.push(bytes)
    queued += bytes.byteLength
    // Paused a microtask later: a pause inside the dispatch that resume() makes is undone by
    // the window update resume() sends right after it (libp2p 3 + yamux 8), and the remote
    // then fills the read buffer until the stream is aborted (seen with a 256 MiB closure).
    if (queued >= highWater) queueMicrotask(pauseIfFull)
    notify()
  }
  const pauseIfFull = (): void => {
    if (queued >= highWater && stream.readStatus === 'readable') stream.pause()
  }
  const onEnd = (): void => { ended = true; notify() }
  const onClose = (evt: StreamCloseEvent): void => {
    failure = evt.error
    ended = true
    notify()
  }
  // While paused the stream holds what the remote had already been allowed to send: up to a
  // yamux window (16 MiB by default) beyond the default 4 MiB read limit.
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, highWater + 32 * 1024 * 1024)
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  try {
    for (;;) {
      const next = queue.shift()
      if (next !== undefined) {
        queued -= next.byteLength
        if (stream.readStatus === 'paused' && queued < highWater / 2) stream.resume()
        yield next
        continue
      }
      if (failure !== undefined) throw failure
      if (ended) return
      await new Promise<void>((resolve) => { wake = resolve })
    }
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', onEnd)
    stream.removeEventListener('close', onClose)
  }
}

/** Length-prefixed frames, then the raw remainder, from one byte source. */
export class FrameReader {
  private readonly source: AsyncIterator<Uint8Array>
  private readonly buffer = new Uint8ArrayList()

  constructor (source: AsyncIterable<Uint8Array>) {
    this.source = source[Symbol.asyncIterator]()
  }

  /** The next frame's body; MESSAGE_TOO_LARGE before reading a body over `maxBytes`. */
  async frame (maxBytes: number): Promise<Uint8Array> {
    await this.fill(FRAME_PREFIX_BYTES)
    const length = this.buffer.getUint32(0)
    if (length > maxBytes) throw new ClosuresError('MESSAGE_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${maxBytes}`)
    await this.fill(FRAME_PREFIX_BYTES + length)
    const body = this.buffer.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + length)
    this.buffer.consume(FRAME_PREFIX_BYTES + length)
    return body
  }

  /** Everything after the frames read so far, to the end of the source. */
  async * rest (): AsyncGenerator<Uint8Array> {
    try {
      if (this.buffer.byteLength > 0) {
        const head = this.buffer.subarray()
        this.buffer.consume(head.byteLength)
        yield head
      }
      for (;;) {
        const next = await this.source.next()
        if (next.done === true) return
        yield next.value
      }
    } finally {
      await this.source.return?.()
    }
  }

  private async fill (bytes: number): Promise<void> {
    while (this.buffer.byteLength < bytes) {
      const next = await this.source.next()
      if (next.done === true) throw new ClosuresError('STREAM_TRUNCATED', `stream ended after ${this.buffer.byteLength} of ${bytes} bytes of a frame`)
      this.buffer.append(next.value)
    }
  }
}

/**
 * `source`, checked to be exactly `bytes` long: a peer that stops early or sends more than it
 * announced fails here, whatever the importer would make of the bytes.
 */
export async function * exactly (source: AsyncIterable<Uint8Array>, bytes: number): AsyncGenerator<Uint8Array> {
  let seen = 0
  for await (const chunk of source) {
    seen += chunk.byteLength
    if (seen > bytes) throw new ClosuresError('MESSAGE_MALFORMED', `peer sent more than the ${bytes} bytes it announced`)
    yield chunk
  }
  if (seen < bytes) throw new ClosuresError('STREAM_TRUNCATED', `stream ended after ${seen} of ${bytes} bytes`)
}

const CLOSURES_SEND_ERRORS: SendErrors = {
  closed: (cause) => cause ?? new ClosuresError('STREAM_TRUNCATED', 'stream closed while sending'),
  aborted: () => new ClosuresError('ABORTED', 'send aborted')
}

/** The shared bounded send, with this protocol's errors. */
export async function send (stream: Stream, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  await sendBounded(stream, bytes, CLOSURES_SEND_ERRORS, signal)
}
