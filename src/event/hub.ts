import { WebSocketError } from '../protocol/errors.js';
import { deflateConfigFor } from '../protocol/deflate/negotiate.js';
import { CloseCode, encodeShared, Opcode } from '../protocol/frame.js';
import { SocketBinding, DEFAULT_CLOSE_TIMEOUT_MS } from '../node/socket.js';
import type { AcceptedUpgrade } from '../node/upgrade.js';
import { formatAddress } from '../node/address.js';
import { Metrics } from '../node/metrics.js';
import { MAX_NODE, NODE_ID_FACTOR, type Broker, type BrokerMembership } from '../broker/types.js';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HeartbeatSweep, type HeartbeatOptions } from './heartbeat.js';
import { Topics } from './topics.js';
import { Peer } from './peer.js';
import { deliverDirect, deliverFromBroker } from './delivery.js';
import type { AsyncStream } from './facades.js';
import type {
  AsyncAppOptions,
  AsyncErrorHandler,
  ConnectHandler,
  DisconnectHandler,
  MessageHandler,
  StreamStateFactory,
} from './types.js';

const DEFAULT_MAX_BUFFERED_AMOUNT = 1024 * 1024;
const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;

/** A ping frame with an empty payload, shared by every heartbeat ping. */
const PING_FRAME = encodeShared(Opcode.Ping, Buffer.alloc(0));

/**
 * The shared machinery of an app: its configuration and handlers, the registry of its
 * connections, waiting for them at shutdown, topics, heartbeat and broker membership.
 * Delivery to connections is in `delivery.ts`.
 */
export class Hub {
  state: unknown;
  connectHandler: ConnectHandler<any, any> | null = null;
  messageHandler: MessageHandler<any, any> | null = null;
  disconnectHandler: DisconnectHandler<any, any> | null = null;
  streamStateFactory: StreamStateFactory<any> | null = null;
  errorHandler: AsyncErrorHandler | null = null;

  readonly options: AsyncAppOptions;
  maxBufferedAmount = DEFAULT_MAX_BUFFERED_AMOUNT;
  closeOnBackpressure = false;
  maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES;
  closeTimeoutMs = DEFAULT_CLOSE_TIMEOUT_MS;
  heartbeat: HeartbeatSweep<Peer> | null = null;
  broker: Broker | null = null;
  membership: BrokerMembership | null = null;
  /** The app's counters: `options.metrics`, else its own. */
  metrics: Metrics = new Metrics();

  readonly peers = new Map<number, Peer>();
  readonly topics: Topics<Peer>;
  private nextId = 0;
  /** Connections registered whose disconnect handler has not finished. */
  private live = 0;
  /** Shutdown in progress: `unregister`/`finished` then wake the waiters. */
  closing = false;
  private waiters: (() => void)[] = [];

  constructor(state: unknown, options: AsyncAppOptions) {
    this.state = state;
    this.options = {};
    this.topics = new Topics<Peer>({
      onTopicOpened: (topic) => this.membership?.topicOpened?.(topic),
      onTopicClosed: (topic) => this.membership?.topicClosed?.(topic),
    });
    this.configure(options);
  }

