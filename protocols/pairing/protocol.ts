// The pairing protocol: a joiner proves it holds an invite's secret, bound to both
// authenticated peer ids and a fresh nonce of this stream, without ever sending the secret;
// the inviter then admits it through its own audit feed and hands back where the mesh lives.
import { randomBytes } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import { inviteIdOfSecret, pairingProof, verifyPairingProof, type Invite } from '../../crypto/invite.js'
import { decodePairing, encodePairing, MAX_PAIRING_MESSAGE_BYTES, NONCE_BYTES, PAIRING_VERSION, type PairingMessage, type Welcome } from './codec.js'
import { PairingError, WIRE_ERROR_CODES } from './errors.js'
import { HOST_NAME_RULE, isHostName } from '../membership/host-name.js'
import type { InviteBook, InviteRecord } from './invites.js'
import type { PairingBudget } from './rate-limit.js'

/** The pairing before host names: the same messages, but its inviters refuse a proof that names the host. */
export const PAIRING_PROTOCOL_V2 = '/fleetmesh/pairing/2.0.0'
/** The pairing with host names: the joiner's proof may carry the name it asks to be admitted under. */
export const PAIRING_PROTOCOL = '/fleetmesh/pairing/2.1.0'
/**
 * What an inviter serves and a joiner offers, best first. Multistream-select settles on one both
 * speak, so a joiner sends its name only to an inviter that takes it and still pairs, unnamed,
 * with a member running a release from before names (a fleet upgraded host by host).
 */
export const PAIRING_PROTOCOLS = [PAIRING_PROTOCOL, PAIRING_PROTOCOL_V2]
/** A pairing exchange is four small messages; anything slower is abandoned. */
export const PAIRING_TIMEOUT_MS = 10_000

export interface AdmitRequest {
  peer: string
  role: 'host' | 'admin'
  tags: string[]
  invite: string
  xwing: Uint8Array
  /** the joiner's host name, when it sent one */
  name?: string
}

export interface InviterContext {
  selfPeerId: string
  invites: InviteBook
  /** attempts per source address and overall */
  attempts: Pick<PairingBudget, 'take'>
  /** the mesh this host belongs to, with its display name */
  mesh: () => { id: string, name: string, founder: string } | undefined
  isAdmin: () => boolean
  isMember: (peer: string) => boolean
  /** writes the signed admit entry; resolves once it is stored */
  admit: (req: AdmitRequest) => Promise<void>
  /** dialable addresses of members (with /p2p/ID) for the joiner to bootstrap from */
  bootstrap: () => string[]
  nowMs: () => number
  log: (event: Record<string, unknown>, msg: string) => void
}

type Lp = ReturnType<typeof lpStream<Stream>>

async function readMessage (lp: Lp, signal: AbortSignal): Promise<PairingMessage> {
  return decodePairing((await lp.read({ signal })).subarray())
}

async function send (lp: Lp, msg: PairingMessage, signal: AbortSignal): Promise<void> {
  await lp.write(encodePairing(msg), { signal })
}

function remoteIp (connection: Connection): string {
  const parts = connection.remoteAddr.getComponents()
  return parts.find((c) => c.name === 'ip4' || c.name === 'ip6')?.value ?? connection.remoteAddr.toString()
}

