/**
 * `humphrey-ws/redis`: a broker over Redis pub/sub, for event apps on many machines. Needs the
 * `ioredis` package (an optional peer dependency: the core package has no dependencies).
 *
 * ```ts
 * import { RedisBroker } from 'humphrey-ws/redis';
 * const broker = await RedisBroker.connect({ url: 'redis://10.0.0.5:6379' });
 * await new AsyncWebSocketApp().withBroker(broker).withMessageHandler(...).run(':8080');
 * ```
 *
 * Channels (names start with `prefix`): `<prefix>:all` carries broadcasts and connection counts
 * and every process listens to it; `<prefix>:topic:<topic>` is listened to only by processes
 * with local subscribers of the topic (subscribed on the first, unsubscribed after the last);
 * `<prefix>:node:<n>` carries directed sends to process `n`. Each message is PUBLISHed once,
 * in a small binary envelope (no base64): kind, flags, the sender's random origin id, then the
 * payload as it is. A process skips messages carrying its own origin, so it never delivers its
 * own message twice.
 *
 * When Redis goes away, local delivery goes on: publishes are dropped (never queued) and
 * counted, and so are publishes that were in flight when the link broke (they may or may not
 * have arrived): at most once across processes. ioredis reconnects and resubscribes by itself;
 * the `'connected'` health event says when cross-process traffic flows again.
 *
 * What a process misses while its own subscription link is down (between the break and the
 * resubscription) cannot be counted by the senders for topic publishes (Redis only tells a
 * publisher how many subscribers got a message, not how many should have), so the receiver
 * reports it: a `'gap'` health event, with the time span and the topics, once the subscriptions
 * are back, and `stats().gaps`. Broadcasts that reached fewer processes than are known are
 * also counted as dropped by their sender.
 */
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { WebSocketError } from '../protocol/errors.js';
import { BrokerHealth } from './health.js';
import {
  MAX_NODE,
  nodeOf,
  type Broker,
  type BrokerDirectListener,
  type BrokerHealthListener,
  type BrokerJoinOptions,
  type BrokerListener,
  type BrokerMembership,
  type BrokerStats,
} from './types.js';

export interface RedisBrokerOptions {
  /** Where Redis is: `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** More ioredis options (e.g. `tls`, `password`); those the broker needs for its guarantees win. */
  redis?: RedisOptions;
  /** Start of every channel and key name; apps that share a Redis but not their messages use different ones. Default `'humphrey-ws'`. */
  prefix?: string;
  /** Bytes of publishes sent to Redis and not yet acknowledged past which new ones are dropped and counted. Default 16 MiB. */
  maxPendingBytes?: number;
  /** How long `connect` waits for Redis to answer before it rejects with `WS_ERR_BROKER`. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** How often a process re-announces its connection count; counts not renewed for three intervals are forgotten. Default 5000 ms. */
  presenceIntervalMs?: number;
  /** Longest pause between reconnection attempts (they start at 50 ms and double). Default 1000 ms. */
  maxReconnectDelayMs?: number;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const DEFAULT_PREFIX = 'humphrey-ws';
const DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_PRESENCE_INTERVAL_MS = 5000;
const DEFAULT_MAX_RECONNECT_DELAY_MS = 1000;
/** A changed connection count is announced after this long (changes in between coalesce). */
const PRESENCE_DELAY_MS = 50;
/** How long `close` waits for publishes in flight to be acknowledged. */
const CLOSE_DRAIN_MS = 2000;

// The envelope -----------------------------------------------------------------------------------

const KIND_MESSAGE = 1;
const KIND_DIRECT = 2;
const KIND_PRESENCE = 3;
const FLAG_TEXT = 1;
/** On presence: the sender is new (or leaving) and asks the others to announce themselves. */
const FLAG_HELLO = 2;
const FLAG_LEAVING = 4;
/** kind (1), flags (1), origin (8). */
const HEADER = 10;
/** A directed send: the header, then the connection id as a double. */
const DIRECT_HEADER = HEADER + 8;
/** Presence: the header, the node number (u32), the connection count (u32). */
const PRESENCE_SIZE = HEADER + 8;

/** Raises the node counter to at least ARGV[1]: after Redis lost its data, numbers in use are not handed out again. */
const CLAIM_SCRIPT = "local c = tonumber(redis.call('GET', KEYS[1]) or '0') if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1";

function envelope(kind: number, flags: number, origin: Buffer, extra: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + extra + payload.length);
  out[0] = kind;
  out[1] = flags;
  origin.copy(out, 2);
  out.set(payload, HEADER + extra);
  return out;
}

interface Presence {
  node: number;
  count: number;
  seen: number;
}

interface Member {
  listener: BrokerListener;
  direct: BrokerDirectListener | undefined;
}

