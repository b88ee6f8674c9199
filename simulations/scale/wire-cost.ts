// What each message of the log's sync costs on the wire and what each entry costs on disk, from
// the real encoders: wire.ts for the sync protocol's requests and frames and the announcements,
// gossipsub's own protobuf RPC codec for the envelope an announcement travels in, layout.ts for
// the keys an entry is stored under. Below those, one model of the transport (stated here):
//   - every write is one yamux data frame (12-byte header) in one Noise transport message
//     (2-byte length + 16-byte ChaCha20-Poly1305 tag);
//   - every reqresp exchange opens a stream: multistream-select's header and protocol line
//     from the dialer, echoed by the listener, and four header-only yamux frames (SYN, ACK, FIN
//     both ways);
//   - an entry on disk is its canonical bytes under its entry key plus two empty index keys
//     (LevelDB's own overhead and compression are not counted).
import { RPC } from '@libp2p/gossipsub/message'
import { entryKey, indexKeys } from '../../protocols/audit/layout.js'
import type { Entry, Head } from '../../protocols/audit/types.js'
import { HEADS_TOPIC, SYNC_PROTOCOL, encodeAnnouncement, encodeFrame, encodeRequest, type SyncFrame, type SyncRequest } from '../../protocols/audit/wire.js'

const YAMUX_HEADER = 12
const NOISE_FRAME = 2 + 16
const PER_WRITE = YAMUX_HEADER + NOISE_FRAME
const MULTISTREAM = '/multistream/1.0.0\n'
/** gossipsub's strict-sign seqno: 8 bytes */
const SEQNO = new Uint8Array(8)
const SIGNATURE = new Uint8Array(64)

function varintBytes (n: number): number {
  let k = 1
  while (n >= 0x80) { n = Math.floor(n / 0x80); k++ }
  return k
}

/** One length-prefixed payload written to a stream, with its framing. */
export function written (payload: number): number {
  return varintBytes(payload) + payload + PER_WRITE
}

/** Opening and closing one stream of `protocol`, both directions. */
export function streamBytes (protocol: string): number {
  const negotiate = written(MULTISTREAM.length) + written(protocol.length + 1)
  return 2 * negotiate + 4 * (YAMUX_HEADER + NOISE_FRAME)
}

/** One reqresp exchange of the sync protocol: a stream, the request, the frames, `end`. */
export function exchangeBytes (req: SyncRequest, frames: SyncFrame[]): number {
  let n = streamBytes(SYNC_PROTOCOL) + written(encodeRequest(req).length) + written(encodeFrame({ t: 'end' }).length)
  for (const f of frames) n += written(encodeFrame(f).length)
  return n
}

/** Bytes of a pull of one feed's entries `entries` (canonical bytes), in frames the responder sends. */
export function pullBytes (feed: string, from: number, entries: Uint8Array[]): number {
  return exchangeBytes({ t: 'range', feed, from, to: from + entries.length - 1 }, entries.length === 0 ? [] : [{ t: 'entries', entries }])
}

/**
 * Costs that depend on the publisher: the gossipsub message carrying its announcement (strict
 * signing: from, seqno, signature; an Ed25519 key is inside the peer id, so no key field), and
 * the IHAVE naming it (message id = the publisher's public key protobuf + seqno).
 */
export class GossipCost {
  private readonly fromBytes: Uint8Array
  private readonly msgId: Uint8Array

  constructor (peerIdBytes: Uint8Array, publicKeyProtobuf: Uint8Array) {
    this.fromBytes = peerIdBytes
    this.msgId = new Uint8Array(publicKeyProtobuf.length + SEQNO.length)
  }

  /** One copy of an announcement of `head`, as one mesh peer sends it to another. */
  announcement (head: Head): number {
    const rpc = RPC.encode({ subscriptions: [], messages: [{ from: this.fromBytes, data: encodeAnnouncement(head), seqno: SEQNO, topic: HEADS_TOPIC, signature: SIGNATURE }] })
    return written(rpc.length)
  }

  /** One IHAVE control message naming this publisher's message (sent alone: idle fleets rarely batch). */
  ihave (): number {
    const rpc = RPC.encode({ subscriptions: [], messages: [], control: { ihave: [{ topicID: HEADS_TOPIC, messageIDs: [this.msgId] }], iwant: [], graft: [], prune: [], idontwant: [] } })
    return written(rpc.length)
  }
}

/** What storing one entry adds to a host's database. */
export function storedBytes (entry: Entry, bytes: Uint8Array): number {
  let n = entryKey(entry.feed, entry.seq).length + bytes.length
  for (const k of indexKeys(entry)) n += k.length
  return n
}
