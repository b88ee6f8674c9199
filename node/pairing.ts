// Invites and pairing on a running host: the admin side creates codes and admits joiners
// through its own audit feed; the joiner side proves a code and adopts the mesh it names.
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import type { AbstractLevel } from 'abstract-level'
import { createInvite, decodeInvite, type InviteRole } from '../crypto/invite.js'
import type { HostIdentity } from '../crypto/identity.js'
import type { AuditStore } from '../protocols/audit/index.js'
import { InviteBook, PairingBudget, PAIRING_PROTOCOLS, requestPairing, servePairing, type InviteDb, type InviteRecord } from '../protocols/pairing/index.js'
import { NodeError } from './errors.js'
import { defaultHostName } from './host-names.js'
import { HOST_NAME_RULE, isHostName } from '../protocols/membership/index.js'
import type { MeshLibp2p } from './libp2p.js'
import type { Membership } from './membership.js'
import { withPeerId } from './redial.js'

export interface InviteOptions { ttlSeconds: number, uses: number, role: InviteRole, tags: string[] }
export interface IssuedInvite { code: string, inviteId: string, expiresAt: number, uses: number, role: InviteRole, tags: string[] }
/** `name`: the mesh's; `host`: the name this host asked to be admitted under. */
/** `named`: the admission carries `host` (false through an inviter from before host names). */
export interface JoinResult { meshId: string, name: string, host: string, named: boolean, inviter: string, admitted: boolean }
/** `unusable`: issued by an earlier version whose proof this one cannot check; refused, revocable. */
export type InviteState = 'open' | 'expired' | 'used-up' | 'revoked' | 'unusable'
export interface InviteRow { inviteId: string, state: InviteState, role: InviteRole, tags: string[], usesLeft: number, createdAt: number, expiresAt: number, revokedAt: number | null }

/** An invite is a bearer credential: it stays valid a week at most (`fleetmesh invite --ttl`). */
export const MAX_INVITE_TTL_SECONDS = 7 * 86_400

function inviteRow (r: InviteRecord, now: number): InviteRow {
  const state: InviteState = r.revokedAt !== undefined ? 'revoked' : 'legacy' in r ? 'unusable' : now >= r.expiresAt ? 'expired' : r.usesLeft <= 0 ? 'used-up' : 'open'
  return { inviteId: r.id, state, role: r.role, tags: r.tags, usesLeft: r.usesLeft, createdAt: r.createdAt, expiresAt: r.expiresAt, revokedAt: r.revokedAt ?? null }
}

/** How long a joiner waits for its own admit entry to arrive through the log. */
const ADMIT_WAIT_MS = 20_000

export class Pairing {
  readonly invites: InviteBook
  private readonly attempts: PairingBudget