/**
 * A broker over Redis pub/sub (see the module comment). One app at a time joins it: make one
 * broker per app. Get one with `RedisBroker.connect`, which resolves once Redis has answered
 * and the process has its node number (the high part of its connection ids).
 */
export class RedisBroker implements Broker {
  /** This process's node number, unique among the processes on this Redis (from a counter in Redis). */
  readonly node: number;
  readonly prefix: string;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly origin = randomBytes(8);
  private readonly originHigh: number;
  private readonly originLow: number;
  private readonly health = new BrokerHealth();
  private readonly maxPendingBytes: number;
  private readonly presenceIntervalMs: number;
  private readonly allChannel: string;
  private readonly nodeChannel: string;
  private readonly topicChannelPrefix: string;
  /** Channel name -> topic, for the topics this process listens to. */
  private readonly channelTopics = new Map<string, string>();
  private readonly presence = new Map<string, Presence>();
  private member: Member | null = null;
  private connections = 0;
  private pendingBytes = 0;
  private pubReady = false;
  private subReady = false;
  /** When the subscription link broke (null while it is up, or before it ever was). */
  private subDownSince: number | null = null;
  private lastError: Error | undefined;
  private closed = false;
  private presenceTimer: ReturnType<typeof setInterval> | null = null;
  private announceTimer: ReturnType<typeof setTimeout> | null = null;
  private announceHello = false;
  private drainWaiter: (() => void) | null = null;
  private lastErrorReport = 0;

