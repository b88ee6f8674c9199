// libp2p's connection-encrypter compliance suite against the hybrid encrypter, once per
// crypto implementation (run by `npm run test:compliance`).
import { describe } from 'mocha'
import tests from '@libp2p/interface-compliance-tests/connection-encryption'
import { defaultLogger } from '@libp2p/logger'
import { hybridNoise, nativeCrypto, nobleCrypto } from '../../crypto/noise/index.js'

for (const crypto of [nativeCrypto, nobleCrypto]) {
  describe(`hybrid noise (${crypto.name})`, () => {
    tests({
      async setup (opts) {
        if (opts === undefined) throw new Error('the suite passes the private key')
        return hybridNoise({ crypto })({
          privateKey: opts.privateKey,
          logger: defaultLogger(),
          upgrader: { getStreamMuxers: () => new Map() }
        })
      },
      async teardown () {}
    })
  })
}
