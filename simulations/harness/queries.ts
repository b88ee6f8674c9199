// What the multi-process tests and scenarios poll, read over a host's control API in-process:
// the same routes and JSON the CLI's `--json` prints, without a Node process per poll (a CLI
// start costs about a second on a loaded machine, and a wait loop polls several hosts). The CLI
// itself stays under test wherever its own behaviour is what is checked.
import type { FleetHost } from './fleet.js'
import type { EntryRow, MemberRow, PeerInfo } from '../../node/routes.js'
import type { ReleaseStatus } from '../../protocols/rollout/index.js'

export interface LogQuery { kind?: string, feed?: string }

/** `audit log --json` as rows, optionally one kind or one feed. */
export async function auditLog (host: FleetHost, q: LogQuery = {}): Promise<EntryRow[]> {
  const p = new URLSearchParams()
  if (q.kind !== undefined) p.set('kind', q.kind)
  if (q.feed !== undefined) p.set('feed', q.feed)
  const qs = p.toString()
  return host.get<EntryRow[]>(`/v1/audit/log${qs === '' ? '' : `?${qs}`}`)
}

/** The entries of the given kinds that name `release` in their body. */
export async function releaseEntries (host: FleetHost, release: string, kinds: string[]): Promise<EntryRow[]> {
  const rows = kinds.length === 1 ? await auditLog(host, { kind: kinds[0] }) : await auditLog(host)
  return rows.filter((e) => kinds.includes(e.kind) && (e.body as { release?: string }).release === release)
}

/** `release status ID --json` */
export async function releaseStatus (host: FleetHost, id: string): Promise<ReleaseStatus> {
  return host.get<ReleaseStatus>(`/v1/releases/${encodeURIComponent(id)}`)
}

/** `members --json` */
export async function memberRows (host: FleetHost): Promise<MemberRow[]> {
  return host.get<MemberRow[]>('/v1/members')
}

/** `peers --json` */
export async function peerRows (host: FleetHost): Promise<PeerInfo[]> {
  return host.get<PeerInfo[]>('/v1/peers')
}
