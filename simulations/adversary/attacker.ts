// The malicious member: an admitted host's real identity and data dir, opened by modified code —
// a store with no author check, size cap or clock bound, raw gossip, forged entries and frames —
// and an eavesdropper that keeps every room frame it is sent or can fetch and tries every epoch
// key it can open on it, so a leak is counted from what it actually decrypts.
import { Level } from 'level'
import { pino } from 'pino'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { loadIdentity, type HostIdentity } from '../../crypto/identity.js'
import { openEpochKey } from '../../crypto/seal.js'
import { decryptRoomMessage, encryptRoomMessage, signingBytes as roomSigningBytes } from '../../crypto/room-cipher.js'
import { createSigner } from '../../crypto/sign.js'
import { dataPaths } from '../../node/config.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../node/libp2p.js'
import { createNodeKindRegistry } from '../../node/store.js'
import { AuditStore, AuditSync, auditSublevel, ZERO_HASH } from '../../protocols/audit/index.js'
import { attachSignature, signingBytes } from '../../protocols/audit/codec.js'
import { HistoryProtocol } from '../../protocols/rooms/history-protocol.js'
import { decodeFrame, encodeFrame, roomOfTopic, roomTopic, ROOM_KINDS, type SealedKey } from '../../protocols/rooms/index.js'

/** What the attacker decrypted: the texts, with the room they came from. */
export interface Plaintext { room: string, epoch: number, text: string }

export class Attacker {
  readonly id: string
  private readonly frames = new Map<string, Uint8Array>()
  private readonly keys = new Map<string, Uint8Array[]>()
  private seq = 1_000_000

  private constructor (
    readonly identity: HostIdentity,
    private readonly db: Level<string, Uint8Array>,
    readonly store: AuditStore,
    readonly libp2p: MeshLibp2p,
    readonly sync: AuditSync,
    private readonly history: HistoryProtocol
  ) {
    this.id = identity.peerId.toString()
    libp2p.services.pubsub.addEventListener('message', (evt) => {
      if (roomOfTopic(evt.detail.topic) !== undefined) this.keep(evt.detail.data)
    })
  }

