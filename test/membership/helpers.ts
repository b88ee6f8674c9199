// Builders for membership tests: real Ed25519 peer ids (the schemas insist on them) and
// entries whose signature bytes are a digest of their content, so identical entries compare
// equal and different ones at the same (feed, seq) look like an equivocation.
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Entry } from '../../protocols/audit/types.js'
import { mulberry32 } from '../../simulations/scale/network.js'

export const MESH = 'mesh-test'

export async function peers (n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
  return out
}

export function entry (feed: string, seq: number, ts: number, kind: string, body: unknown): Entry {
  const sig = createHash('sha512').update(JSON.stringify([feed, seq, ts, kind, body])).digest()
  return { feed, seq, prev: new Uint8Array(32), ts, kind, body, sig: new Uint8Array(sig) }
}

/** Appends entries to per-feed chains so seqs stay contiguous, like a real log. */
export class Log {
  readonly entries: Entry[] = []
  private readonly next = new Map<string, number>()

  add (feed: string, ts: number, kind: string, body: unknown): Entry {
    const seq = this.next.get(feed) ?? 0
    this.next.set(feed, seq + 1)
    const e = entry(feed, seq, ts, kind, body)
    this.entries.push(e)
    return e
  }

  genesis (founder: string, ts = 1000): Entry {
    return this.add(founder, ts, 'genesis', { mesh: MESH, name: 'test mesh', founder })
  }

  /** the seq the next entry of `feed` will get */
  seqOf (feed: string): number {
    return this.next.get(feed) ?? 0
  }
}

/** A deterministic PRNG (the simulator's mulberry32) so a failing order replays from its seed. */
export const rng = mulberry32

export function shuffled<T> (items: T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
