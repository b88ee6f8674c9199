// What `release publish` checks before it asks the daemon to sign: a release whose selectors
// match no member, or whose path no source can deliver, would be signed into every host's log
// and then wait forever. Each problem is one line saying which flag and why (`--force` skips).
import type { PublishParams } from './releases.js'

/** What the check reads of a member row (node/routes.ts MemberRow). */
export interface MemberLike { peerId: string, tags: string[], revoked: boolean, name?: string | null }

export function unmatchedSelectors (p: Pick<PublishParams, 'targets' | 'waves'>, members: MemberLike[]): string[] {
  const live = members.filter((m) => !m.revoked)
  const tagged = (tag: string): boolean => live.some((m) => m.tags.includes(tag))
  const host = (id: string): boolean => live.some((m) => m.peerId === id || m.name === id)
  const problems: string[] = []
  for (const t of p.targets) {
    if (t.tag !== undefined && !tagged(t.tag)) problems.push(`target tag:${t.tag}: no member has tag "${t.tag}"`)
    if (t.host !== undefined && !host(t.host)) problems.push(`target host:${t.host}: no member is "${t.host}"`)
  }
  p.waves.forEach((w, i) => {
    if (w.tag !== undefined && !tagged(w.tag)) problems.push(`wave ${i + 1} tag:${w.tag}: no member has tag "${w.tag}"`)
    for (const h of w.hosts ?? []) if (!host(h)) problems.push(`wave ${i + 1} host:${h}: no member is "${h}"`)
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
