// Serving and fetching Nix closures between mesh members over /fleetmesh/closure/1.0.0.
// The server sends the closure's metadata from its own store and the export stream; the
// fetcher hands both to the local store's import, which stages and verifies every path before
// anything reaches the store. Without trusted signing keys that verification proves the bytes
// match what the peer claimed, which catches corruption and a broken peer; against a lying
// member only Nix signatures by keys this host trusts prove the content itself.
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { CLOSURE_PROTOCOL, MAX_HEADER_BYTES, MAX_REQUEST_BYTES, decodeHeader, decodeRequest, encodeHeader, encodeRequest, frame, storePath, type ClosureHeader } from './codec.js'
import { ClosureStoreError, ClosuresError, type FetchAttempt } from './errors.js'
import type { ClosureStore, PathInfo } from './store.js'
import { FrameReader, exactly, readPaced, send } from './stream.js'

export interface ClosuresLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface ClosureServiceOptions {
  libp2p: Libp2p
  /** Where served closures come from and fetched ones go, verified on the way in. */
  store: ClosureStore
  /** Mesh membership gate, asked for every peer served and every peer fetched from. */
  allowPeer: (peer: string) => boolean
  /** Largest closure export accepted by fetch(); default 16 GiB. */
  maxBytes?: number
  /** Closures served at the same time; more requests get PEER_BUSY and try another peer. Default 4. */
  maxTransfers?: number
  /** How long fetch() waits for a peer's header; the peer measures its export first. Default 2 min. */
  headerTimeoutMs?: number
  log?: ClosuresLogger
}

const DEFAULT_MAX_BYTES = 16 * 1024 ** 3
const DEFAULT_MAX_TRANSFERS = 4
const DEFAULT_HEADER_TIMEOUT_MS = 2 * 60_000
/** A requester that connects and says nothing must not hold a transfer slot. */
const REQUEST_TIMEOUT_MS = 10_000
const SIZE_CACHE_ENTRIES = 256

export class ClosureService {
  private readonly libp2p: Libp2p
  private readonly store: ClosureStore
  private readonly allowPeer: (peer: string) => boolean
  private readonly opts: ClosureServiceOptions
  private readonly maxBytes: number
  private readonly maxTransfers: number
  private readonly log: ClosuresLogger | undefined
  private readonly streams = new Set<Stream>()
  /**
   * Export length by path. Store paths are immutable, so an export's length never changes, and
   * during a rollout many members ask one host for the same generation: measure it once.
   */
  private readonly sizes = new Map<string, number>()
  private transfers = 0
  private started = false

  constructor (opts: ClosureServiceOptions) {
    this.opts = opts
    this.libp2p = opts.libp2p
    this.store = opts.store
    this.allowPeer = opts.allowPeer
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES
    this.maxTransfers = opts.maxTransfers ?? DEFAULT_MAX_TRANSFERS
    this.log = opts.log
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    // Beyond maxTransfers a stream is still accepted, to answer PEER_BUSY rather than a reset.
    await this.libp2p.handle(CLOSURE_PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, { maxInboundStreams: this.maxTransfers + 4 })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.libp2p.unhandle(CLOSURE_PROTOCOL)
    for (const stream of this.streams) stream.abort(new ClosuresError('ABORTED', 'closure service stopped'))
    this.streams.clear()
  }

  /**
   * Makes `path` valid in the local store, fetching its closure from the first of `peers` (peer
   * id strings, tried in order) that delivers one passing verification. Returns the closure's
   * metadata. Throws ClosuresError FETCH_FAILED with every peer's reason in `attempts`.
   */
  async fetch (path: string, peers: string[], signal?: AbortSignal): Promise<PathInfo[]> {
    const wanted = storePath(path, 'path', 'INVALID_STORE_PATH')
    const local = await this.store.info(wanted)
    if (local !== null) return local
    const attempts: FetchAttempt[] = []
    for (const peer of peers) {
      if (signal?.aborted === true) break
      try {
        const infos = await this.fetchFrom(peer, wanted, signal)
        this.log?.info({ peer, path: wanted, paths: infos.length }, 'closure fetched from peer')
        return infos
      } catch (err) {
        const error = attemptError(err)
        attempts.push({ peer, error })
        this.log?.warn({ peer, path: wanted, code: error.code, err: error.message }, 'closure fetch from peer failed')
      }
    }
    if (signal?.aborted === true) throw new ClosuresError('ABORTED', `fetch of ${wanted} aborted`, { attempts })
    const why = attempts.length === 0 ? 'no peers to ask' : attempts.map(a => `${a.peer}: ${a.error.code}: ${a.error.message}`).join('; ')
    throw new ClosuresError('FETCH_FAILED', `no peer delivered ${wanted}: ${why}`, { attempts })
  }

