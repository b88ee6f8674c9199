// Ephemeral key pairs generated ahead of need. Making the X25519 and ML-KEM-768 pairs costs
// ~70 µs, all of it on the handshake's critical path (before message A or B can go out);
// generating the next pair once the event loop is free takes it off that path. Each pair is
// handed out exactly once and then dropped, so it is as fresh as one made on demand; it only
// sits in memory for one idle period longer.
import type { DhKeyPair, HybridCrypto, KemKeyPair } from './crypto.js'
import type { EphemeralSource } from './protocol.js'

export class PregeneratedEphemerals implements EphemeralSource {
  private nextDh?: DhKeyPair
  private nextKem?: KemKeyPair
  // only initiators use KEM pairs: an encrypter that only answers never makes one
  private usesKem = false
  private refillScheduled = false

  constructor (private readonly crypto: HybridCrypto) {}

  dh (): DhKeyPair {
    const pair = this.nextDh ?? this.crypto.generateDhKeyPair()
    this.nextDh = undefined
    this.scheduleRefill()
    return pair
  }

  kem (): KemKeyPair {
    this.usesKem = true
    const pair = this.nextKem ?? this.crypto.generateKemKeyPair()
    this.nextKem = undefined
    this.scheduleRefill()
    return pair
  }

  private scheduleRefill (): void {
    if (this.refillScheduled) return
    this.refillScheduled = true
    setImmediate(() => {
      this.refillScheduled = false
      this.nextDh ??= this.crypto.generateDhKeyPair()
      if (this.usesKem) this.nextKem ??= this.crypto.generateKemKeyPair()
    })
  }
}