/** Inviter side: one stream, one attempt. Failures are answered with a typed error reply. */
export async function servePairing (stream: Stream, connection: Connection, ctx: InviterContext): Promise<void> {
  const signal = AbortSignal.timeout(PAIRING_TIMEOUT_MS)
  const lp = lpStream(stream, { maxDataLength: MAX_PAIRING_MESSAGE_BYTES })
  const joiner = connection.remotePeer.toString()
  const ip = remoteIp(connection)
  let invite: string | undefined
  try {
    if (!ctx.attempts.take(ip)) throw new PairingError('RATE_LIMITED', 'too many pairing attempts from this address or in all; try again later')
    const hello = await readMessage(lp, signal)
    if (hello.t !== 'hello') throw new PairingError('PAIRING_MALFORMED', `expected hello, got ${hello.t}`)
    invite = hello.invite
    const mesh = ctx.mesh()
    // Which mesh this host is in is for members: a stranger with a wrong code learns only "no".
    if (mesh === undefined || hello.mesh !== mesh.id) throw new PairingError('WRONG_MESH', 'this host is not in the mesh the invite names')
    if (!ctx.isAdmin()) throw new PairingError('INVITER_NOT_ADMIN', 'the inviter is no longer an admin of the mesh')
    if (ctx.isMember(joiner)) {
      // A member pairing again lost the welcome after its admit (a crash, a dropped stream):
      // where the mesh lives is all it needs, and it is a member, so no invite is spent.
      await send(lp, { t: 'welcome', mesh: mesh.id, name: mesh.name, founder: mesh.founder, addrs: ctx.bootstrap() }, signal)
      ctx.log({ peer: joiner, invite, ip }, 'pairing: member welcomed again')
      await stream.close({ signal }).catch(() => {})
      return
    }
    const known = await ctx.invites.get(hello.invite)
    if (known === undefined) throw new PairingError('INVITE_UNKNOWN', 'no such invite (wrong code)')
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES))
    await send(lp, { t: 'challenge', nonce }, signal)
    const proof = await readMessage(lp, signal)
    if (proof.t !== 'proof') throw new PairingError('PAIRING_MALFORMED', `expected proof, got ${proof.t}`)
    const record: InviteRecord = await ctx.invites.consume(hello.invite, Math.floor(ctx.nowMs() / 1000), (r) => {
      const ok = verifyPairingProof(r.proofKey, { meshId: mesh.id, joinerPeerId: joiner, inviterPeerId: ctx.selfPeerId, channelBinding: nonce }, proof.proof)
      if (!ok) throw new PairingError('PROOF_INVALID', 'the pairing proof does not match the invite (wrong secret)')
    })
    try {
      await ctx.admit({ peer: joiner, role: record.role, tags: record.tags, invite: record.id, xwing: proof.xwing, ...(proof.name !== undefined ? { name: proof.name } : {}) })
    } catch (err) {
      await ctx.invites.refund(record.id)
      throw err
    }
    await send(lp, { t: 'welcome', mesh: mesh.id, name: mesh.name, founder: mesh.founder, addrs: ctx.bootstrap() }, signal)
    ctx.log({ peer: joiner, invite: record.id, role: record.role, ip }, 'pairing: admitted')
    await stream.close({ signal }).catch(() => {})
  } catch (err) {
    const code = err instanceof PairingError ? err.code : (signal.aborted ? 'PAIRING_TIMEOUT' : 'PAIRING_FAILED')
    ctx.log({ peer: joiner, invite, ip, code, err: (err as Error).message }, 'pairing: refused')
    if (code !== 'PAIRING_TIMEOUT' && code !== 'PAIRING_MALFORMED') {
      // The inviter's own troubles (a corrupt store, a failed write) stay in its log.
      const told = WIRE_ERROR_CODES.has(code)
      const message = told && err instanceof PairingError ? err.message : 'pairing failed on the inviter'
      await send(lp, { t: 'error', code: told ? code : 'PAIRING_FAILED', message }, signal).catch(() => {})
      await stream.close({ signal }).catch(() => {})
    } else {
      stream.abort(err as Error)
    }
  }
}

export interface JoinerContext {
  selfPeerId: string
  xwingPublicKey: Uint8Array
  /** the host name to be admitted under */
  name?: string
  /** opens a stream to the inviter at one of the invite's addresses, offering `protocols` (best first) */
  dial: (peerId: string, addrs: string[], protocols: string[], signal: AbortSignal) => Promise<Stream>
}

/** `nameLeftOut`: the joiner had a name but the inviter predates names, so its admission carries none. */
export type Paired = Welcome & { nameLeftOut: boolean }

