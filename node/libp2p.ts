// The libp2p stack every fleetmesh host runs. One place decides transports, the encrypter,
// the muxer and the services, so tests, simulations and the daemon run the same mesh.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub } from '@libp2p/gossipsub'
import { hybridNoise } from '../crypto/noise/index.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { concatBytes } from '@noble/hashes/utils.js'
import type { ConnectionGater, Metrics, PrivateKey } from '@libp2p/interface'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { Libp2p } from 'libp2p'

// A type alias, not an interface: libp2p's ServiceMap constraint needs an index signature.
export type MeshServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
}

export type MeshLibp2p = Libp2p<MeshServices>

export interface MeshLibp2pOptions {
  privateKey: PrivateKey
  listen: string[]
  gater?: ConnectionGater
  /** gossipsub's application-specific score: how the membership gate reaches gossip */
  gossipScore?: (peer: string) => number
  /** libp2p's metrics component: handshakes, dials and stream bytes reach /metrics through it */
  metrics?: Metrics
}

const EMPTY = new Uint8Array(0)

export async function createMeshLibp2p (opts: MeshLibp2pOptions): Promise<MeshLibp2p> {
  return createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    // Only the hybrid encrypter: offering classic Noise beside it would let an on-path attacker
    // strip the post-quantum one during plaintext multistream-select.
    connectionEncrypters: [hybridNoise()],
    streamMuxers: [yamux()],
    connectionGater: opts.gater,
    ...(opts.metrics !== undefined ? { metrics: () => opts.metrics! } : {}),
    connectionManager: {
      // A host returning from downtime is dialled by many members at once; the default of
      // 5 inbound connections per second would refuse most of them.
      inboundConnectionThreshold: 100,
      maxIncomingPendingConnections: 100
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        scoreParams: {
          ...(opts.gossipScore !== undefined ? { appSpecificScore: opts.gossipScore } : {}),
          // IP colocation scoring is a Sybil defence for open networks. Here every peer is an
          // admitted member, authenticated by its key, and many hosts (containers, NAT, tests on
          // loopback) share an address: the penalty would graylist honest members.
          IPColocationFactorWeight: 0
        },
        // Without a fast id gossipsub re-verifies the signature of every duplicate it receives.
        fastMsgIdFn: (msg) => Buffer.from(sha256(concatBytes(msg.from ?? EMPTY, msg.seqno ?? EMPTY, msg.data ?? EMPTY))).toString('base64')
      })
    }
  })
}
