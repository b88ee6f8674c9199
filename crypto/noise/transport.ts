// The secured MessageStream handed back to libp2p: each write is cut into Noise transport
// messages (at most 65535 bytes with the tag), each prefixed with its 2-byte length; each
// received frame is authenticated before any of its bytes reach the reader. Same shape as
// libp2p-noise's EncryptedMessageStream, whose module is not exported. Writes are sealed and
// handed down synchronously: deferring them to coalesce a tick's small frames lost data when
// the transport closed underneath (see the compliance suite's echo test).
import { AbstractMessageStream, LengthPrefixedDecoder } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { MAX_NOISE_MESSAGE, decodeLength, encodeLength } from './codec.js'
import { TAG_LEN } from './crypto.js'
import { HybridNoiseError, TransportDecryptError } from './errors.js'
import { ZEROLEN } from './protocol.js'
import type { NoiseMetrics } from './metrics.js'
import type { CipherState } from './protocol.js'
import type { AbortOptions, MessageStream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'

const MAX_PLAINTEXT = MAX_NOISE_MESSAGE - TAG_LEN

export interface TransportCiphers {
  send: CipherState
  receive: CipherState
}

class EncryptedMessageStream extends AbstractMessageStream {
  private readonly decoder = new LengthPrefixedDecoder({
    lengthDecoder: decodeLength,
    encodingLength: () => 2,
    maxDataLength: MAX_NOISE_MESSAGE,
    // bounds what a peer can make us buffer (as libp2p-noise): one partial frame plus one read
    maxBufferSize: 16 * 1024 * 1024
  })

  // ECMAScript private: the transport keys are no property of the stream libp2p hands around
  readonly #ciphers: TransportCiphers

  constructor (private readonly stream: MessageStream, ciphers: TransportCiphers, private readonly metrics?: NoiseMetrics) {
    super({
      log: stream.log,
      inactivityTimeout: stream.inactivityTimeout,
      maxReadBufferLength: stream.maxReadBufferLength,
      direction: stream.direction
    })
    this.#ciphers = { send: ciphers.send, receive: ciphers.receive }

    stream.addEventListener('message', (evt: StreamMessageEvent) => {
      try {
        for (const frame of this.decoder.decode(evt.data)) this.onData(this.decrypt(frame))
      } catch (err) {
        this.abort(err as Error)
      }
    })
    stream.addEventListener('close', (evt: StreamCloseEvent) => {
      if (evt.error == null) this.onTransportClosed()
      else if (evt.local === true) this.abort(evt.error)
      else this.onRemoteReset()
    })
    stream.addEventListener('drain', () => { this.safeDispatchEvent('drain') })
    stream.addEventListener('remoteCloseWrite', () => { this.onRemoteCloseWrite() })
  }

  private encrypt (data: Uint8ArrayList): Uint8ArrayList {
    const frames = new Uint8ArrayList()
    for (let start = 0; start < data.byteLength; start += MAX_PLAINTEXT) {
      const sealed = this.#ciphers.send.encryptWithAd(ZEROLEN, data.sublist(start, Math.min(start + MAX_PLAINTEXT, data.byteLength)))
      frames.append(encodeLength(sealed.byteLength), sealed)
      this.metrics?.encryptedFrames.increment()
    }
    return frames
  }

  private decrypt (frame: Uint8ArrayList): Uint8Array | Uint8ArrayList {
    try {
      const plaintext = this.#ciphers.receive.decryptWithAd(ZEROLEN, frame)
      this.metrics?.decryptedFrames.increment()
      return plaintext
    } catch (err) {
      this.metrics?.decryptErrors.increment()
      if (err instanceof HybridNoiseError) throw err
      throw new TransportDecryptError('transport frame failed authentication', { cause: err })
    }
  }

  sendData (data: Uint8ArrayList): SendResult {
    return { sentBytes: data.byteLength, canSendMore: this.stream.send(this.encrypt(data)) }
  }

  sendReset (err: Error): void {
    this.stream.abort(err)
  }

  sendPause (): void {
    this.stream.pause()
  }

  sendResume (): void {
    this.stream.resume()
  }

  async close (options?: AbortOptions): Promise<void> {
    await this.stream.close(options)
  }
}

export function toMessageStream (stream: MessageStream, ciphers: TransportCiphers, metrics?: NoiseMetrics): MessageStream {
  return new EncryptedMessageStream(stream, ciphers, metrics)
}
