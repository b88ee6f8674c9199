// The attacks from outside the member set (issue 13, findings 4 and 10, and revocation): a
// stranger flooding an honest host with pairing attempts for a mesh it guesses, and the member,
// once revoked, dialling back in.
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { FleetHost } from '../harness/fleet.js'
import { xwingPublicKey } from '../../crypto/xwing.js'
import { createMeshLibp2p } from '../../node/libp2p.js'
import { PAIRING_PROTOCOL, PairingError, requestPairing } from '../../protocols/pairing/index.js'
import type { Attacker } from './attacker.js'
import { eventually, type Outcome } from './observe.js'

/**
 * A stranger asks `target` to pair `n` times with made-up codes. It must be cut off (rate
 * limited, or hung up on by the gate) well before `n`, and no refusal may name the mesh.
 */
export async function pairingFlood (target: FleetHost, meshId: string, n: number): Promise<Outcome> {
  const privateKey = await generateKeyPair('Ed25519')
  const stranger = await createMeshLibp2p({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const codes = new Map<string, number>()
  let leaked = false
  try {
    const [addr] = target.address.split('/p2p/')
    for (let i = 0; i < n; i++) {
      const guess = { meshId: `guess-${i}`, inviterPeerId: target.peerId, founderPeerId: target.peerId, addrs: [addr], secret: new Uint8Array(randomBytes(32)), expiresAt: 2_000_000_000, uses: 1, role: 'host' as const, tags: [] }
      try {
        await requestPairing(guess, {
          selfPeerId: stranger.peerId.toString(),
          xwingPublicKey: xwingPublicKey(new Uint8Array(randomBytes(32))),
          dial: async (peer, addrs, protocols, signal) => await stranger.dialProtocol(addrs.map((a) => multiaddr(`${a}/p2p/${peer}`)), protocols, { signal })
        })
        codes.set('ADMITTED', (codes.get('ADMITTED') ?? 0) + 1)
      } catch (err) {
        const code = err instanceof PairingError ? err.code : 'OTHER'
        codes.set(code, (codes.get(code) ?? 0) + 1)
        leaked ||= (err as Error).message.includes(meshId)
      }
    }
  } finally {
    await stranger.stop()
  }
  const cutOff = (codes.get('RATE_LIMITED') ?? 0) + (codes.get('INVITER_UNREACHABLE') ?? 0)
  process.stderr.write(`adversary: pairing flood answers ${JSON.stringify(Object.fromEntries(codes))}\n`)
  return { attack: 'pairing-attempt flood from a stranger', blocked: cutOff > 0 && !codes.has('ADMITTED') && !leaked }
}

/** The admin revokes the member; the member then dials every honest host again. */
export async function revokedReconnects (m: Attacker, admin: FleetHost, honest: FleetHost[]): Promise<Outcome> {
  await admin.json(['revoke', m.id, '--reason', 'adversary scenario'])
  const everywhere = await eventually(async () => {
    for (const h of honest) {
      const members = await h.json<Array<{ peerId: string, revoked: boolean }>>(['members'])
      if (members.find((x) => x.peerId === m.id)?.revoked !== true) return false
    }
    return true
  }, 60_000)
  if (!everywhere) throw new Error('the revoke never reached every honest host')
  for (const c of m.libp2p.getConnections()) await c.close().catch(() => {})
  let refused = 0
  for (const h of honest) {
    try {
      await m.dial(h.address)
      // the gate may let the handshake finish and hang up at once: a stream must not open
      await m.libp2p.dialProtocol(multiaddr(h.address), PAIRING_PROTOCOL, { signal: AbortSignal.timeout(5000) })
    } catch {
      refused++
    }
  }
  return { attack: 'revoked member reconnecting', blocked: refused === honest.length }
}
