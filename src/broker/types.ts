/**
 * The broker carries broadcasts, topic publishes and directed sends between several event apps:
 * other workers of a `node:cluster`, other machines (through Redis pub/sub), or several apps in
 * one process. Each app joins the broker once; what it broadcasts or publishes is delivered to
 * its own connections directly and handed to the broker ONCE (not once per connection) for the
 * other members, each of which frames it once and writes it to its own connections. A member
 * never gets its own messages back, so nothing is delivered twice.
 *
 * Across processes delivery is at most once: a message that cannot be handed across (the link
 * is down, a bounded queue is full) is dropped and counted in `stats().dropped` and in a
 * `'dropped'` health event, never queued without bound and never silently lost. Local delivery
 * never waits for the broker.
 *
 * Without a broker an app is on its own (nothing leaves the process) and pays nothing.
 */

/** A message from another member: a publish to `topic`, or a broadcast when `topic` is null. */
export type BrokerListener = (topic: string | null, payload: Buffer, isText: boolean) => void;

/** A message from another member for one connection of this member (`AsyncSender.send(id)`). */
export type BrokerDirectListener = (id: number, payload: Buffer, isText: boolean) => void;

/** What a member hears besides broadcasts and publishes (all optional). */
export interface BrokerJoinOptions {
  /** Directed sends to this member's connections. Without it they are dropped and counted. */
  direct?: BrokerDirectListener;
}

/**
 * Connection ids are unique across every member of a broker: the member's `node` number times
 * 2^32 plus a counter of its own (from 1). A process without a broker, or whose broker is local,
 * has node 0, so its ids are 1, 2, 3...
 */
export const NODE_ID_FACTOR = 2 ** 32;
/** The largest node number that keeps ids exact in a double (2^53 / 2^32 - 1). */
export const MAX_NODE = 2 ** 21 - 1;

/** The node part of a connection id. */
export function nodeOf(id: number): number {
  return Math.floor(id / NODE_ID_FACTOR);
}

/** One app's place in a broker. */
export interface BrokerMembership {
  /** This member's node number: the high part of its connection ids (see `NODE_ID_FACTOR`). */
  readonly node: number;
  /**
   * Hand a broadcast (`topic` null) or a publish to every OTHER member (only to those with
   * subscribers of `topic`, where the broker can tell). Must not call this member's own
   * listener (its connections were served already). Must not modify or keep `payload` past
   * the call unless it copied it. Never throws and never blocks: what cannot go across is
   * dropped and counted.
   */
  publish(topic: string | null, payload: Buffer, isText: boolean): void;
  /**
   * Hand a message to the member that owns connection `id` (`nodeOf(id)`), once. False if it
   * could not be handed on (no such member known, link down, queue full; counted as dropped).
   * Optional: without it, sends to other members' connections are not delivered.
   */
  sendTo?(id: number, payload: Buffer, isText: boolean): boolean;
  /** A topic got its first local subscriber (start listening to its channel). Optional. */
  topicOpened?(topic: string): void;
  /** A topic lost its last local subscriber (stop listening). Optional. */
  topicClosed?(topic: string): void;
  /** A connection of this member opened (it may be counted and reported). Optional. */
  connectionOpened?(id: number): void;
  /** A connection of this member closed. Optional. */
  connectionClosed?(id: number): void;
  /**
   * The other members' open connections, as they last reported them (eventually consistent).
   * Optional: without it, counts are local.
   */
  remoteConnectionCount?(): number;
  /** Stop receiving; called when the app closes. The broker itself stays usable. */
  leave(): void | Promise<void>;
}

/** A change in a broker's link to the other members. */
export type BrokerHealthEvent =
  /** The link is up (at start, and again after an outage). */
  | { readonly type: 'connected' }
  /** The link is down: nothing crosses until `'connected'`; local delivery goes on. */
  | { readonly type: 'disconnected'; readonly error: Error | undefined }
  /**
   * Messages that could not be handed across since the last such event (reported at most once
   * a second while it happens): the link was down, a bounded queue was full, or a hand-over
   * failed in flight (then the message may or may not have arrived).
   */
  | { readonly type: 'dropped'; readonly count: number }
  /**
   * This member was not listening for a while (its subscription link broke and has just been
   * restored): what other members broadcast, sent to its connections or published to `topics`
   * between `since` and `until` (ms since the epoch, this process's clock; `since` is when the
   * break was noticed, so the gap may have begun a little earlier) may not have arrived. The
   * senders cannot count these as dropped: only the receiver knows it was away. An app that
   * needs to can resynchronise its clients (e.g. send them the current state) on this event.
   */
  | { readonly type: 'gap'; readonly since: number; readonly until: number; readonly topics: readonly string[] }
  /** Something went wrong that is not an outage (e.g. a malformed message was ignored). */
  | { readonly type: 'error'; readonly error: Error }
  /**
   * A cluster worker exited (reported once per worker, by the primary). `connectionIds` are
   * the connections it had open: their disconnect handlers could not run.
   */
  | {
      readonly type: 'worker-exit';
      readonly node: number;
      readonly pid: number | undefined;
      readonly code: number | null;
      readonly signal: string | null;
      readonly connectionIds: readonly number[];
      /** Whether a replacement is being started (not while shutting down). */
      readonly replaced: boolean;
    };

export type BrokerHealthListener = (event: BrokerHealthEvent) => void;

/** Counters of a broker, since it was made. */
export interface BrokerStats {
  /** Whether the link to the other members is up. */
  readonly connected: boolean;
  /** Messages handed across (broadcasts, publishes, directed sends), each counted once. */
  readonly published: number;
  /** Messages received from other members (only those for topics this member listens to). */
  readonly received: number;
  /** Messages that could not be handed across (see the `'dropped'` health event). */
  readonly dropped: number;
  /** Topics this member listens to (has local subscribers of). */
  readonly topics: number;
  /** Times this member was not listening for a while and may have missed messages (see the `'gap'` health event). */
  readonly gaps: number;
}

export interface Broker {
  /**
   * Join: `listener` receives what the other members broadcast and publish, `options.direct`
   * what they send to one of this member's connections.
   */
  join(listener: BrokerListener, options?: BrokerJoinOptions): BrokerMembership;
  /** Listen to health events. Returns a function that stops listening. */
  onHealth(listener: BrokerHealthListener): () => void;
  /** The counters. */
  stats(): BrokerStats;
  /** Release the broker's resources (its connections, timers, IPC listeners). */
  close(): Promise<void>;
}
