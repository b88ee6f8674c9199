// What the encrypter counts, registered on libp2p's metrics when the node has them.
import type { Counter, CounterGroup, Metrics } from '@libp2p/interface'

export interface NoiseMetrics {
  handshakeSuccesses: Counter
  /** by reason: the typed error's code, or the error's name when it has none */
  handshakeErrors: CounterGroup
  encryptedFrames: Counter
  decryptedFrames: Counter
  decryptErrors: Counter
}

export function registerMetrics (metrics: Metrics): NoiseMetrics {
  return {
    handshakeSuccesses: metrics.registerCounter('fleetmesh_noise_hfs_handshake_successes_total', {
      help: 'Completed hybrid Noise XXhfs handshakes'
    }),
    handshakeErrors: metrics.registerCounterGroup('fleetmesh_noise_hfs_handshake_errors_total', {
      label: 'reason',
      help: 'Failed hybrid Noise XXhfs handshakes by reason'
    }),
    encryptedFrames: metrics.registerCounter('fleetmesh_noise_hfs_encrypted_frames_total', {
      help: 'Transport frames encrypted'
    }),
    decryptedFrames: metrics.registerCounter('fleetmesh_noise_hfs_decrypted_frames_total', {
      help: 'Transport frames decrypted'
    }),
    decryptErrors: metrics.registerCounter('fleetmesh_noise_hfs_decrypt_errors_total', {
      help: 'Transport frames that failed authentication'
    })
  }
}
