// The heads gossip topic. This host announces its own new heads (coalesced), on change only: an
// idle host publishes nothing, and a missed announcement is repaired by the digest exchange of
// sync. An announcement received names heads the publisher and the relaying peer hold, which
// become wants of the puller. A host lets an announcement travel on only once its
// pull of those heads settled, so the next host, which may reach the entries only through this
// one, finds them here instead of asking too early and backing off.
// An announcement names its publisher's own feed only (a host never announces what it relays),
// so one that names any other feed is refused: a member cannot make the fleet want feeds
// nobody holds. Each publisher has a size and rate budget, and a bounded number of its
// announcements in validation at once.
import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { PeerBudget } from '../budget.js'
import { AuditError } from './errors.js'
import type { AuditStore } from './store.js'
import type { Head, SyncLogger } from './types.js'
import { HEADS_TOPIC, decodeAnnouncement, encodeAnnouncement, toAuditError } from './wire.js'

/** One gossip message this host published itself (gossipsub emits no event for those). */
export interface PublishedEvent { topic: string, bytes: number }

export interface AnnouncerComponents {
  pubsub: Pick<GossipSub, 'publish' | 'subscribe' | 'unsubscribe' | 'topicValidators'>
  store: Pick<AuditStore, 'feed' | 'head' | 'forkedFeeds' | 'on' | 'off'>
  /** peers whose announcements count; others' are ignored */
  allowPeer: (peer: string) => boolean
  /** per publisher: the rate of its announcements (over it: ignored, penalised by the budget's hook) */
  budget: Pick<PeerBudget, 'take'>
  /** announcements of one publisher awaiting their pulls at once; more are not forwarded */
  maxValidationsPerPeer: number
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

const ANNOUNCE_RETRY_MS = 1000
const MAX_ANNOUNCE_RETRY_MS = 10_000

export class Announcer {
  private readonly c: AnnouncerComponents
  private readonly dirty = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private retryMs = 0
  private started = false
  /** publisher → its announcements being validated now */
  private readonly validating = new Map<string, number>()

  constructor (components: AnnouncerComponents) {
    this.c = components
  }

  start (): void {
    this.started = true
    this.c.store.on('entry', this.onEntry)
    this.c.pubsub.topicValidators.set(HEADS_TOPIC, this.validate)
    this.c.pubsub.subscribe(HEADS_TOPIC)
  }

  stop (): void {
    this.started = false
    clearTimeout(this.timer)
    this.timer = undefined
    this.c.store.off('entry', this.onEntry)
    this.c.pubsub.unsubscribe(HEADS_TOPIC)
    this.c.pubsub.topicValidators.delete(HEADS_TOPIC)
  }

  /** Announcements being validated now, over all publishers. */
  validations (): number {
    let n = 0
    for (const v of this.validating.values()) n += v
    return n
  }

  /**
   * Announces this host's own new entries at once (coalesced). Entries it merely received are
   * not re-announced each time — with every host doing so, a burst of N hosts' entries would
   * cost N² gossip messages; digest repairs and pulls from any peer cover them. Nor is the own
   * head announced again periodically: N hosts doing so cost every host N messages a period.
   */
  private readonly onEntry = ({ entry }: { entry: { feed: string } }): void => {
    if (entry.feed !== this.c.store.feed) return
    this.schedule(entry.feed, this.c.announceDelayMs)
  }

  private schedule (feed: string, delayMs: number): void {
    this.dirty.add(feed)
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      const heads = [...this.dirty].map(f => this.c.store.head(f)).filter((h): h is Head => h !== undefined)
      this.dirty.clear()
      void this.announce(heads)
    }, delayMs)
  }

  /**
   * Announced on change only, so an announcement that reached no peer (none subscribed yet: a
   * host that just joined, or one that lost its peers) is tried again, 1 s then doubling up to
   * 10 s, until one peer took it: the others' digest repairs are one-sided and would find this
   * head only when they happen to pick this host.
   */
  private async announce (heads: Head[]): Promise<void> {
    const forked = this.c.store.forkedFeeds()
    for (const head of heads.filter(h => !forked.has(h.feed))) {
      let data: Uint8Array
      try {
        data = encodeAnnouncement(head)
        const { recipients } = await this.c.pubsub.publish(HEADS_TOPIC, data)
        if (recipients.length === 0) throw new Error('no peer subscribed')
      } catch (err) {
        this.c.logger?.debug({ err: (err as Error).message }, 'audit sync: announcing heads failed')
        this.retryMs = Math.min(Math.max(2 * this.retryMs, ANNOUNCE_RETRY_MS), MAX_ANNOUNCE_RETRY_MS)
        if (this.started) this.schedule(head.feed, this.retryMs)
        continue
      }
      this.retryMs = 0
      this.c.onPublished({ topic: HEADS_TOPIC, bytes: data.length })
    }
  }

  private readonly validate = async (peer: PeerId, msg: { data: Uint8Array, from?: PeerId }): Promise<TopicValidatorResult> => {
    const relay = peer.toString()
    // Signed messages (gossipsub's default policy) always name their publisher.
    const publisher = msg.from?.toString()
    if (publisher === undefined || !this.c.allowPeer(relay) || !this.c.allowPeer(publisher)) return TopicValidatorResult.Ignore
    let head: Head
    try {
      head = decodeAnnouncement(msg.data)[0]
      if (head.feed !== publisher) throw new AuditError('MESSAGE_MALFORMED', 'a heads announcement names its publisher\'s own feed only')
    } catch (err) {
      // Reject makes gossipsub itself lower the sender's score and drop the message; every
      // honest host refuses the same bytes, so the relay that sent them is at fault
      this.c.penalise(relay, toAuditError(err))
      return TopicValidatorResult.Reject
    }
    // Over its rate the publisher is penalised (the budget's hook), not the relay: an honest
    // relay's budget of the publisher need not match this host's.
    if (!this.c.budget.take(publisher, msg.data.length)) return TopicValidatorResult.Ignore
    // The publisher holds what it announced, and so does a relaying peer whose pull succeeded.
    if (publisher !== relay) this.c.want(head, publisher)
    this.c.want(head, relay)
    // Each validation waits for a pull: a publisher announcing faster than its entries can be
    // pulled would otherwise hold a waiter per announcement. Its newest head is wanted anyway.
    const inFlight = this.validating.get(publisher) ?? 0
    if (inFlight >= this.c.maxValidationsPerPeer) return TopicValidatorResult.Ignore
    this.validating.set(publisher, inFlight + 1)
    try {
      // gossipsub forwards the message when this resolves
      await this.c.settled([head])
    } finally {
      const left = (this.validating.get(publisher) ?? 1) - 1
      if (left === 0) this.validating.delete(publisher)
      else this.validating.set(publisher, left)
    }
    return TopicValidatorResult.Accept
  }
}