  /** Opens the stopped member's data dir with the modified code and dials the honest hosts. */
  static async open (dataDir: string): Promise<Attacker> {
    const paths = dataPaths(dataDir)
    const identity = await loadIdentity(paths.identity)
    const db = new Level<string, Uint8Array>(paths.db, { valueEncoding: 'view' })
    await db.open()
    const store = await AuditStore.open({ db: auditSublevel(db), privateKey: identity.privateKey, kinds: createNodeKindRegistry(), maxUnknownKindBytes: Infinity, maxClockSkewMs: Infinity })
    const libp2p = await createMeshLibp2p({ privateKey: identity.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
    const sync = new AuditSync({ libp2p, store, logger: pino({ level: 'silent' }) })
    await sync.start()
    // Its own history requests go unbudgeted: the attacker spends what it likes.
    const history = new HistoryProtocol({ libp2p, room: () => undefined, frames: async function * () {}, budgets: { batch: () => {}, request: () => {} } })
    return new Attacker(identity, db, store, libp2p, sync, history)
  }

  async close (): Promise<void> {
    await this.sync.stop()
    await this.libp2p.stop()
    await this.store.close()
    await this.db.close()
  }

  async dial (address: string): Promise<void> {
    await this.libp2p.dial(multiaddr(address))
  }

  /** Pulls every honest host's log now rather than at the next announcement. */
  async pull (peers: string[]): Promise<void> {
    for (const p of peers) await this.sync.syncWith(peerIdFromString(p)).catch(() => {})
  }

  /** A signed entry of its own feed with whatever ts and body it likes, stored without checks. */
  async forgeEntry (kind: string, body: unknown, ts: number): Promise<{ seq: number }> {
    const head = this.store.head(this.id)
    const seq = head === undefined ? 0 : head.seq + 1
    await this.store.ingest([signEntry(this.identity.privateKey, { seq, prev: head?.hash ?? ZERO_HASH, ts, kind, body })])
    return { seq }
  }

  /** A room frame signed by this host, under `key`, dated `ts`. */
  frame (key: Uint8Array, f: { room: string, epoch: number, ts: number, text: string }): Uint8Array {
    const msg = encryptRoomMessage(key, { room: f.room, epoch: f.epoch, sender: this.id, agent: 'mallory', seq: this.seq++, ts: f.ts }, new TextEncoder().encode(f.text))
    return encodeFrame({ ...msg, sig: createSigner(this.identity.privateKey).sign(roomSigningBytes(msg)) })
  }

  async publish (room: string, frame: Uint8Array): Promise<void> {
    await this.libp2p.services.pubsub.publish(roomTopic(room), frame).catch(() => {})
  }

  /** Listens on the topic of every room its log names, as a relay would. */
  async listen (): Promise<void> {
    for (const room of await this.rooms()) this.libp2p.services.pubsub.subscribe(roomTopic(room))
  }

  /** Asks `peer` for a room's kept frames: 'served', or why not (its refusal's message). */
  async fetchHistory (room: string, peer: string): Promise<string> {
    try {
      await this.history.fetch(room, peerIdFromString(peer), 0, async (frames) => { for (const f of frames) this.keep(f) })
      return 'served'
    } catch (err) {
      return (err as Error).message
    }
  }

  /** Every epoch key of `room` sealed to this host in any entry it holds, forged ones too. */
  async epochKeys (room: string): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for (const kind of ROOM_KINDS) {
      for await (const { entry } of this.store.log({ kind })) {
        const body = entry.body as { room: string, keys: SealedKey[] }
        if (body.room !== room) continue
        for (const k of body.keys) {
          if (k.host !== this.id) continue
          const key = await openEpochKey({ seed: this.identity.xwingSeed, peerId: this.id, roomId: room, epoch: k.epoch, sealed: k.sealed }).catch(() => undefined)
          if (key !== undefined) out.push(key)
        }
      }
    }
    return [...out, ...(this.keys.get(room) ?? [])]
  }

  /** Remembers a key it made itself (a forged room-create's). */
  own (room: string, key: Uint8Array): void {
    this.keys.set(room, [...(this.keys.get(room) ?? []), key])
  }

  /** Every frame it holds that some key of its opens, as text. */
  async decrypted (): Promise<Plaintext[]> {
    const out: Plaintext[] = []
    const keys = new Map<string, Uint8Array[]>()
    for (const bytes of this.frames.values()) {
      let msg
      try { msg = decodeFrame(bytes) } catch { continue }
      if (!keys.has(msg.room)) keys.set(msg.room, await this.epochKeys(msg.room))
      for (const key of keys.get(msg.room)!) {
        try {
          out.push({ room: msg.room, epoch: msg.epoch, text: new TextDecoder().decode(decryptRoomMessage(key, msg)) })
          break
        } catch { /* not this key */ }
      }
    }
    return out
  }

  private async rooms (): Promise<string[]> {
    const out = new Set<string>()
    for (const kind of ROOM_KINDS) for await (const { entry } of this.store.log({ kind })) out.add((entry.body as { room: string }).room)
    return [...out]
  }

  private keep (bytes: Uint8Array): void {
    this.frames.set(Buffer.from(bytes).toString('base64'), bytes)
  }
}

/** A signed entry with whatever fields the attacker likes. */
export function signEntry (key: Ed25519PrivateKey, f: { seq: number, prev: Uint8Array, ts: number, kind: string, body: unknown }): Uint8Array {
  const unsigned = { feed: peerIdFromPrivateKey(key).toString(), ...f }
  const signed = signingBytes(unsigned)
  return attachSignature(signed, unsigned, createSigner(key).sign(signed))
}