  private async fetchFrom (peer: string, path: string, signal?: AbortSignal): Promise<PathInfo[]> {
    if (!this.allowPeer(peer)) throw new ClosuresError('PEER_NOT_ALLOWED', `${peer} is not a member this host fetches from`)
    let stream: Stream
    try {
      stream = await this.libp2p.dialProtocol(parsePeer(peer), CLOSURE_PROTOCOL, { signal })
    } catch (err) {
      if (err instanceof ClosuresError) throw err
      throw new ClosuresError('PEER_UNREACHABLE', `cannot open ${CLOSURE_PROTOCOL} to ${peer}: ${(err as Error).message}`, { cause: err })
    }
    this.streams.add(stream)
    const onAbort = (): void => { stream.abort(new ClosuresError('ABORTED', 'fetch aborted')) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const reader = new FrameReader(readPaced(stream))
      await send(stream, frame(encodeRequest({ path })), signal)
      await stream.close()
      const header = await this.readHeader(stream, reader)
      if (!header.ok) throw new ClosuresError(header.code, `${peer} refused: ${header.message}`)
      if (!header.infos.some(i => i.path === path)) throw new ClosuresError('MESSAGE_MALFORMED', `${peer} answered with a closure that does not contain ${path}`)
      if (header.bytes > this.maxBytes) throw new ClosuresError('MESSAGE_TOO_LARGE', `${peer} announced ${header.bytes} bytes, over the limit of ${this.maxBytes}`)
      try {
        return await this.store.import(exactly(reader.rest(), header.bytes), path, header.infos, { maxBytes: this.maxBytes })
      } catch (err) {
        throw storeFailure(err)
      }
    } catch (err) {
      stream.abort(err as Error)
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
      this.streams.delete(stream)
    }
  }

  private async readHeader (stream: Stream, reader: FrameReader): Promise<ClosureHeader> {
    const ms = this.opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS
    const timer = setTimeout(() => { stream.abort(new ClosuresError('PEER_UNREACHABLE', `no answer within ${ms} ms`)) }, ms)
    try {
      return decodeHeader(await reader.frame(MAX_HEADER_BYTES))
    } finally {
      clearTimeout(timer)
    }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    this.streams.add(stream)
    let path: string | undefined
    let slot = false
    let sent = false
    try {
      // The request is read before any answer, refusals included: an answer sent and closed
      // while the requester's protocol negotiation is still reading can be lost in libp2p 3.
      path = await this.readRequest(stream)
      if (!this.allowPeer(peer)) throw new ClosuresError('PEER_REFUSED', 'this host serves closures to mesh members only')
      if (this.transfers >= this.maxTransfers) throw new ClosuresError('PEER_BUSY', `already serving ${this.maxTransfers} closures`)
      this.transfers++
      slot = true
      const infos = await this.store.info(path)
      if (infos === null) throw new ClosuresError('PATH_NOT_FOUND', `${path} is not valid in this host's store`)
      const bytes = await this.exportSize(path)
      await send(stream, frame(encodeHeader({ ok: true, infos, bytes })))
      sent = true
      for await (const chunk of this.store.export(path)) await send(stream, chunk)
      await stream.close()
      this.log?.info({ peer, path, bytes }, 'closure served')
    } catch (err) {
      if (sent) {
        this.log?.warn({ peer, path, err: (err as Error).message }, 'closure transfer broke off')
        stream.abort(err as Error)
      } else {
        await this.refuse(stream, peer, err instanceof ClosuresError ? err : new ClosuresError('PEER_FAILED', 'could not export the closure', { cause: err }), path)
      }
    } finally {
      if (slot) this.transfers--
      this.streams.delete(stream)
    }
  }

  private async readRequest (stream: Stream): Promise<string> {
    const timer = setTimeout(() => { stream.abort(new ClosuresError('MESSAGE_MALFORMED', 'no request in time')) }, REQUEST_TIMEOUT_MS)
    try {
      return decodeRequest(await new FrameReader(readPaced(stream)).frame(MAX_REQUEST_BYTES)).path
    } finally {
      clearTimeout(timer)
    }
  }

  private async refuse (stream: Stream, peer: string, error: ClosuresError, path?: string): Promise<void> {
    // The peer learns the code; local causes (Nix's stderr) stay in this host's log.
    this.log?.warn({ peer, path, code: error.code, err: error.message, cause: (error.cause as Error | undefined)?.message }, 'closure request refused')
    try {
      await send(stream, frame(encodeHeader({ ok: false, code: error.code, message: error.message })))
      await stream.close()
    } catch {
      stream.abort(error)
    }
  }

  private async exportSize (path: string): Promise<number> {
    const known = this.sizes.get(path)
    if (known !== undefined) return known
    let bytes = 0
    for await (const chunk of this.store.export(path)) bytes += chunk.byteLength
    if (this.sizes.size >= SIZE_CACHE_ENTRIES) this.sizes.delete(this.sizes.keys().next().value as string)
    this.sizes.set(path, bytes)
    return bytes
  }
}

function parsePeer (peer: string): PeerId {
  try {
    return peerIdFromString(peer)
  } catch (err) {
    throw new ClosuresError('PEER_UNREACHABLE', `not a peer id: ${JSON.stringify(peer.slice(0, 100))}`, { cause: err })
  }
}

/** What a failed import says about the peer: the stream's own reason when the source failed, else the store's refusal. */
function storeFailure (err: unknown): unknown {
  const cause = (err as Error | undefined)?.cause
  if (cause instanceof ClosuresError) return cause
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? new ClosureStoreError(code, (err as Error).message, { cause: err }) : err
}

function attemptError (err: unknown): ClosuresError | ClosureStoreError {
  if (err instanceof ClosuresError || err instanceof ClosureStoreError) return err
  return new ClosuresError('PEER_UNREACHABLE', (err as Error)?.message ?? String(err), { cause: err })
}
