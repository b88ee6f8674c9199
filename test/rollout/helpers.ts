// Test fixtures for the rollout decisions: a static membership view and an entry writer that
// keeps per-feed sequence numbers, as the audit layer would. Signatures are not checked by the
// fold (the caller verified them), so they are zero bytes here.
import type { Entry } from '../../protocols/audit/types.js'
import type { MembershipView, ReleaseBody } from '../../protocols/rollout/types.js'
import { mulberry32 } from '../../simulations/scale/network.js'

export class StaticMembership implements MembershipView {
  revision = 0
  constructor (private readonly roles: Map<string, { admin: boolean, tags: string[] }>) {}
  static of (hosts: string[], admins: string[] = [], tags: Record<string, string[]> = {}): StaticMembership {
    const m = new Map<string, { admin: boolean, tags: string[] }>()
    for (const h of [...admins, ...hosts]) m.set(h, { admin: admins.includes(h), tags: tags[h] ?? [] })
    return new StaticMembership(m)
  }

  isAdmin (peer: string): boolean { return this.roles.get(peer)?.admin === true }
  isMember (peer: string): boolean { return this.roles.has(peer) }
  tagsOf (peer: string): string[] { return this.roles.get(peer)?.tags ?? [] }
  members (): string[] { return [...this.roles.keys()] }
  revoke (peer: string): void {
    this.roles.delete(peer)
    this.revision++
  }
}

export class Writer {
  private readonly seqs = new Map<string, number>()
  write (feed: string, kind: string, body: unknown, ts = 0): Entry {
    const seq = this.seqs.get(feed) ?? 0
    this.seqs.set(feed, seq + 1)
    return { feed, seq, prev: new Uint8Array(32), ts, kind, body, sig: new Uint8Array(64) }
  }
}

export const PATH_A = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-system-a'
export const PATH_B = '/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-system-b'

/** Host ids in the base58 alphabet, as the schema wants peer ids. */
export function hostIds (n: number, prefix = 'Host'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${(i + 1).toString().replaceAll('0', 'z')}`)
}

export function releaseBody (over: Partial<ReleaseBody> = {}): ReleaseBody {
  return {
    id: 'r1',
    number: 1,
    targets: [{ path: PATH_A, sources: ['peers'] }],
    waves: [
      { count: 1, gate: { healthy: 100, soakMs: 30_000 } },
      { percent: 25, gate: { healthy: 100, soakMs: 30_000 } },
      { percent: 100, gate: { healthy: 90, soakMs: 0 } }
    ],
    maxFailures: 2,
    ...over
  }
}

/** A deterministic PRNG (the simulator's mulberry32) so a failing order replays from its seed. */
export const rng = mulberry32

export function shuffle<T> (items: T[], rand: () => number): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
