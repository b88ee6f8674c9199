// One gossipsub topic per room. Its frames reach the service only from topics this host chose to
// carry, and only from peers that are mesh members: the topic validator is the first filter, the
// service checks every frame in full after it.
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { roomOfTopic, roomTopic } from './codec.js'

export interface RoomTopicsComponents {
  pubsub: Pick<GossipSub, 'subscribe' | 'unsubscribe' | 'topicValidators' | 'publish' | 'getSubscribers' | 'addEventListener' | 'removeEventListener'>
  isMember: (peer: string) => boolean
  /** spends a frame of `bytes` that `peer` delivered on `room`'s topic from its budget: false refuses it */
  admit: (room: string, peer: string, bytes: number) => boolean
  /** a frame that came on the topic of `room`, not checked yet */
  onFrame: (room: string, data: Uint8Array) => void
  /** a frame this host published itself, once gossipsub took it */
  onPublished: (topic: string, bytes: number) => void
}

export class RoomTopics {
  private readonly c: RoomTopicsComponents
  private readonly subscribed = new Set<string>()

  constructor (components: RoomTopicsComponents) {
    this.c = components
  }

  start (): void {
    this.c.pubsub.addEventListener('message', this.onMessage)
  }

  stop (): void {
    this.c.pubsub.removeEventListener('message', this.onMessage)
    for (const topic of this.subscribed) this.unsubscribe(topic)
  }

  /** Subscribes to the room's topic, or leaves it. */
  carry (room: string, carry: boolean): void {
    const topic = roomTopic(room)
    if (carry && !this.subscribed.has(topic)) {
      this.c.pubsub.topicValidators.set(topic, this.validate)
      this.c.pubsub.subscribe(topic)
      this.subscribed.add(topic)
    } else if (!carry && this.subscribed.has(topic)) {
      this.unsubscribe(topic)
    }
  }

  carries (room: string): boolean {
    return this.subscribed.has(roomTopic(room))
  }

  /** Connected peers subscribed to the room's topic, sorted. */
  peers (room: string): string[] {
    return this.c.pubsub.getSubscribers(roomTopic(room)).map(String).sort()
  }

  async publish (room: string, frame: Uint8Array): Promise<void> {
    const topic = roomTopic(room)
    await this.c.pubsub.publish(topic, frame)
    this.c.onPublished(topic, frame.byteLength)
  }

  private unsubscribe (topic: string): void {
    this.c.pubsub.unsubscribe(topic)
    this.c.pubsub.topicValidators.delete(topic)
    this.subscribed.delete(topic)
  }

  /**
   * Gossip on room topics flows among members only: a peer that is not one (a stranger inside its
   * pairing window) is rejected, which also lowers its gossip score, and a frame first published
   * by a non-member is dropped without blaming the member that relayed it (its log may not have
   * the revoke yet). A member past its frame budget (budgets.ts) is rejected too.
   */
  private readonly validate = (peer: PeerId, msg: Message): TopicValidatorResult => {
    if (!this.c.isMember(peer.toString())) return TopicValidatorResult.Reject
    const room = roomOfTopic(msg.topic)
    if (room === undefined || !this.c.admit(room, peer.toString(), msg.data.byteLength)) return TopicValidatorResult.Reject
    const from = msg.type === 'signed' ? msg.from.toString() : undefined
    if (from !== undefined && !this.c.isMember(from)) return TopicValidatorResult.Ignore
    return TopicValidatorResult.Accept
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const { topic, data } = evt.detail
    const room = roomOfTopic(topic)
    // only topics this host subscribed to arrive, so what the service counts stays bounded by known rooms
    if (room === undefined || !this.subscribed.has(topic)) return
    this.c.onFrame(room, data)
  }
}
