// What the encrypter counts, registered on libp2p's metrics when the node has them.
import type { Counter, Metrics } from '@libp2p/interface'

export interface NoiseMetrics {
  handshakeSuccesses: Counter
  handshakeErrors: Counter
  encryptedFrames: Counter
  decryptedFrames: Counter
  decryptErrors: Counter
}

export function registerMetrics (metrics: Metrics): NoiseMetrics {
  return {
    handshakeSuccesses: metrics.registerCounter('fleetmesh_noise_hfs_handshake_successes_total', {
      help: 'Completed hybrid Noise XXhfs handshakes'
    }),
    handshakeErrors: metrics.registerCounter('fleetmesh_noise_hfs_handshake_errors_total', {
      help: 'Failed hybrid Noise XXhfs handshakes'
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
