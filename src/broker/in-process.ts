import { BrokerHealth } from './health.js';
import {
  nodeOf,
  type Broker,
  type BrokerDirectListener,
  type BrokerHealthListener,
  type BrokerJoinOptions,
  type BrokerListener,
  type BrokerMembership,
  type BrokerStats,
} from './types.js';

interface Member {
  readonly node: number;
  readonly listener: BrokerListener;
  readonly direct: BrokerDirectListener | undefined;
  readonly topics: Set<string>;
  connections: number;
}

/**
 * A broker between apps in the same process (e.g. one app per port, or an app per tenant):
 * delivery is synchronous, a publish reaches only the members with subscribers of its topic,
 * and each member gets its own node number (1, 2, ...) so connection ids stay unique.
 */
export class InProcessBroker implements Broker {
  private readonly members = new Map<number, Member>();
  private readonly health = new BrokerHealth();
  private nextNode = 0;

  constructor() {
    this.health.connected = true;
  }

  /** Number of members. */
  get size(): number {
    return this.members.size;
  }

  join(listener: BrokerListener, options: BrokerJoinOptions = {}): BrokerMembership {
    const members = this.members;
    const health = this.health;
    const self: Member = { node: ++this.nextNode, listener, direct: options.direct, topics: new Set(), connections: 0 };
    members.set(self.node, self);
    return {
      node: self.node,
      publish(topic, payload, isText) {
        health.published++;
        for (const other of members.values()) {
          if (other === self || (topic !== null && !other.topics.has(topic))) continue;
          health.received++;
          other.listener(topic, payload, isText);
        }
      },
      sendTo(id, payload, isText) {
        const owner = members.get(nodeOf(id));
        if (owner === undefined || owner === self || owner.direct === undefined) {
          health.drop();
          return false;
        }
        health.published++;
        health.received++;
        owner.direct(id, payload, isText);
        return true;
      },
      topicOpened: (topic) => void self.topics.add(topic),
      topicClosed: (topic) => void self.topics.delete(topic),
      connectionOpened: () => void self.connections++,
      connectionClosed: () => void self.connections--,
      remoteConnectionCount() {
        let count = 0;
        for (const other of members.values()) if (other !== self) count += other.connections;
        return count;
      },
      leave() {
        members.delete(self.node);
      },
    };
  }

  onHealth(listener: BrokerHealthListener): () => void {
    return this.health.on(listener);
  }

  stats(): BrokerStats {
    const topics = new Set<string>();
    for (const member of this.members.values()) for (const topic of member.topics) topics.add(topic);
    return this.health.stats(topics.size);
  }

  async close(): Promise<void> {
    this.members.clear();
  }
}