  /** Connect to Redis (both links), take a node number, and listen to the shared channels. */
  static async connect(options: RedisBrokerOptions = {}): Promise<RedisBroker> {
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    const maxDelay = options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
    const base: RedisOptions = {
      ...options.redis,
      lazyConnect: true,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times - 1, 10), maxDelay),
    };
    // Publishes are never queued while offline and never resent: at most once, bounded memory.
    const pub = new Redis(options.url ?? DEFAULT_URL, {
      ...base,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectionName: `${prefix}:pub`,
    });
    // Subscriptions made while offline wait for the link; ioredis restores them after a reconnect.
    const sub = new Redis(options.url ?? DEFAULT_URL, {
      ...base,
      enableOfflineQueue: true,
      autoResubscribe: true,
      maxRetriesPerRequest: null,
      connectionName: `${prefix}:sub`,
    });
    // Until the broker owns them, errors are only remembered (the connect promise reports them).
    let lastError: Error | undefined;
    const remember = (error: Error): void => void (lastError = error);
    pub.on('error', remember);
    sub.on('error', remember);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const why = lastError === undefined ? '' : `: ${lastError.message}`;
        reject(new WebSocketError('WS_ERR_BROKER', `Redis did not answer within ${timeoutMs} ms${why}`));
      }, timeoutMs);
    });
    try {
      const node = await Promise.race([
        (async () => {
          // The first attempts may fail (Redis still starting): ioredis retries until the deadline.
          await Promise.all([ready(pub), ready(sub)]);
          const counter = await pub.incr(`${prefix}:nodes`);
          return ((counter - 1) % MAX_NODE) + 1;
        })(),
        deadline,
      ]);
      const broker = new RedisBroker(pub, sub, node, prefix, options);
      await Promise.race([broker.listenShared(), deadline]);
      return broker;
    } catch (error) {
      pub.disconnect();
      sub.disconnect();
      throw error;
    } finally {
      clearTimeout(timer);
      pub.off('error', remember);
      sub.off('error', remember);
    }
  }

  private constructor(pub: Redis, sub: Redis, node: number, prefix: string, options: RedisBrokerOptions) {
    this.pub = pub;
    this.sub = sub;
    this.node = node;
    this.prefix = prefix;
    this.originHigh = this.origin.readUInt32BE(0);
    this.originLow = this.origin.readUInt32BE(4);
    this.maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.presenceIntervalMs = options.presenceIntervalMs ?? DEFAULT_PRESENCE_INTERVAL_MS;
    this.allChannel = `${prefix}:all`;
    this.nodeChannel = `${prefix}:node:${node}`;
    this.topicChannelPrefix = `${prefix}:topic:`;
    this.pubReady = pub.status === 'ready';

    const onError = (error: Error): void => {
      this.lastError = error;
    };
    pub.on('error', onError);
    sub.on('error', onError);
    pub.on('ready', () => {
      this.pubReady = true;
      // Keep the counter above our number even if Redis restarted empty.
      pub.eval(CLAIM_SCRIPT, 1, `${prefix}:nodes`, node).catch(onError);
      this.update();
    });
    pub.on('close', () => {
      this.pubReady = false;
      this.update();
    });
    sub.on('ready', () => {
      // ioredis resubscribes right after 'ready'; a ping answered after that says it is done.
      process.nextTick(() => {
        sub.ping().then(
          () => {
            this.subReady = sub.status === 'ready';
            if (this.subReady) this.reportGap();
            this.update();
            if (this.subReady) this.scheduleAnnounce(true);
          },
          onError,
        );
      });
    });
    sub.on('close', () => {
      if (this.subReady && this.subDownSince === null) this.subDownSince = Date.now();
      this.subReady = false;
      this.update();
    });
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
  }

  private async listenShared(): Promise<void> {
    await this.sub.subscribe(this.allChannel, this.nodeChannel);
    this.subReady = this.sub.status === 'ready';
    this.update();
    this.presenceTimer = setInterval(() => this.renewPresence(), this.presenceIntervalMs);
    this.presenceTimer.unref();
  }

  /** The subscriptions are back after a break: say what may have been missed in between. */
  private reportGap(): void {
    const since = this.subDownSince;
    if (since === null || this.closed) return;
    this.subDownSince = null;
    this.health.gap(since, [...this.channelTopics.values()]);
  }

  private update(): void {
    if (this.closed) return;
    if (this.pubReady && this.subReady) this.health.up();
    else this.health.down(this.lastError);
  }

  // Broker ---------------------------------------------------------------------------------------

  join(listener: BrokerListener, options: BrokerJoinOptions = {}): BrokerMembership {
    if (this.closed) throw new WebSocketError('WS_ERR_BROKER', 'the Redis broker is closed');
    if (this.member !== null) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a RedisBroker serves one app at a time: make one broker per app');
    }
    const member: Member = { listener, direct: options.direct };
    this.member = member;
    this.connections = 0;
    this.scheduleAnnounce(true);
    return {
      node: this.node,
      publish: (topic, payload, isText) => {
        const channel = topic === null ? this.allChannel : this.topicChannelPrefix + topic;
        // A broadcast should reach every process we know of (and our own subscriber, when it is
        // subscribed): fewer receivers means some process was between a reconnect and its
        // resubscription, and missed it, which is counted, not hidden.
        const expected = topic === null ? this.presence.size + (this.subReady ? 1 : 0) : 0;
        this.send(channel, envelope(KIND_MESSAGE, isText ? FLAG_TEXT : 0, this.origin, 0, payload), false, expected);
      },
      sendTo: (id, payload, isText) => {
        const node = nodeOf(id);
        if (node === this.node || node === 0) {
          this.health.drop();
          return false;
        }
        const message = envelope(KIND_DIRECT, isText ? FLAG_TEXT : 0, this.origin, 8, payload);
        message.writeDoubleBE(id, HEADER);
        return this.send(`${this.prefix}:node:${node}`, message, true);
      },
      topicOpened: (topic) => this.listen(topic),
      topicClosed: (topic) => this.unlisten(topic),
      connectionOpened: () => {
        this.connections++;
        this.scheduleAnnounce(false);
      },
      connectionClosed: () => {
        this.connections--;
        this.scheduleAnnounce(false);
      },
      remoteConnectionCount: () => {
        let count = 0;
        for (const entry of this.presence.values()) count += entry.count;
        return count;
      },
      leave: () => {
        if (this.member !== member) return;
        this.member = null;
        for (const channel of [...this.channelTopics.keys()]) this.unlistenChannel(channel);
        this.connections = 0;
        this.announce(FLAG_LEAVING);
      },
    };
  }

  onHealth(listener: BrokerHealthListener): () => void {
    return this.health.on(listener);
  }

  stats(): BrokerStats {
    return this.health.stats(this.channelTopics.size);
  }

  /**
   * Leave, wait (at most 2 s) for publishes in flight to be acknowledged, and close both links.
   * Pending drop counts are reported first.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.member = null;
    this.announce(FLAG_LEAVING);
    this.closed = true;
    if (this.presenceTimer !== null) clearInterval(this.presenceTimer);
    if (this.announceTimer !== null) clearTimeout(this.announceTimer);
    if (this.pendingBytes > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_DRAIN_MS);
        this.drainWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.health.reportDrops();
    this.health.connected = false;
    await Promise.all([quit(this.pub), quit(this.sub)]);
  }

  // Sending ---------------------------------------------------------------------------------------

  /**
   * PUBLISH once; false (and counted) if it cannot go now. `direct`: no receiver counts as a
   * drop. `expectedReceivers`: fewer subscribers than this count as that many drops.
   */
  private send(channel: string, message: Buffer, direct: boolean, expectedReceivers = 0): boolean {
    const size = message.length;
    if (!this.pubReady || this.closed || this.pendingBytes + size > this.maxPendingBytes) {
      this.health.drop();
      return false;
    }
    this.pendingBytes += size;
    this.health.published++;
    this.pub.publish(channel, message, (error, receivers) => {
      this.pendingBytes -= size;
      if (error !== null && error !== undefined) this.health.drop();
      else if (direct && receivers === 0) this.health.drop();
      else if (typeof receivers === 'number' && receivers < expectedReceivers) this.health.drop(expectedReceivers - receivers);
      if (this.pendingBytes === 0 && this.drainWaiter !== null) {
        const waiter = this.drainWaiter;
        this.drainWaiter = null;
        waiter();
      }
    });
    return true;
  }

  private listen(topic: string): void {
    const channel = this.topicChannelPrefix + topic;
    if (this.channelTopics.has(channel)) return;
    this.channelTopics.set(channel, topic);
    this.sub.subscribe(channel).catch((error: Error) => this.reportError(error));
  }

  private unlisten(topic: string): void {
    this.unlistenChannel(this.topicChannelPrefix + topic);
  }

  private unlistenChannel(channel: string): void {
    if (!this.channelTopics.delete(channel)) return;
    this.sub.unsubscribe(channel).catch((error: Error) => this.reportError(error));
  }

  private reportError(error: Error): void {
    if (this.closed) return;
    // At most one error event a second: a flood of bad messages must not become a flood of events.
    const now = Date.now();
    if (now - this.lastErrorReport < 1000) return;
    this.lastErrorReport = now;
    this.health.emit({ type: 'error', error });
  }

  // Connection counts ------------------------------------------------------------------------------

  private scheduleAnnounce(hello: boolean): void {
    if (hello) this.announceHello = true;
    if (this.announceTimer !== null || this.closed) return;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = null;
      const flags = this.announceHello ? FLAG_HELLO : 0;
      this.announceHello = false;
      this.announce(flags);
    }, PRESENCE_DELAY_MS);
    this.announceTimer.unref();
  }

  private announce(flags: number): void {
    if (!this.pubReady || this.closed) return;
    const message = envelope(KIND_PRESENCE, flags, this.origin, 8, Buffer.alloc(0));
    message.writeUInt32BE(this.node, HEADER);
    message.writeUInt32BE(this.member === null ? 0 : this.connections, HEADER + 4);
    // Counts are not messages: they are neither counted as published nor as dropped.
    this.pub.publish(this.allChannel, message).catch(() => {});
  }

  private renewPresence(): void {
    const stale = Date.now() - 3 * this.presenceIntervalMs;
    for (const [origin, entry] of this.presence) if (entry.seen < stale) this.presence.delete(origin);
    if (this.member !== null) this.announce(0);
  }

  // Receiving ---------------------------------------------------------------------------------------

  private onMessage(channel: Buffer, message: Buffer): void {
    if (message.length < HEADER) {
      this.reportError(new WebSocketError('WS_ERR_BROKER', `ignored a malformed message on ${channel.toString()}`));
      return;
    }
    // Our own broadcast or publish, back from Redis: its local delivery is done.
    if (message.readUInt32BE(2) === this.originHigh && message.readUInt32BE(6) === this.originLow) return;
    const kind = message[0];
    const isText = (message[1]! & FLAG_TEXT) !== 0;
    const member = this.member;
    if (kind === KIND_MESSAGE) {
      if (member === null) return;
      const name = channel.toString();
      let topic: string | null;
      if (name === this.allChannel) topic = null;
      else {
        const known = this.channelTopics.get(name);
        if (known === undefined) return; // unsubscribed a moment ago
        topic = known;
      }
      this.health.received++;
      member.listener(topic, message.subarray(HEADER), isText);
    } else if (kind === KIND_DIRECT && message.length >= DIRECT_HEADER) {
      if (member === null || member.direct === undefined) return;
      this.health.received++;
      member.direct(message.readDoubleBE(HEADER), message.subarray(DIRECT_HEADER), isText);
    } else if (kind === KIND_PRESENCE && message.length >= PRESENCE_SIZE) {
      this.onPresence(message);
    } else {
      this.reportError(new WebSocketError('WS_ERR_BROKER', `ignored a malformed message on ${channel.toString()}`));
    }
  }

  private onPresence(message: Buffer): void {
    const origin = message.toString('hex', 2, HEADER);
    const flags = message[1]!;
    if ((flags & FLAG_LEAVING) !== 0) {
      this.presence.delete(origin);
      return;
    }
    const node = message.readUInt32BE(HEADER);
    const count = message.readUInt32BE(HEADER + 4);
    this.presence.set(origin, { node, count, seen: Date.now() });
    // A newcomer (or a process back from an outage) learns the others' counts from their answers.
    if ((flags & FLAG_HELLO) !== 0 && this.member !== null) this.scheduleAnnounce(false);
  }
}

/** Start connecting `client` and resolve once it is ready (retrying as its strategy says). */
function ready(client: Redis): Promise<void> {
  return new Promise((resolve) => {
    client.once('ready', () => resolve());
    client.connect().catch(() => {});
  });
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      client.quit(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1000);
      }),
    ]);
  } catch {
    // The link broke while quitting: it is closed either way.
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
