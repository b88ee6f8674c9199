// Writing to a libp2p 3 stream with backpressure, for every protocol of this folder.
import type { Stream, StreamCloseEvent } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Bytes queued on a stream before send() waits for the queue to empty. */
export const WRITE_HIGH_WATER = 1024 * 1024

export interface SendErrors {
  /** the stream closed before the queue emptied */
  closed: (cause?: Error) => Error
  aborted?: () => Error
}

/**
 * Sends `bytes`; when more than WRITE_HIGH_WATER wait in the stream's queue, waits until they
 * have all been handed to the muxer. Measured here: send() returning false and awaiting
 * 'drain' does not bound the queue (59 MiB of a 64 MiB transfer sat queued), 'idle' does.
 */
export async function send (stream: Stream, bytes: Uint8Array | Uint8ArrayList, errors: SendErrors, signal?: AbortSignal): Promise<void> {
  stream.send(bytes)
  if (stream.writeBufferLength <= WRITE_HIGH_WATER) return
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.removeEventListener('idle', onIdle)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onIdle = (): void => { cleanup(); resolve() }
    const onClose = (evt: StreamCloseEvent): void => { cleanup(); reject(errors.closed(evt.error)) }
    const onAbort = (): void => { cleanup(); reject(errors.aborted?.() ?? new Error('send aborted')) }
    stream.addEventListener('idle', onIdle)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}
