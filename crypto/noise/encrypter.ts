// The libp2p ConnectionEncrypter: frames the raw connection, runs the XXhfs handshake in the
// role libp2p gives us, and returns the encrypted MessageStream with the authenticated peer.
import { serviceCapabilities } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { MAX_NOISE_MESSAGE, decodeLength, encodeLength } from './codec.js'
import { defaultCrypto } from './crypto.js'
import { PregeneratedEphemerals } from './ephemerals.js'
import { UnexpectedPeerError } from './errors.js'
import { performHandshakeInitiator, performHandshakeResponder, signStaticKey } from './handshake.js'
import { registerMetrics } from './metrics.js'
import { ZEROLEN } from './protocol.js'
import { toMessageStream } from './transport.js'
import type { NoiseExtensions } from './codec.js'
import type { DhKeyPair, HybridCrypto } from './crypto.js'
import type { HandshakeParams, HandshakeResult, LocalIdentity } from './handshake.js'
import type { NoiseMetrics } from './metrics.js'
import type {
  ComponentLogger, ConnectionEncrypter, Logger, MessageStream, Metrics, PeerId, PrivateKey,
  SecureConnectionOptions, SecuredConnection, StreamMuxerFactory, Upgrader
} from '@libp2p/interface'

export const HYBRID_NOISE_PROTOCOL = '/noise-mlkem768-hfs/0.2.0'

export interface HybridNoiseInit {
  /** primitives; node:crypto unless given */
  crypto?: HybridCrypto
  /** bytes both peers must agree on, mixed into the transcript */
  prologue?: Uint8Array
}

export interface HybridNoiseComponents {
  privateKey: PrivateKey
  logger: ComponentLogger
  /** lets the handshake agree on a stream muxer (saves a round trip); absent → libp2p negotiates it */
  upgrader?: Pick<Upgrader, 'getStreamMuxers'>
  metrics?: Metrics
}

type Role = (params: HandshakeParams, options?: SecureConnectionOptions) => Promise<HandshakeResult>

export class HybridNoise implements ConnectionEncrypter<NoiseExtensions> {
  readonly protocol = HYBRID_NOISE_PROTOCOL
  readonly [Symbol.toStringTag] = 'fleetmesh/hybrid-noise'
  readonly [serviceCapabilities]: string[] = ['@libp2p/connection-encryption']

  private readonly crypto: HybridCrypto
  private readonly prologue: Uint8Array
  // one static key per encrypter, as libp2p-noise: its secrecy rests on the ephemerals and
  // the KEM, and the identity signature binds it to the peer id
  private readonly staticKey: DhKeyPair
  private identity?: Promise<LocalIdentity>
  private readonly ephemerals: PregeneratedEphemerals
  private readonly metrics?: NoiseMetrics
  private readonly log: Logger

  constructor (private readonly components: HybridNoiseComponents, init: HybridNoiseInit = {}) {
    this.crypto = init.crypto ?? defaultCrypto
    this.prologue = init.prologue ?? ZEROLEN
    this.staticKey = this.crypto.generateDhKeyPair()
    this.ephemerals = new PregeneratedEphemerals(this.crypto)
    this.log = components.logger.forComponent('fleetmesh:noise-hfs')
    if (components.metrics !== undefined) this.metrics = registerMetrics(components.metrics)
  }

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection<NoiseExtensions>> {
    return await this.secure(connection, performHandshakeInitiator, options)
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection<NoiseExtensions>> {
    return await this.secure(connection, performHandshakeResponder, options)
  }

  private async secure (connection: MessageStream, role: Role, options?: SecureConnectionOptions): Promise<SecuredConnection<NoiseExtensions>> {
    const channel = lpStream(connection, { lengthEncoder: encodeLength, lengthDecoder: decodeLength, maxDataLength: MAX_NOISE_MESSAGE })
    const muxers = options?.skipStreamMuxerNegotiation === true ? undefined : this.components.upgrader?.getStreamMuxers()
    let handshake: HandshakeResult
    let remotePeer: PeerId
    try {
      handshake = await role({
        channel,
        crypto: this.crypto,
        identity: await this.localIdentity(),
        prologue: this.prologue,
        s: this.staticKey,
        ephemerals: this.ephemerals,
        remoteIdentityKey: options?.remotePeer?.publicKey,
        extensions: { webtransportCerthashes: [], streamMuxers: muxers === undefined ? [] : [...muxers.keys()] },
        log: connection.log?.newScope('noise-hfs') ?? this.log
      }, options)
      remotePeer = peerIdFromPublicKey(handshake.remoteIdentityKey)
      // the handshake compared keys when the expected peer id embeds one; this also covers
      // peer ids that are only a hash of their key (RSA)
      if (options?.remotePeer !== undefined && !options.remotePeer.equals(remotePeer)) {
        throw new UnexpectedPeerError(`remote is ${remotePeer}, not the expected ${options.remotePeer}`)
      }
    } catch (err) {
      this.metrics?.handshakeErrors.increment({ [(err as { code?: string }).code ?? (err as Error).name ?? 'Error']: true })
      throw err
    }
    this.metrics?.handshakeSuccesses.increment()

    return {
      connection: toMessageStream(channel.unwrap(), handshake, this.metrics),
      remoteExtensions: handshake.remoteExtensions,
      remotePeer,
      streamMuxer: selectMuxer(muxers, handshake.remoteExtensions?.streamMuxers, role === performHandshakeInitiator)
    }
  }

  private async localIdentity (): Promise<LocalIdentity> {
    this.identity ??= signStaticKey(this.components.privateKey, this.staticKey.publicKey)
    try {
      return await this.identity
    } catch (err) {
      this.identity = undefined // a failed signature is retried by the next handshake
      throw err
    }
  }
}

/**
 * The muxer agreed in the handshake: the first of the initiator's list that the responder
 * also offers, so both sides pick the same one whatever order the responder listed. When
 * either side listed none, libp2p negotiates the muxer itself after the handshake.
 */
function selectMuxer (local: Map<string, StreamMuxerFactory> | undefined, remote: string[] | undefined, initiator: boolean): StreamMuxerFactory | undefined {
  if (local === undefined || local.size === 0 || remote === undefined || remote.length === 0) return undefined
  const preference = initiator ? [...local.keys()] : remote
  const offered = new Set(initiator ? remote : local.keys())
  const chosen = preference.find(protocol => offered.has(protocol))
  return chosen === undefined ? undefined : local.get(chosen)
}
