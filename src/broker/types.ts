/**
 * The broker carries broadcasts and topic publishes between several event apps: other
 * workers of a `node:cluster`, other machines (e.g. through Redis pub/sub), or several apps in
 * one process. Each app joins the broker once; what it broadcasts or publishes is delivered to
 * its own connections directly and handed to the broker for every other member, which frames it
 * once and writes it to its own connections.
 *
 * The interface is deliberately tiny so an adapter is a few lines over any pub/sub system.
 * Without a broker an app is on its own (nothing leaves the process).
 */

/** A message from another member: a publish to `topic`, or a broadcast when `topic` is null. */
export type BrokerListener = (topic: string | null, payload: Buffer, isText: boolean) => void;

/** One app's place in a broker. */
export interface BrokerMembership {
  /**
   * Hand a broadcast (`topic` null) or a publish to every OTHER member. Must not call this
   * member's own listener (its connections were served already). Must not modify `payload`.
   */
  publish(topic: string | null, payload: Buffer, isText: boolean): void;
  /** A topic got its first local subscriber (e.g. start listening to its channel). Optional. */
  topicOpened?(topic: string): void;
  /** A topic lost its last local subscriber. Optional. */
  topicClosed?(topic: string): void;
  /** Stop receiving; called when the app closes. */
  leave(): void | Promise<void>;
}

export interface Broker {
  /** Join: `listener` receives what the other members broadcast and publish. */
  join(listener: BrokerListener): BrokerMembership;
}