  constructor (
    private readonly libp2p: MeshLibp2p,
    private readonly store: AuditStore,
    private readonly membership: Membership,
    private readonly identity: HostIdentity,
    db: AbstractLevel<any, any, any>,
    private readonly log: Logger,
    /** known dialable member addresses (with /p2p/ID) to hand a joiner */
    private readonly memberAddrs: () => string[]
  ) {
    this.attempts = new PairingBudget(undefined, { onExceeded: (err) => { this.log.warn({ peer: err.peer, reason: err.reason }, `pairing: ${err.message}`) } })
    this.invites = new InviteBook(db.sublevel<string, Uint8Array>('invites', { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as InviteDb)
  }

  private get self (): string { return this.identity.peerId.toString() }

  async start (): Promise<void> {
    await this.libp2p.handle(PAIRING_PROTOCOLS, (stream, connection) => {
      void servePairing(stream, connection, {
        selfPeerId: this.self,
        invites: this.invites,
        attempts: this.attempts,
        mesh: () => {
          const m = this.membership.mesh()
          return m === undefined ? undefined : { id: m.meshId, name: m.name, founder: m.founder }
        },
        isAdmin: () => this.membership.isAdmin(this.self),
        isMember: (peer) => this.membership.isMember(peer),
        admit: async (req) => { await this.store.append('admit', { peer: req.peer, role: req.role, tags: req.tags, invite: req.invite, xwing: req.xwing, ...(req.name !== undefined ? { name: req.name } : {}) }) },
        bootstrap: () => this.memberAddrs().slice(0, 16),
        nowMs: Date.now,
        log: (event, msg) => { this.log.info(event, msg) }
      })
    }, { maxInboundStreams: 4 })
  }

  async createInvite (opts: InviteOptions): Promise<IssuedInvite> {
    const mesh = this.membership.mesh()
    if (mesh === undefined) throw new NodeError('NOT_INITIALISED', 'this host is not in a mesh: run "fleetmesh init --mesh NAME" or join one first')
    if (!this.membership.isAdmin(this.self)) throw new NodeError('NOT_ADMIN', 'only admins may invite')
    if (!Number.isSafeInteger(opts.ttlSeconds) || opts.ttlSeconds < 1 || opts.ttlSeconds > MAX_INVITE_TTL_SECONDS) {
      throw new NodeError('API_BAD_REQUEST', `an invite lives 1 second to ${MAX_INVITE_TTL_SECONDS / 86_400} days (--ttl)`)
    }
    const addrs = this.libp2p.getMultiaddrs().map((a) => a.decapsulateCode(multiaddr(`/p2p/${this.self}`).getComponents()[0].code).toString())
    const expiresAt = Math.floor(Date.now() / 1000) + opts.ttlSeconds
    const made = createInvite({ meshId: mesh.meshId, inviterPeerId: this.self, founderPeerId: mesh.founder, addrs, expiresAt, uses: opts.uses, role: opts.role, tags: opts.tags })
    await this.invites.add({ id: made.inviteId, meshId: mesh.meshId, proofKey: made.proofKey, role: opts.role, tags: opts.tags, expiresAt, usesLeft: opts.uses, createdAt: Math.floor(Date.now() / 1000) })
    // The trail records that an invite exists and what it grants, never its secret.
    await this.store.append('invite', { invite: made.inviteId, role: opts.role, tags: opts.tags, uses: opts.uses, expiresAt })
    this.log.info({ invite: made.inviteId, role: opts.role, tags: opts.tags, uses: opts.uses, expiresAt }, 'invite created')
    return { code: made.code, inviteId: made.inviteId, expiresAt, uses: opts.uses, role: opts.role, tags: opts.tags }
  }

  /** Every invite this host issued, newest first, with what it can still do. */
  async listInvites (): Promise<InviteRow[]> {
    const now = Math.floor(Date.now() / 1000)
    return (await this.invites.list()).map((r) => inviteRow(r, now)).sort((a, b) => b.createdAt - a.createdAt || a.inviteId.localeCompare(b.inviteId))
  }

  /** Revokes an invite this host issued: a joiner holding its code is refused from now on. */
  async revokeInvite (inviteId: string): Promise<InviteRow> {
    const now = Math.floor(Date.now() / 1000)
    const r = await this.invites.revoke(inviteId, now)
    if (r === undefined) throw new NodeError('API_NOT_FOUND', `this host issued no invite ${inviteId}`)
    this.log.info({ invite: inviteId }, 'invite revoked')
    return inviteRow(r, now)
  }

  /**
   * Pairs with the inviter named in `code` under this host's name (`name`, else the one init
   * stored, else the hostname), adopts the mesh, and waits for the admit entry.
   */
  async join (code: string, onAdopted: (bootstrap: string[]) => Promise<void>, name?: string): Promise<JoinResult> {
    if (this.membership.mesh() !== undefined) throw new NodeError('ALREADY_INITIALISED', `this host is already in mesh ${this.membership.mesh()!.meshId}`)
    if (name !== undefined && !isHostName(name)) throw new NodeError('API_BAD_REQUEST', `"${name}" is not a host name: write ${HOST_NAME_RULE}`)
    const hostName = name ?? await this.membership.hostName() ?? defaultHostName()
    // Expiry is left to the inviter: its clock is the one that counts, and it logs the refusal.
    const invite = decodeInvite(code)
    const welcome = await requestPairing(invite, {
      selfPeerId: this.self,
      xwingPublicKey: this.identity.xwingPublicKey,
      name: hostName,
      dial: async (peer, addrs, protocols, signal) => {
        const targets = addrs.map((a) => multiaddr(`${a}/p2p/${peer}`))
        return this.libp2p.dialProtocol(targets, protocols, { signal })
      }
    }).finally(() => { invite.secret.fill(0) })
    if (welcome.nameLeftOut) this.log.warn({ inviter: invite.inviterPeerId, name: hostName }, 'joined through an inviter from before host names: the admission names no host, so other members show this one by its id')
    await this.membership.setHostName(hostName)
    await this.membership.adopt({ meshId: welcome.mesh, name: welcome.name, founder: welcome.founder, trusted: [invite.inviterPeerId] })
    // The inviter's own addresses from the code come first: they are what a restart redials.
    await onAdopted([...withPeerId(invite.inviterPeerId, invite.addrs), ...welcome.addrs])
    const admitted = await this.waitForAdmission(ADMIT_WAIT_MS)
    this.log.info({ mesh: welcome.mesh, inviter: invite.inviterPeerId, admitted }, 'joined mesh')
    return { meshId: welcome.mesh, name: welcome.name, host: hostName, named: !welcome.nameLeftOut, inviter: invite.inviterPeerId, admitted }
  }

  private async waitForAdmission (timeoutMs: number): Promise<boolean> {
    const admitted = (): boolean => this.membership.view()?.members.has(this.self) ?? false
    if (admitted()) return true
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        this.membership.off('changed', check)
        resolve(ok)
      }
      const check = (): void => { if (admitted()) done(true) }
      const timer = setTimeout(() => done(false), timeoutMs)
      this.membership.on('changed', check)
    })
  }
}
