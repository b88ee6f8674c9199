// A revoked host is told: before hanging up on a peer the log just revoked, a member connected
// to it sends it the signed revoke entry. The revoked host checks it (signature, target, the
// author's admin standing as of the entry) and keeps it, so `status` can say who revoked it
// and when even though no member will talk to it again. It learns only its own revocation.
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import type { AuditStore, StoredEntry } from '../protocols/audit/index.js'
import type { MeshLibp2p } from './libp2p.js'
import type { Membership } from './membership.js'

export const REVOCATION_PROTOCOL = '/fleetmesh/revoked/1.0.0'
/** A revoke entry: a peer id, a seq and a reason of at most 512 characters, signed. */
const MAX_NOTICE_BYTES = 8 * 1024
const NOTICE_TIMEOUT_MS = 3_000

export interface RevocationComponents {
  self: string
  libp2p: Pick<MeshLibp2p, 'handle' | 'getConnections' | 'hangUp'>
  store: Pick<AuditStore, 'log' | 'checkDetached' | 'ingest'>
  membership: Pick<Membership, 'isMember' | 'standingAt' | 'noteRevocation' | 'view'>
  log: Logger
}

interface RevokeBody { peer: string, reason?: string }

function revokes (s: StoredEntry, peer: string): boolean {
  return s.entry.kind === 'revoke' && (s.entry.body as RevokeBody).peer === peer
}

export class RevocationNotices {
  constructor (private readonly c: RevocationComponents) {}

  async start (): Promise<void> {
    await this.c.libp2p.handle(REVOCATION_PROTOCOL, (stream, connection) => {
      const signal = AbortSignal.timeout(NOTICE_TIMEOUT_MS)
      void (async () => {
        const from = connection.remotePeer.toString()
        // Only a member may tell this host it was revoked; a stranger's word is not read.
        if (!this.c.membership.isMember(from)) throw new Error('notice from a non-member')
        const bytes = (await lpStream(stream, { maxDataLength: MAX_NOTICE_BYTES }).read({ signal })).subarray()
        await this.accept(bytes, from)
        await stream.close({ signal }).catch(() => {})
      })().catch((err: Error) => {
        this.c.log.debug({ peer: connection.remotePeer.toString(), err: err.message }, 'revocation notice refused')
        stream.abort(err)
      })
    }, { maxInboundStreams: 1 })
  }

  /** Tells `peer` (connected, now revoked) who revoked it, then hangs up. */
  async tell (peer: string): Promise<void> {
    const { libp2p, store, log } = this.c
    try {
      // The open connection, not a dial: the gate refuses dialling a revoked peer.
      const conn = libp2p.getConnections(peerIdFromString(peer)).find((c) => c.status === 'open')
      if (conn === undefined) return
      let revoke: StoredEntry | undefined
      for await (const s of store.log({ kind: 'revoke' })) if (revokes(s, peer)) revoke = s
      if (revoke === undefined) return
      const signal = AbortSignal.timeout(NOTICE_TIMEOUT_MS)
      const stream = await conn.newStream(REVOCATION_PROTOCOL, { signal })
      await lpStream(stream, { maxDataLength: MAX_NOTICE_BYTES }).write(revoke.bytes, { signal })
      await stream.close({ signal }).catch(() => {})
    } catch (err) {
      log.debug({ peer, err: (err as Error).message }, 'could not tell a revoked peer')
    } finally {
      await libp2p.hangUp(peerIdFromString(peer)).catch(() => {})
    }
  }

  private async accept (bytes: Uint8Array, from: string): Promise<void> {
    const { self, store, membership, log } = this.c
    const [s] = await store.checkDetached([bytes])
    if (s === undefined || !revokes(s, self)) throw new Error('not a revoke of this host')
    if (!membership.standingAt(s.entry.feed, s.entry.seq, s.entry.ts).admin) throw new Error('the revoke\'s author was not an admin')
    // Where this host holds the revoker's feed up to it, the entry joins the log and the
    // membership fold says the rest; otherwise the notice alone is kept.
    const r = await store.ingest([bytes])
    if (membership.view()?.revoked.has(self) === true) return
    if (r.error !== undefined) log.debug({ from, err: r.error.message }, 'the revoke does not link to this host\'s log yet')
    const body = s.entry.body as RevokeBody
    await membership.noteRevocation({ by: s.entry.feed, at: s.entry.ts, ...(body.reason !== undefined ? { reason: body.reason } : {}) })
  }
}