  configure(options: AsyncAppOptions): void {
    Object.assign(this.options, options);
    const merged = this.options;
    // The upgrade counts refusals in `options.metrics`, so it always holds the app's.
    merged.metrics ??= this.metrics;
    this.metrics = merged.metrics;
    this.maxBufferedAmount = merged.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED_AMOUNT;
    this.closeOnBackpressure = merged.backpressure === 'close';
    if (merged.backpressure !== undefined && merged.backpressure !== 'drop' && merged.backpressure !== 'close') {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `unknown backpressure policy ${JSON.stringify(merged.backpressure)}`);
    }
    this.maxQueuedBytes = merged.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.closeTimeoutMs = merged.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    // Bad compression settings are reported now, not on the first upgrade.
    deflateConfigFor(merged.perMessageDeflate, 'server', false);
    if ('heartbeat' in options) this.setHeartbeat(options.heartbeat);
    if ('broker' in options) this.setBroker(options.broker ?? null);
  }

  setHeartbeat(heartbeat: HeartbeatOptions | boolean | undefined): void {
    this.heartbeat?.stop();
    this.heartbeat = null;
    if (heartbeat === undefined || heartbeat === false) return;
    this.heartbeat = new HeartbeatSweep<Peer>(heartbeat === true ? {} : heartbeat, () => this.peers.values(), {
      ping: (peer) => {
        if (peer.state === 'open') peer.sendShared(PING_FRAME);
      },
      expire: (peer) => {
        // Called again on later sweeps until the close completes: counted once.
        if (peer.state === 'open') this.metrics.heartbeatTimeouts++;
        // The peer is unresponsive: do not wait long for its close frame.
        const timeoutMs = Math.min(this.closeTimeoutMs, this.heartbeat?.intervalMs ?? this.closeTimeoutMs);
        peer.close(CloseCode.PolicyViolation, 'heartbeat timeout', timeoutMs);
      },
    });
    for (const peer of this.peers.values()) {
      peer.heartbeatSince = Date.now();
      peer.heartbeatSeen = false;
    }
    if (this.peers.size > 0) this.heartbeat.start();
  }

  setBroker(broker: Broker | null): void {
    if (this.membership !== null) void this.membership.leave();
    this.membership = null;
    this.broker = broker;
    this.join();
  }

  /** Join the broker if there is one and we are not a member (again, after a close). */
  join(): void {
    if (this.broker === null || this.membership !== null) return;
    const membership = this.broker.join((topic, payload, isText) => deliverFromBroker(this, topic, payload, isText), {
      direct: (id, payload, isText) => deliverDirect(this, id, payload, isText),
    });
    this.membership = membership;
    for (const topic of this.topics.names()) membership.topicOpened?.(topic);
    for (const id of this.peers.keys()) membership.connectionOpened?.(id);
  }

  /**
   * The next connection id: the broker member's node number times 2^32 plus a counter, so ids
   * are unique across processes (node 0 without a broker: 1, 2, 3...). After 2^32 - 1
   * connections of one member the counter starts again, skipping ids still open.
   */
  private nextConnectionId(): number {
    const node = this.membership?.node ?? 0;
    if (node === 0 || node > MAX_NODE) return ++this.nextId;
    for (;;) {
      if (++this.nextId >= NODE_ID_FACTOR) this.nextId = 1;
      const id = node * NODE_ID_FACTOR + this.nextId;
      if (!this.peers.has(id)) return id;
    }
  }

  report(error: unknown, stream: AsyncStream<any> | undefined): void {
    const handler = this.errorHandler;
    if (handler !== null) {
      try {
        handler(error, stream);
        return;
      } catch (hookError) {
        error = hookError;
      }
    }
    const where = stream === undefined ? '' : ` (connection ${stream.id}, ${stream.peerAddr})`;
    console.error(`humphrey-ws: event handler error${where}:`, error);
  }

  // Connections ----------------------------------------------------------------------------------

  /** Take over a socket whose handshake was accepted. */
  adopt(socket: Duplex, head: Buffer, accepted: AcceptedUpgrade): void {
    if (socket.destroyed) return;
    const net = socket as Socket;
    const peer = new Peer(this, this.nextConnectionId(), formatAddress(net.remoteAddress, net.remotePort), accepted.protocol);
    peer.binding = new SocketBinding(socket, peer, {
      role: 'server',
      maxMessageSize: this.options.maxMessageSize,
      closeTimeoutMs: this.closeTimeoutMs,
      deflate: accepted.deflate,
      metrics: this.metrics,
    });
    const stream = peer.stream;
    const factory = this.streamStateFactory;
    try {
      stream.state = factory !== null ? factory(stream, accepted.data) : accepted.data;
    } catch (error) {
      this.report(error, stream);
      peer.binding.close(CloseCode.InternalError);
      return;
    }
    if (peer.closed) return;
    this.peers.set(peer.id, peer);
    this.membership?.connectionOpened?.(peer.id);
    this.live++;
    if (this.heartbeat !== null && !this.heartbeat.running) this.heartbeat.start();
    peer.connect();
    peer.binding.receive(head);
  }

  unregister(peer: Peer): void {
    // A state factory may have subscribed before failing: clean topics in every case.
    this.topics.removeAll(peer);
    if (this.peers.get(peer.id) !== peer) return;
    this.peers.delete(peer.id);
    this.membership?.connectionClosed?.(peer.id);
    if (this.peers.size === 0) this.heartbeat?.stop();
    if (this.closing) this.wake();
  }

  /** The disconnect handler of `peer` has finished. */
  finished(_peer: Peer): void {
    this.live--;
    if (this.closing) this.wake();
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves true once `predicate` holds (checked on each close), false after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (predicate()) {
        resolve(true);
        return;
      }
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const check = (): void => {
        if (predicate()) {
          clearTimeout(timer);
          resolve(true);
        } else {
          this.waiters.push(check);
        }
      };
      this.waiters.push(check);
    });
  }

  get liveCount(): number {
    return this.live;
  }
}
