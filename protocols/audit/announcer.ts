// The heads gossip topic. This host announces its own new heads (coalesced) and, when asked, its
// own head again; an announcement received names heads the publisher and the relaying peer
// hold, which become wants of the puller. A host lets an announcement travel on only once its
// pull of those heads settled, so the next host, which may reach the entries only through this
// one, finds them here instead of asking too early and backing off.
import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { AuditError } from './errors.js'
import type { AuditStore } from './store.js'
import type { Head, SyncLogger } from './types.js'
import { HEADS_TOPIC, MAX_HEADS_PER_MESSAGE, decodeAnnouncement, encodeAnnouncement, toAuditError } from './wire.js'

/** One gossip message this host published itself (gossipsub emits no event for those). */
export interface PublishedEvent { topic: string, bytes: number }

export interface AnnouncerComponents {
  pubsub: Pick<GossipSub, 'publish' | 'subscribe' | 'unsubscribe' | 'topicValidators'>
  store: Pick<AuditStore, 'feed' | 'head' | 'forkedFeeds' | 'on' | 'off'>
  /** peers whose announcements count; others' are ignored */
  allowPeer: (peer: string) => boolean
  /** `peer` holds `head` */
  want: (head: Head, peer: string) => void
  /** resolves once this store holds `heads`, or the pulls they caused ended without them */
  settled: (heads: Head[]) => Promise<void>
  penalise: (peer: string, error: AuditError) => void
  onPublished: (event: PublishedEvent) => void
  logger?: SyncLogger
  /** coalescing delay before announcing new heads */
  announceDelayMs: number
}

export class Announcer {
  private readonly c: AnnouncerComponents
  private readonly dirty = new Set<string>()
  private timer: NodeJS.Timeout | undefined

  constructor (components: AnnouncerComponents) {
    this.c = components
  }

  start (): void {
    this.c.store.on('entry', this.onEntry)
    this.c.pubsub.topicValidators.set(HEADS_TOPIC, this.validate)
    this.c.pubsub.subscribe(HEADS_TOPIC)
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.c.store.off('entry', this.onEntry)
    this.c.pubsub.unsubscribe(HEADS_TOPIC)
    this.c.pubsub.topicValidators.delete(HEADS_TOPIC)
  }

  /**
   * Announces this host's own head again, for hosts that missed its announcement. Not the whole
   * head vector: every host flooding all N heads to all N hosts each period costs the fleet N³
   * heads per period (at 50 hosts, seconds of CPU each round); the other feeds are repaired by
   * the head vectors two peers exchange (see AuditSync).
   */
  async reannounce (): Promise<void> {
    const own = this.c.store.feed !== undefined ? this.c.store.head(this.c.store.feed) : undefined
    if (own !== undefined) await this.announce([own])
  }

  /**
   * Announces this host's own new entries at once (coalesced). Entries it merely received are
   * not re-announced each time — with every host doing so, a burst of N hosts' entries would
   * cost N² gossip messages; the periodic announcement and pulls from any peer cover them.
   */
  private readonly onEntry = ({ entry }: { entry: { feed: string } }): void => {
    if (entry.feed !== this.c.store.feed) return
    this.dirty.add(entry.feed)
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      const heads = [...this.dirty].map(f => this.c.store.head(f)).filter((h): h is Head => h !== undefined)
      this.dirty.clear()
      void this.announce(heads)
    }, this.c.announceDelayMs)
  }

  private async announce (heads: Head[]): Promise<void> {
    const forked = this.c.store.forkedFeeds()
    const shareable = heads.filter(h => !forked.has(h.feed))
    for (let i = 0; i < shareable.length; i += MAX_HEADS_PER_MESSAGE) {
      let data: Uint8Array
      try {
        data = encodeAnnouncement(shareable.slice(i, i + MAX_HEADS_PER_MESSAGE))
        await this.c.pubsub.publish(HEADS_TOPIC, data)
      } catch (err) {
        this.c.logger?.debug({ err: (err as Error).message }, 'audit sync: announcing heads failed')
        continue
      }
      this.c.onPublished({ topic: HEADS_TOPIC, bytes: data.length })
    }
  }

  private readonly validate = async (peer: PeerId, msg: { data: Uint8Array, from?: PeerId }): Promise<TopicValidatorResult> => {
    if (!this.c.allowPeer(peer.toString())) return TopicValidatorResult.Ignore
    let heads: Head[]
    try {
      heads = decodeAnnouncement(msg.data)
    } catch (err) {
      // Reject makes gossipsub itself lower the sender's score and drop the message
      this.c.penalise(peer.toString(), toAuditError(err))
      return TopicValidatorResult.Reject
    }
    // The publisher holds what it announced, and so does a relaying peer whose pull succeeded.
    const publisher = msg.from !== undefined && this.c.allowPeer(msg.from.toString()) ? msg.from.toString() : undefined
    for (const h of heads) {
      if (publisher !== undefined && publisher !== peer.toString()) this.c.want(h, publisher)
      this.c.want(h, peer.toString())
    }
    // gossipsub forwards the message when this resolves
    await this.c.settled(heads)
    return TopicValidatorResult.Accept
  }
}
