/**
 * Topic subscriptions for the event app: topic -> the set of its subscribers, and for each
 * subscriber the set of its topics (kept on the subscriber itself, so removing a closed
 * connection from every topic costs one lookup per topic it joined, not a scan of all topics).
 *
 * Publishing is done by the caller: it frames a message once and writes the same bytes to
 * each member of `subscribers(topic)`.
 */

/** Something that can subscribe: it carries its own topic set (`null` until it joins one). */
export interface TopicMember {
  topics: Set<string> | null;
}

export interface TopicEvents {
  /** A topic got its first subscriber (e.g. a broker starts listening to it). */
  onTopicOpened?(topic: string): void;
  /** A topic lost its last subscriber. */
  onTopicClosed?(topic: string): void;
}

export class Topics<M extends TopicMember> {
  private readonly byTopic = new Map<string, Set<M>>();
  private readonly events: TopicEvents;

  constructor(events: TopicEvents = {}) {
    this.events = events;
  }

  /** Number of topics with at least one subscriber. */
  get size(): number {
    return this.byTopic.size;
  }

  /** The topics with at least one subscriber. */
  names(): IterableIterator<string> {
    return this.byTopic.keys();
  }

  /** Add `member` to `topic`. Returns false if it was subscribed already. */
  subscribe(member: M, topic: string): boolean {
    let members = this.byTopic.get(topic);
    if (members === undefined) {
      members = new Set();
      this.byTopic.set(topic, members);
      members.add(member);
      (member.topics ??= new Set()).add(topic);
      this.events.onTopicOpened?.(topic);
      return true;
    }
    if (members.has(member)) return false;
    members.add(member);
    (member.topics ??= new Set()).add(topic);
    return true;
  }

  /** Remove `member` from `topic`. Returns false if it was not subscribed. */
  unsubscribe(member: M, topic: string): boolean {
    if (member.topics === null || !member.topics.delete(topic)) return false;
    this.leave(member, topic);
    return true;
  }

  /** Whether `member` is subscribed to `topic`. */
  isSubscribed(member: M, topic: string): boolean {
    return member.topics !== null && member.topics.has(topic);
  }

  /** The subscribers of `topic` (undefined when it has none). Do not modify the set. */
  subscribers(topic: string): ReadonlySet<M> | undefined {
    return this.byTopic.get(topic);
  }

  /** Number of subscribers of `topic`. */
  count(topic: string): number {
    return this.byTopic.get(topic)?.size ?? 0;
  }

  /** Remove `member` from every topic it joined (on disconnect). */
  removeAll(member: M): void {
    const topics = member.topics;
    if (topics === null) return;
    member.topics = null;
    for (const topic of topics) this.leave(member, topic);
  }

  private leave(member: M, topic: string): void {
    const members = this.byTopic.get(topic);
    if (members === undefined) return;
    members.delete(member);
    if (members.size === 0) {
      this.byTopic.delete(topic);
      this.events.onTopicClosed?.(topic);
    }
  }
}
