// Host names as operators use them: what a view prints for a host, and which host a command
// means when it is given a name, an id or a piece of one. A name is a claim its host made when
// it was admitted (protocols/membership), not an identity: two hosts may claim one name. Both stay
// members; views then add a short id suffix (`web#a1B2c3`) and a command naming just `web` is
// refused with the candidates' ids, so an ambiguous name never picks a host by chance.
import { hostname } from 'node:os'
import { isPeerId } from '../crypto/ids.js'
import { HOST_NAME_RE } from '../protocols/membership/index.js'
import { didYouMean } from './config.js'
import { NodeError } from './errors.js'

/** `revoked`: a host the log revoked; a command may still name it, by its id where a member holds its name. */
export interface NamedHost { peer: string, name?: string, revoked?: boolean }

/** Characters of a peer id's end shown to tell hosts apart (every Ed25519 id starts alike). */
const SUFFIX_CHARS = 6
/** A shorter id prefix than this names nothing: every Ed25519 peer id starts with `12D3KooW`. */
const MIN_PREFIX_CHARS = 10

/** `12D3KooW…a1B2c3`: a peer id short enough for a table, long enough to tell hosts apart. */
export function shortId (peer: string): string {
  return peer.length > 16 ? `${peer.slice(0, 8)}…${peer.slice(-SUFFIX_CHARS)}` : peer
}

/** The host's name, or its short id when it has none. */
export function hostLabel (peer: string, name?: string): string {
  return name ?? shortId(peer)
}

/** Every host's label, with `#` and the id's last characters where hosts share a name. */
export function hostLabels (hosts: Iterable<NamedHost>): Map<string, string> {
  const list = [...hosts]
  const count = new Map<string, number>()
  for (const h of list) if (h.name !== undefined) count.set(h.name, (count.get(h.name) ?? 0) + 1)
  return new Map(list.map((h) => [h.peer, h.name !== undefined && count.get(h.name)! > 1 ? `${h.name}#${h.peer.slice(-SUFFIX_CHARS)}` : hostLabel(h.peer, h.name)]))
}

/** `hostLabels` of rows as the members and peers routes answer them (`name: null` when none). */
export function rowLabels (rows: Iterable<{ peerId: string, name: string | null }>): Map<string, string> {
  return hostLabels(rowHosts(rows))
}

/** Named hosts from route rows (GET /v1/members), for resolveHost. */
export function rowHosts (rows: Iterable<{ peerId: string, name?: string | null, revoked?: boolean }>): NamedHost[] {
  return [...rows].map((r) => ({ peer: r.peerId, ...(typeof r.name === 'string' ? { name: r.name } : {}), ...(r.revoked === true ? { revoked: true } : {}) }))
}

function ambiguous (text: string, found: NamedHost[]): never {
  throw new NodeError('API_BAD_REQUEST', `"${text}" names ${found.length} hosts: ${found.map((h) => `${h.peer}${h.name !== undefined ? ` (${h.name})` : ''}`).join(', ')}; name one by its id`)
}

function one (text: string, found: NamedHost[]): string | undefined {
  if (found.length > 1) ambiguous(text, found)
  return found[0]?.peer
}

/**
 * The peer id `text` means among `hosts`: a peer id, a name, `name#suffix` (as views print an
 * ambiguous name), the short form `12D3KooW…suffix`, or a unique id prefix. A name a member holds
 * means that member: a revoked host that held it too is then named by its id. A well-formed peer
 * id that is no member comes back as it is, for the caller to refuse in its own words. The one
 * resolver of every command and route that takes a host, and of `release publish`'s pre-check.
 */
export function resolveHost (hosts: ReadonlyArray<NamedHost>, text: string): string {
  const held = new Set(hosts.flatMap((h) => h.revoked !== true && h.name !== undefined ? [h.name] : []))
  const members = hosts.map((h) => h.revoked === true && h.name !== undefined && held.has(h.name) ? { peer: h.peer } : h)
  if (members.some((m) => m.peer === text)) return text
  const byName = one(text, members.filter((m) => m.name === text))
  if (byName !== undefined) return byName
  const hash = /^(.+)#([1-9A-HJ-NP-Za-km-z]+)$/.exec(text)
  if (hash !== null) {
    const found = one(text, members.filter((m) => m.name === hash[1] && m.peer.endsWith(hash[2]!)))
    if (found !== undefined) return found
  }
  const dots = text.indexOf('…')
  if (dots > 0) {
    const found = one(text, members.filter((m) => m.peer.startsWith(text.slice(0, dots)) && m.peer.endsWith(text.slice(dots + 1))))
    if (found !== undefined) return found
  }
  if (text.length >= MIN_PREFIX_CHARS) {
    const found = one(text, members.filter((m) => m.peer.startsWith(text)))
    if (found !== undefined) return found
  }
  if (isPeerId(text)) return text
  const names = members.flatMap((m) => m.name !== undefined ? [m.name] : [])
  throw new NodeError('API_BAD_REQUEST', `no host "${text}" in this mesh${didYouMean(text, names)}; name a host by its name, its peer id or a unique prefix of it (see "fleetmesh members")`)
}

/** `fleetmesh init`'s default name: this machine's hostname, made into a host name. */
export function defaultHostName (): string {
  const name = hostname().replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63)
  return HOST_NAME_RE.test(name) ? name : 'host'
}
