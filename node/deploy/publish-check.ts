// What `release publish` checks before it asks the daemon to sign: a release whose selectors
// match no member, or whose path no source can deliver, would be signed into every host's log
// and then wait forever. Each problem is one line saying which flag and why (`--force` skips).
import type { PublishParams } from './releases.js'
import { resolveHost, rowHosts } from '../host-names.js'

/** What the check reads of a member row (node/routes.ts MemberRow). */
export interface MemberLike { peerId: string, tags: string[], revoked: boolean, name?: string | null }

export function unmatchedSelectors (p: Pick<PublishParams, 'targets' | 'waves'>, members: MemberLike[]): string[] {
  const live = members.filter((m) => !m.revoked)
  const tagged = (tag: string): boolean => live.some((m) => m.tags.includes(tag))
  const hosts = rowHosts(members)
  // Resolved as the daemon will resolve it before it signs: a name, an id or a unique prefix.
  const noMember = (text: string): string | undefined => {
    let peer: string
    try {
      peer = resolveHost(hosts, text)
    } catch (err) {
      return (err as Error).message
    }
    return live.some((m) => m.peerId === peer) ? undefined : `no member is "${text}"`
  }
  const problems: string[] = []
  for (const t of p.targets) {
    if (t.tag !== undefined && !tagged(t.tag)) problems.push(`target tag:${t.tag}: no member has tag "${t.tag}"`)
    const why = t.host !== undefined ? noMember(t.host) : undefined
    if (why !== undefined) problems.push(`target host:${t.host}: ${why}`)
  }
  p.waves.forEach((w, i) => {
    if (w.tag !== undefined && !tagged(w.tag)) problems.push(`wave ${i + 1} tag:${w.tag}: no member has tag "${w.tag}"`)
    for (const h of w.hosts ?? []) {
      const why = noMember(h)
      if (why !== undefined) problems.push(`wave ${i + 1} host:${h}: ${why}`)
    }
  })
  return problems
}

/** Each distinct (path, sources) of the targets, checked once by `unavailable`. */
export async function unavailablePaths (p: Pick<PublishParams, 'targets'>, unavailable: (path: string, sources: string[]) => Promise<string | undefined>): Promise<string[]> {
  const seen = new Map<string, { path: string, sources: string[] }>()
  for (const t of p.targets) seen.set(JSON.stringify([t.path, t.sources]), { path: t.path, sources: t.sources })
  const problems: string[] = []
  for (const { path, sources } of seen.values()) {
    const why = await unavailable(path, sources)
    if (why !== undefined) problems.push(why)
  }
  return problems
}
