// `npm run vectors -- --base N [--crypto native|noble]`: prints the known-answer record of
// one handshake as a single JSON line, to compare with other implementations' vectors.
import { parseArgs } from 'node:util'
import { nativeCrypto, nobleCrypto } from './crypto.js'
import { computeVector } from './vectors.js'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    crypto: { type: 'string', default: 'noble' }
  }
})

try {
  if (values.base === undefined || !/^\d+$/.test(values.base)) {
    throw new Error('usage: vectors --base N (N an integer 0..249) [--crypto native|noble]')
  }
  if (values.crypto !== 'native' && values.crypto !== 'noble') {
    throw new Error('--crypto must be native or noble')
  }
  const v = computeVector(Number(values.base), values.crypto === 'native' ? nativeCrypto : nobleCrypto)
  console.log(JSON.stringify({
    handshake_hash: v.handshake_hash,
    cs1_k: v.cs1_k,
    cs2_k: v.cs2_k,
    msg_c: v.msg_c,
    msg_a_bytes: v.msg_a_bytes,
    msg_b_bytes: v.msg_b_bytes
  }))
} catch (err) {
  console.error(`vectors: ${(err as Error).message}`)
  process.exitCode = 1
}
