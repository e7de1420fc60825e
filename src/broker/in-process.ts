import type { Broker, BrokerListener, BrokerMembership } from './types.js';

/**
 * A broker between apps in the same process (e.g. one app per port, or an app per tenant):
 * delivery is synchronous, and every member gets every broadcast and publish.
 */
export class InProcessBroker implements Broker {
  private readonly listeners = new Set<BrokerListener>();

  /** Number of members. */
  get size(): number {
    return this.listeners.size;
  }

  join(listener: BrokerListener): BrokerMembership {
    const listeners = this.listeners;
    listeners.add(listener);
    return {
      publish(topic, payload, isText) {
        for (const other of listeners) {
          if (other !== listener) other(topic, payload, isText);
        }
      },
      leave() {
        listeners.delete(listener);
      },
    };
  }
}
