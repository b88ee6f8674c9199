// The heads gossip topic. This host announces its own new heads (coalesced) and, when asked, its
// whole head vector; an announcement received names heads the publisher and the relaying peer
// hold, which become wants of the puller.
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
  store: Pick<AuditStore, 'feed' | 'head' | 'heads' | 'forkedFeeds' | 'on' | 'off'>
  /** peers whose announcements count; others' are ignored */
  allowPeer: (peer: string) => boolean
  /** `peer` holds `head` */
  want: (head: Head, peer: string) => void
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

  /** Announces every head this host holds (of feeds not forked). */
  async announceAll (): Promise<void> {
    await this.announce(this.c.store.heads())
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

  private readonly validate = (peer: PeerId, msg: { data: Uint8Array, from?: PeerId }): TopicValidatorResult => {
    if (!this.c.allowPeer(peer.toString())) return TopicValidatorResult.Ignore
    let heads: Head[]
    try {
      heads = decodeAnnouncement(msg.data)
    } catch (err) {
      // Reject makes gossipsub itself lower the sender's score and drop the message
      this.c.penalise(peer.toString(), toAuditError(err))
      return TopicValidatorResult.Reject
    }
    // The publisher holds what it announced; the peer that relayed it may not yet.
    const publisher = msg.from !== undefined && this.c.allowPeer(msg.from.toString()) ? msg.from.toString() : undefined
    for (const h of heads) {
      if (publisher !== undefined && publisher !== peer.toString()) this.c.want(h, publisher)
      this.c.want(h, peer.toString())
    }
    return TopicValidatorResult.Accept
  }
}