/**
 * A dial failure in words. libp2p also rejects with aggregates and with the bare close Event
 * of a connection the remote ended right after the handshake, which is what a member's gate
 * does to a revoked peer or to an address past its rate limit.
 */
function reason (err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(reason).join('; ')
  if (err instanceof Error) return err.message !== '' ? err.message : err.name
  if (err instanceof Event) return `the inviter hung up (${err.type}): its gate refuses revoked hosts and addresses making too many attempts`
  return String(err)
}

/**
 * The welcome must describe the mesh the code names: its id, which embeds the name, and the
 * founder the code names (the joiner pins the genesis to it), so an inviter cannot hand the
 * joiner a mesh of its own making under the right id.
 */
function checkWelcome (invite: Invite, welcome: Welcome): Welcome {
  if (welcome.mesh !== invite.meshId || !invite.meshId.startsWith(`${welcome.name}-`) || welcome.founder !== invite.founderPeerId) {
    throw new PairingError('WELCOME_MISMATCH', `the inviter answered for another mesh than the invite names (${invite.meshId})`)
  }
  return welcome
}

/** Joiner side: proves the invite to its inviter and returns where the mesh lives. */
export async function requestPairing (invite: Invite, ctx: JoinerContext): Promise<Paired> {
  if (ctx.name !== undefined && !isHostName(ctx.name)) throw new PairingError('NAME_INVALID', `"${ctx.name}" is not a host name: write ${HOST_NAME_RULE}`)
  const signal = AbortSignal.timeout(PAIRING_TIMEOUT_MS)
  let stream: Stream
  try {
    stream = await ctx.dial(invite.inviterPeerId, invite.addrs, PAIRING_PROTOCOLS, signal)
  } catch (err) {
    throw new PairingError('INVITER_UNREACHABLE', `cannot reach the inviter ${invite.inviterPeerId} at ${invite.addrs.join(', ')}: ${reason(err)}`)
  }
  const lp = lpStream(stream, { maxDataLength: MAX_PAIRING_MESSAGE_BYTES })
  const expect = async <T extends PairingMessage['t']>(...t: T[]): Promise<Extract<PairingMessage, { t: T }>> => {
    let msg: PairingMessage
    try {
      msg = await readMessage(lp, signal)
    } catch (err) {
      if (err instanceof PairingError) throw err
      throw new PairingError(signal.aborted ? 'PAIRING_TIMEOUT' : 'PAIRING_FAILED', `the inviter closed the pairing stream: ${(err as Error).message}`)
    }
    if (msg.t === 'error') throw new PairingError(msg.code, msg.message)
    if (!(t as string[]).includes(msg.t)) throw new PairingError('PAIRING_MALFORMED', `expected ${t.join(' or ')}, got ${msg.t}`)
    return msg as Extract<PairingMessage, { t: T }>
  }
  try {
    await send(lp, { t: 'hello', v: PAIRING_VERSION, mesh: invite.meshId, invite: inviteIdOfSecret(invite.secret) }, signal)
    const challenge = await expect('challenge', 'welcome')
    if (challenge.t === 'welcome') {
      // Already a member: no admission is written, so no name is left out of one.
      await stream.close({ signal }).catch(() => {})
      return { ...checkWelcome(invite, challenge), nameLeftOut: false }
    }
    const proof = pairingProof(invite.secret, { meshId: invite.meshId, joinerPeerId: ctx.selfPeerId, inviterPeerId: invite.inviterPeerId, channelBinding: challenge.nonce })
    const name = stream.protocol === PAIRING_PROTOCOL ? ctx.name : undefined
    await send(lp, { t: 'proof', proof, xwing: ctx.xwingPublicKey, ...(name !== undefined ? { name } : {}) }, signal)
    const welcome = await expect('welcome')
    await stream.close({ signal }).catch(() => {})
    return { ...checkWelcome(invite, welcome), nameLeftOut: name === undefined && ctx.name !== undefined }
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
