import { createUpgradeListener, type UpgradeListener, type UpgradeRequest } from './node/listener.js';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketError } from './protocol/errors.js';
import { CloseCode, encodeClosePayload, encodeFrame, isValidCloseCode, Opcode } from './protocol/frame.js';
import { buildRejectResponse } from './protocol/handshake.js';
import { Message, type MessageLike } from './message.js';
import { SocketBinding, DEFAULT_CLOSE_TIMEOUT_MS, type BindingEvents } from './node/socket.js';
import { acceptUpgrade, type AcceptedUpgrade, type UpgradeDecision, type UpgradeOptions } from './node/upgrade.js';
import { formatAddress, type CloseInfo } from './stream.js';
import { listen, parseAddress, readCertificate, urlHost } from './http/address.js';
import { matchPath } from './http/match.js';
import { HeartbeatSweep, type HeartbeatMember, type HeartbeatOptions } from './heartbeat.js';
import { Topics, type TopicMember } from './topics.js';
import type { Broker, BrokerMembership } from './broker/types.js';

// ---------------------------------------------------------------------------------------------
// Public types

/**
 * What became of a send, broadcast or publish: the number of connections the message was
 * queued for, and the number it was not queued for because they were over the backpressure
 * limit (or already closing). Nothing is dropped without being counted here.
 */
export interface DeliveryReport {
  readonly queued: number;
  readonly skipped: number;
}

/**
 * What happens to a receiver whose buffered amount is over `maxBufferedAmount` when a message
 * is sent to it: `'drop'` skips it (the message is not queued for it), `'close'` also closes
 * it with 1008 (its disconnect handler then runs).
 */
export type BackpressurePolicy = 'drop' | 'close';

/** Called when a connection opens. May return a promise; no message handler runs until it settles. */
export type ConnectHandler<State, StreamState> = (stream: AsyncStream<StreamState>, state: State) => unknown;
/** Called for each message, in order per connection. May return a promise: the next message waits for it. */
export type MessageHandler<State, StreamState> = (stream: AsyncStream<StreamState>, message: Message, state: State) => unknown;
/** Called exactly once per connection, after its last message handler has finished. */
export type DisconnectHandler<State, StreamState> = (stream: AsyncStream<StreamState>, state: State) => unknown;
/** Receives what a handler threw or rejected with (and the connection it was for, if any). */
export type AsyncErrorHandler = (error: unknown, stream: AsyncStream<any> | undefined) => void;
/** Makes a connection's initial `stream.state`; `data` is what the `onUpgrade` hook accepted with. */
export type StreamStateFactory<StreamState> = (stream: AsyncStream<unknown>, data: unknown) => StreamState;

export interface AsyncAppOptions extends UpgradeOptions {
  /** Largest incoming message in bytes; bigger ones close the connection with 1009. Default 64 MiB. */
  maxMessageSize?: number;
  /** How long a close handshake may take before the socket is destroyed. Default 5000 ms. */
  closeTimeoutMs?: number;
  /**
   * Per-connection limit of bytes waiting to be written. A message that would take a
   * connection over it is not queued for that connection (see `backpressure`); one message
   * is always accepted by a connection with nothing buffered. Default 1 MiB.
   */
  maxBufferedAmount?: number;
  /** What to do with a receiver over `maxBufferedAmount`. Default `'drop'`. */
  backpressure?: BackpressurePolicy;
  /**
   * Received messages held for a connection while one of its async handlers is running; past
   * this many bytes the connection stops reading (TCP then slows the client) until the
   * handlers catch up. Default 1 MiB.
   */
  maxQueuedBytes?: number;
  /** Ping connections and close those that go silent (see `withHeartbeat`). Default: off. */
  heartbeat?: HeartbeatOptions | boolean;
  /**
   * How long `close()` waits for clients to answer the close frame before destroying their
   * sockets, and then again at most for disconnect handlers to finish. Default 5000 ms.
   */
  shutdownTimeoutMs?: number;
  /** Where `run()` listens. Default `'127.0.0.1:0'`. */
  address?: string | number;
  /** Carries broadcasts and publishes to other apps (other workers or machines). */
  broker?: Broker;
}

/** Options of `run`. */
export interface AsyncRunOptions {
  /** Aborting this signal shuts the app down (as `close()` does). */
  signal?: AbortSignal;
  /** Serve `wss://` with this certificate and key (PEM), plus any other `https.ServerOptions`. */
  tls?: HttpsServerOptions;
}

/** Options of `attach`. */
export interface AttachOptions {
  /**
   * Only upgrade requests whose path matches this pattern (`*` wildcards, query ignored; see
   * `matchPath`) are taken. Others are left to the server's other `upgrade` listeners, or
   * answered with 404 if there are none. Default: every upgrade request.
   */
  path?: string;
}

/** Where an app that runs its own server listens. */
export interface AsyncAppAddress {
  host: string;
  port: number;
  family: string;
}

/**
 * Hands upgrade requests to an event app (from `app.connectHook()`): call it with an HTTP
 * server's `upgrade` event arguments. `shutdown()` closes the app.
 */
export interface ConnectHook {
  (request: UpgradeRequest, socket: Duplex, head: Buffer): void;
  shutdown(): Promise<void>;
  /** The number of open connections of the app. */
  readonly connectionCount: number;
}

/** A WebSocket route for `App.withWebsocketRoute` (from `asyncWebsocketHandler`). */
export interface AsyncWebSocketRoute {
  (request: UpgradeRequest, socket: Duplex, head: Buffer, state?: unknown): void;
  /** Closes the event app (the HTTP App calls this when it closes). */
  shutdown(): Promise<void>;
  readonly connectionCount: number;
}

// ---------------------------------------------------------------------------------------------
// Internals

const DEFAULT_MAX_BUFFERED_AMOUNT = 1024 * 1024;
const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5000;
const DEFAULT_ADDRESS = '127.0.0.1:0';

const QUEUED_ONE: DeliveryReport = Object.freeze({ queued: 1, skipped: 0 });
const SKIPPED_ONE: DeliveryReport = Object.freeze({ queued: 0, skipped: 1 });
const NOWHERE: DeliveryReport = Object.freeze({ queued: 0, skipped: 0 });

/** A ping frame with an empty payload, shared by every heartbeat ping. */
const PING_FRAME = encodeFrame(Opcode.Ping, Buffer.alloc(0))[0]!;

const noop = (): void => {};

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value !== undefined && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

/** One complete unmasked frame for a message (header and payload in one buffer). */
function frameOf(payload: Uint8Array, isText: boolean): Buffer {
  const parts = encodeFrame(isText ? Opcode.Text : Opcode.Binary, payload);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, parts[0]!.length + parts[1]!.length);
}

function payloadOf(message: MessageLike): Buffer | Uint8Array {
  if (typeof message === 'string') return Buffer.from(message, 'utf8');
  if (message instanceof Message) return message.bytes();
  return message;
}

function isTextOf(message: MessageLike): boolean {
  return typeof message === 'string' || (message instanceof Message && message.isText);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Answer an upgrade request with an HTTP error on its raw socket, then close it. */
function refuse(socket: Duplex, status: number, body: string): void {
  socket.on('error', noop);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(buildRejectResponse(status, body));
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * One connection: the binding's event sink, its place in the app's maps, topics and heartbeat,
 * and the per-connection event queue (used only while an async handler is in flight).
 */
class Peer implements BindingEvents, TopicMember, HeartbeatMember {
  readonly hub: Hub;
  readonly id: number;
  readonly stream: AsyncStream<any>;
  binding!: SocketBinding;
  /** A handler for this connection is running (or awaited): new events are queued. */
  busy = false;
  /** Events waiting for `busy` to clear: messages, and `null` for the disconnect. */
  queue: (Message | null)[] | null = null;
  queueHead = 0;
  queuedBytes = 0;
  paused = false;
  /** The connect handler was (or is being) run, so the disconnect handler must run. */
  registered = false;
  /** The binding reported the close. */
  closed = false;
  closeInfo: CloseInfo | undefined = undefined;
  topics: Set<string> | null = null;
  heartbeatSeen = false;
  heartbeatSince: number;
  private settledFn: (() => void) | null = null;
  private rejectedFn: ((error: unknown) => void) | null = null;

  constructor(hub: Hub, id: number, peerAddr: string, protocol: string | undefined) {
    this.hub = hub;
    this.id = id;
    this.heartbeatSince = hub.heartbeat !== null ? Date.now() : 0;
    this.stream = new AsyncStream(this, id, peerAddr, protocol);
  }

  // Binding events -----------------------------------------------------------------------------

  onMessage(payload: Buffer, isText: boolean): void {
    this.heartbeatSeen = true;
    if (this.busy) {
      this.enqueue(Message.fromReceived(payload, isText));
      return;
    }
    const handler = this.hub.messageHandler;
    if (handler === null) return;
    this.busy = true;
    if (this.invoke(handler, Message.fromReceived(payload, isText))) return;
    this.busy = false;
    if (this.queue !== null) this.drain();
  }

  onMessageParts(parts: Buffer[], _length: number, isText: boolean): void {
    this.heartbeatSeen = true;
    if (this.busy) {
      this.enqueue(Message.fromReceivedParts(parts, isText));
      return;
    }
    const handler = this.hub.messageHandler;
    if (handler === null) return;
    this.busy = true;
    if (this.invoke(handler, Message.fromReceivedParts(parts, isText))) return;
    this.busy = false;
    if (this.queue !== null) this.drain();
  }

  onPong(): void {
    this.heartbeatSeen = true;
  }

  onClose(code: number, reason: string, error: WebSocketError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const info: CloseInfo = { code, reason, wasClean: error === undefined };
    if (error !== undefined) info.error = error;
    this.closeInfo = info;
    this.hub.unregister(this);
    if (!this.registered) return;
    if (this.busy) this.enqueue(null);
    else this.disconnect();
  }

  // Handler invocation -------------------------------------------------------------------------

  /** Run the connect handler (the peer is registered). */
  connect(): void {
    this.registered = true;
    const handler = this.hub.connectHandler;
    if (handler === null) return;
    this.busy = true;
    let result: unknown;
    try {
      result = handler(this.stream, this.hub.state);
    } catch (error) {
      this.hub.report(error, this.stream);
    }
    if (isPromiseLike(result)) {
      this.await(result);
      return;
    }
    this.busy = false;
    if (this.queue !== null) this.drain();
  }

  /** Call the message handler; true if it returned a promise (then `busy` stays set). */
  private invoke(handler: MessageHandler<unknown, unknown>, message: Message): boolean {
    let result: unknown;
    try {
      result = handler(this.stream, message, this.hub.state);
    } catch (error) {
      this.hub.report(error, this.stream);
      return false;
    }
    if (!isPromiseLike(result)) return false;
    this.await(result);
    return true;
  }

  private await(result: PromiseLike<unknown>): void {
    result.then(
      (this.settledFn ??= () => this.settled()),
      (this.rejectedFn ??= (error: unknown) => {
        this.hub.report(error, this.stream);
        this.settled();
      }),
    );
  }

  private settled(): void {
    this.busy = false;
    this.drain();
  }

  private enqueue(item: Message | null): void {
    (this.queue ??= []).push(item);
    if (item === null) return;
    this.queuedBytes += item.byteLength;
    if (!this.paused && this.queuedBytes > this.hub.maxQueuedBytes) {
      this.paused = true;
      this.binding.pause();
    }
  }

  /** Run queued events until one goes async or the queue is empty. */
  private drain(): void {
    const queue = this.queue;
    if (queue === null) return;
    while (!this.busy && this.queueHead < queue.length) {
      const item = queue[this.queueHead]!;
      queue[this.queueHead++] = undefined as unknown as Message;
      if (item === null) {
        this.disconnect();
        break;
      }
      this.queuedBytes -= item.byteLength;
      const handler = this.hub.messageHandler;
      if (handler === null) continue;
      this.busy = true;
      if (!this.invoke(handler, item)) this.busy = false;
    }
    if (this.queueHead >= queue.length) {
      queue.length = 0;
      this.queueHead = 0;
    }
    if (this.paused && this.queuedBytes <= this.hub.maxQueuedBytes / 2) {
      this.paused = false;
      if (!this.closed) this.binding.resume();
    }
  }

  private disconnect(): void {
    // Nothing runs for this connection after its disconnect handler.
    this.busy = true;
    this.queue = null;
    const hub = this.hub;
    const handler = hub.disconnectHandler;
    if (handler === null) {
      hub.finished(this);
      return;
    }
    let result: unknown;
    try {
      result = handler(this.stream, hub.state);
    } catch (error) {
      hub.report(error, this.stream);
    }
    if (!isPromiseLike(result)) {
      hub.finished(this);
      return;
    }
    result.then(
      () => hub.finished(this),
      (error: unknown) => {
        hub.report(error, this.stream);
        hub.finished(this);
      },
    );
  }
}

/** The shared machinery of an app: its connections, handlers, delivery, topics and heartbeat. */
class Hub {
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
    this.maxBufferedAmount = merged.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED_AMOUNT;
    this.closeOnBackpressure = merged.backpressure === 'close';
    if (merged.backpressure !== undefined && merged.backpressure !== 'drop' && merged.backpressure !== 'close') {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `unknown backpressure policy ${JSON.stringify(merged.backpressure)}`);
    }
    this.maxQueuedBytes = merged.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.closeTimeoutMs = merged.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if ('heartbeat' in options) this.setHeartbeat(options.heartbeat);
    if ('broker' in options) this.setBroker(options.broker ?? null);
  }

  setHeartbeat(heartbeat: HeartbeatOptions | boolean | undefined): void {
    this.heartbeat?.stop();
    this.heartbeat = null;
    if (heartbeat === undefined || heartbeat === false) return;
    this.heartbeat = new HeartbeatSweep<Peer>(heartbeat === true ? {} : heartbeat, () => this.peers.values(), {
      ping: (peer) => {
        const connection = peer.binding.connection;
        if (connection.state === 'open') connection.sendEncoded(PING_FRAME);
      },
      expire: (peer) => {
        // The peer is unresponsive: do not wait long for its close frame.
        const timeoutMs = Math.min(this.closeTimeoutMs, this.heartbeat?.intervalMs ?? this.closeTimeoutMs);
        peer.binding.close(CloseCode.PolicyViolation, 'heartbeat timeout', timeoutMs);
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
    const membership = this.broker.join((topic, payload, isText) => this.fromBroker(topic, payload, isText));
    this.membership = membership;
    for (const topic of this.topics.names()) membership.topicOpened?.(topic);
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
    const peer = new Peer(this, ++this.nextId, formatAddress(net.remoteAddress, net.remotePort), accepted.protocol);
    peer.binding = new SocketBinding(socket, peer, {
      role: 'server',
      maxMessageSize: this.options.maxMessageSize,
      closeTimeoutMs: this.closeTimeoutMs,
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

  // Delivery -------------------------------------------------------------------------------------

  /**
   * Whether `size` more bytes may be queued for `peer`. Over the limit it first writes out what
   * this turn has queued (a fast client's kernel buffer takes it), so only bytes the peer
   * really is not reading count; then applies the policy.
   */
  private hasRoom(peer: Peer, size: number): boolean {
    const binding = peer.binding;
    const limit = this.maxBufferedAmount;
    let buffered = binding.bufferedAmount;
    if (buffered === 0 || buffered + size <= limit) return true;
    binding.flush();
    buffered = binding.bufferedAmount;
    if (buffered === 0 || buffered + size <= limit) return true;
    if (this.closeOnBackpressure) peer.binding.close(CloseCode.PolicyViolation, 'backpressure limit exceeded');
    return false;
  }

  sendTo(peer: Peer, message: MessageLike): DeliveryReport {
    const connection = peer.binding.connection;
    if (connection.state !== 'open') return SKIPPED_ONE;
    let payload: Uint8Array;
    let isText: boolean;
    if (typeof message === 'string') {
      payload = Buffer.from(message, 'utf8');
      isText = true;
    } else if (message instanceof Message) {
      const parts = message.unjoinedParts();
      if (parts !== undefined) {
        // Received in pieces: sent on as they are, without joining them.
        if (!this.hasRoom(peer, message.byteLength)) return SKIPPED_ONE;
        connection.sendParts(parts, message.isText);
        return QUEUED_ONE;
      }
      payload = message.bytes();
      isText = message.isText;
    } else {
      payload = message;
      isText = false;
    }
    if (!this.hasRoom(peer, payload.length)) return SKIPPED_ONE;
    connection.send(payload, isText);
    return QUEUED_ONE;
  }

  /** Write one encoded frame to each peer (except `except`), applying the policy to each. */
  private deliver(peers: Iterable<Peer>, frame: Buffer, except: Peer | null): DeliveryReport {
    let queued = 0;
    let skipped = 0;
    const size = frame.length;
    for (const peer of peers) {
      if (peer === except) continue;
      const connection = peer.binding.connection;
      if (connection.state !== 'open' || !this.hasRoom(peer, size)) {
        skipped++;
        continue;
      }
      connection.sendEncoded(frame);
      queued++;
    }
    return queued === 0 && skipped === 0 ? NOWHERE : { queued, skipped };
  }

  broadcast(message: MessageLike, except: Peer | null): DeliveryReport {
    const payload = payloadOf(message);
    const isText = isTextOf(message);
    const report = this.peers.size === 0 ? NOWHERE : this.deliver(this.peers.values(), frameOf(payload, isText), except);
    this.membership?.publish(null, toBuffer(payload), isText);
    return report;
  }

  publish(topic: string, message: MessageLike, except: Peer | null): DeliveryReport {
    const payload = payloadOf(message);
    const isText = isTextOf(message);
    const subscribers = this.topics.subscribers(topic);
    const report = subscribers === undefined ? NOWHERE : this.deliver(subscribers, frameOf(payload, isText), except);
    this.membership?.publish(topic, toBuffer(payload), isText);
    return report;
  }

  private fromBroker(topic: string | null, payload: Buffer, isText: boolean): void {
    if (topic === null) {
      if (this.peers.size > 0) this.deliver(this.peers.values(), frameOf(payload, isText), null);
      return;
    }
    const subscribers = this.topics.subscribers(topic);
    if (subscribers !== undefined) this.deliver(subscribers, frameOf(payload, isText), null);
  }
}

// ---------------------------------------------------------------------------------------------
// Public classes

/**
 * One connection as the event handlers see it. It never exposes the socket: messages go out
 * through `send`, `broadcast` and `publish`, each returning a `DeliveryReport`.
 */
export class AsyncStream<StreamState = unknown> {
  /** A number unique within the app (increasing from 1); use it with `AsyncSender.send`. */
  readonly id: number;
  /** The remote address as `host:port` (IPv6 hosts in brackets). */
  readonly peerAddr: string;
  /** The subprotocol agreed in the handshake, if any. */
  readonly protocol: string | undefined;
  /**
   * Per-connection state: what the app's stream state factory returned, or else the `data`
   * the `onUpgrade` hook accepted the connection with. Free to replace.
   */
  state: StreamState;
  readonly #peer: Peer;

  /** @internal Streams are made by the app. */
  constructor(peer: unknown, id: number, peerAddr: string, protocol: string | undefined) {
    this.#peer = peer as Peer;
    this.id = id;
    this.peerAddr = peerAddr;
    this.protocol = protocol;
    this.state = undefined as StreamState;
  }

  /** Bytes queued for this connection that the socket has not taken yet. */
  get bufferedAmount(): number {
    return this.#peer.binding.bufferedAmount;
  }

  /** `'open'`, `'closing'` (a close frame was sent) or `'closed'`. */
  get readyState(): 'open' | 'closing' | 'closed' {
    return this.#peer.closed ? 'closed' : this.#peer.binding.connection.state;
  }

  /** How the connection ended (set once it has; always set in the disconnect handler). */
  get closeInfo(): CloseInfo | undefined {
    return this.#peer.closeInfo;
  }

  /** Send a message (a `Message`, a string as text, bytes as binary) to this connection. */
  send(message: MessageLike): DeliveryReport {
    return this.#peer.hub.sendTo(this.#peer, message);
  }

  /** Send a message to every connection of the app, this one included (framed once). */
  broadcast(message: MessageLike): DeliveryReport {
    return this.#peer.hub.broadcast(message, null);
  }

  /** Send a message to every subscriber of `topic` except this connection (framed once). */
  publish(topic: string, message: MessageLike): DeliveryReport {
    return this.#peer.hub.publish(topic, message, this.#peer);
  }

  /** Subscribe to `topic`. False if already subscribed or the connection is closed. */
  subscribe(topic: string): boolean {
    if (this.#peer.closed) return false;
    return this.#peer.hub.topics.subscribe(this.#peer, topic);
  }

  /** Unsubscribe from `topic`. False if not subscribed. */
  unsubscribe(topic: string): boolean {
    return this.#peer.hub.topics.unsubscribe(this.#peer, topic);
  }

  isSubscribed(topic: string): boolean {
    return this.#peer.hub.topics.isSubscribed(this.#peer, topic);
  }

  /** The topics this connection is subscribed to. */
  get topics(): string[] {
    const topics = this.#peer.topics;
    return topics === null ? [] : [...topics];
  }

  /**
   * Start the close handshake (default 1000). Messages sent before are delivered first. The
   * disconnect handler runs when the connection is closed. Throws `WS_ERR_INVALID_CLOSE_CODE`
   * for a code that cannot be sent.
   */
  close(code = 1000, reason = ''): void {
    if (!(code === 1000 || isValidCloseCode(code))) {
      throw new WebSocketError('WS_ERR_INVALID_CLOSE_CODE', `close code ${code} cannot be sent`);
    }
    if (this.#peer.closed) return;
    this.#peer.binding.close(code, reason);
  }
}

/**
 * Sends to the app's connections from outside any event (a timer, stdin, another server).
 * Get one with `app.sender()`; it stays valid for the life of the app.
 */
export class AsyncSender {
  readonly #hub: Hub;

  /** @internal Use `app.sender()`. */
  constructor(hub: unknown) {
    this.#hub = hub as Hub;
  }

  /** Send to the connection with this id. `{ queued: 0, skipped: 0 }` if there is none. */
  send(id: number, message: MessageLike): DeliveryReport {
    const peer = this.#hub.peers.get(id);
    return peer === undefined ? NOWHERE : this.#hub.sendTo(peer, message);
  }

  /** Send to every connection (framed once). */
  broadcast(message: MessageLike): DeliveryReport {
    return this.#hub.broadcast(message, null);
  }

  /** Send to every subscriber of `topic` (framed once). */
  publish(topic: string, message: MessageLike): DeliveryReport {
    return this.#hub.publish(topic, message, null);
  }

  /** Whether a connection with this id is open. */
  has(id: number): boolean {
    return this.#hub.peers.has(id);
  }

  /** The number of open connections. */
  get connectionCount(): number {
    return this.#hub.peers.size;
  }

  /** The number of subscribers of `topic`. */
  subscriberCount(topic: string): number {
    return this.#hub.topics.count(topic);
  }
}

/**
 * The event architecture: handlers run per event (connect, message, disconnect) instead of
 * owning a connection, which scales to many long-lived connections and makes broadcasting
 * easy.
 *
 * ```ts
 * const app = new AsyncWebSocketApp({ greeting: 'hi' })
 *   .withConnectHandler((stream, state) => stream.send(state.greeting))
 *   .withMessageHandler((stream, message) => stream.broadcast(message))
 *   .withHeartbeat({ intervalMs: 5000, timeoutMs: 10000 });
 * await app.run('0.0.0.0:8080');
 * ```
 *
 * Events of one connection are delivered in order: no message handler runs before the connect
 * handler has finished (async ones included), the next message waits for the previous
 * message's handler, and the disconnect handler runs exactly once, last. Synchronous handlers
 * are called directly; a queue exists only while an async handler is in flight.
 */
export class AsyncWebSocketApp<State = undefined, StreamState = unknown> {
  readonly #hub: Hub;
  #unlinked = false;
  #server: UpgradeListener | undefined;
  #secure = false;
  #starting = false;
  #closing: Promise<void> | undefined;
  readonly #detachers = new Set<() => void>();
  #detachSignal: (() => void) | undefined;
  #sender: AsyncSender | undefined;
  #certPaths: { cert: string; key: string } | undefined;

  constructor(state?: State, options: AsyncAppOptions = {}) {
    this.#hub = new Hub(state, options);
  }

  /**
   * An app that never runs its own server: connections come from an HTTP app through
   * `connectHook()` (e.g. `app.withWebsocketRoute('/ws', asyncWebsocketHandler(hook))`), or
   * from `attach`/`handleUpgrade`.
   */
  static unlinked<State = undefined, StreamState = unknown>(state?: State, options: AsyncAppOptions = {}): AsyncWebSocketApp<State, StreamState> {
    const app = new AsyncWebSocketApp<State, StreamState>(state, options);
    app.#unlinked = true;
    return app;
  }

  // Configuration ------------------------------------------------------------------------------

  /** The state handed to every handler. */
  get state(): State {
    return this.#hub.state as State;
  }

  /** Replace the state handed to every handler. */
  withState<S>(state: S): AsyncWebSocketApp<S, StreamState> {
    this.#hub.state = state;
    return this as unknown as AsyncWebSocketApp<S, StreamState>;
  }

  /**
   * Make each connection's initial `stream.state`. The factory gets the stream (its `id`,
   * `peerAddr`, `protocol`) and the `data` the `onUpgrade` hook accepted it with. Without a
   * factory the state is that `data`. A factory that throws closes the connection with 1011.
   */
  withStreamState<S>(factory: StreamStateFactory<S>): AsyncWebSocketApp<State, S> {
    this.#hub.streamStateFactory = factory;
    return this as unknown as AsyncWebSocketApp<State, S>;
  }

  withConnectHandler(handler: ConnectHandler<State, StreamState>): this {
    this.#hub.connectHandler = handler;
    return this;
  }

  withMessageHandler(handler: MessageHandler<State, StreamState>): this {
    this.#hub.messageHandler = handler;
    return this;
  }

  withDisconnectHandler(handler: DisconnectHandler<State, StreamState>): this {
    this.#hub.disconnectHandler = handler;
    return this;
  }

  /** Where handler errors go (the server keeps running). Default: `console.error`. */
  withErrorHandler(handler: AsyncErrorHandler): this {
    this.#hub.errorHandler = handler;
    return this;
  }

  set onConnect(handler: ConnectHandler<State, StreamState> | null) {
    this.#hub.connectHandler = handler;
  }
  get onConnect(): ConnectHandler<State, StreamState> | null {
    return this.#hub.connectHandler;
  }

  set onMessage(handler: MessageHandler<State, StreamState> | null) {
    this.#hub.messageHandler = handler;
  }
  get onMessage(): MessageHandler<State, StreamState> | null {
    return this.#hub.messageHandler;
  }

  set onDisconnect(handler: DisconnectHandler<State, StreamState> | null) {
    this.#hub.disconnectHandler = handler;
  }
  get onDisconnect(): DisconnectHandler<State, StreamState> | null {
    return this.#hub.disconnectHandler;
  }

  set onError(handler: AsyncErrorHandler | null) {
    this.#hub.errorHandler = handler;
  }
  get onError(): AsyncErrorHandler | null {
    return this.#hub.errorHandler;
  }

  /** Set any options (merged with those given before). */
  withOptions(options: AsyncAppOptions): this {
    this.#hub.configure(options);
    return this;
  }

  /** Decide on each upgrade request: accept (optionally with `data`) or reject with a status. */
  withUpgradeHook(hook: (request: UpgradeRequest) => UpgradeDecision | Promise<UpgradeDecision>): this {
    this.#hub.configure({ onUpgrade: hook });
    return this;
  }

  /**
   * Ping silent connections every `intervalMs` (default 5000) and close those silent for
   * longer than `timeoutMs` (default 10000) with 1008; their disconnect handler runs once.
   * One timer serves every connection.
   */
  withHeartbeat(options: HeartbeatOptions = {}): this {
    this.#hub.configure({ heartbeat: options });
    return this;
  }

  /** Where `run()` listens: `'host:port'`, `'[ipv6]:port'`, `':port'` or a port number. */
  withAddress(address: string | number): this {
    this.#hub.configure({ address });
    return this;
  }

  /**
   * Serve `wss://` from `run()`: the PEM files are read when `run` is called. A `tls` option
   * given to `run` takes precedence. (A linked app gets TLS from the server it is linked to.)
   */
  withCert(certPath: string, keyPath: string): this {
    this.#certPaths = { cert: certPath, key: keyPath };
    return this;
  }

  /** Shut down gracefully when `signal` aborts (as `close()`). */
  withShutdown(signal: AbortSignal): this {
    this.#watch(signal);
    return this;
  }

  /** Carry broadcasts and publishes to other apps through `broker`. */
  withBroker(broker: Broker): this {
    this.#hub.configure({ broker });
    return this;
  }

  // Sending and inspection ---------------------------------------------------------------------

  /** A sender for use outside events (the same object each time). */
  sender(): AsyncSender {
    return (this.#sender ??= new AsyncSender(this.#hub));
  }

  /** The number of open connections. */
  get connectionCount(): number {
    return this.#hub.peers.size;
  }

  // Linking ------------------------------------------------------------------------------------

  /**
   * Take one upgrade request from any Node `http`/`https` server's `upgrade` event: run the
   * handshake (origin checks, subprotocols, the `onUpgrade` hook; rejections get their HTTP
   * status) and add the connection to the app. While the app is closing the answer is 503.
   */
  handleUpgrade(request: UpgradeRequest, socket: Duplex, head: Buffer): void {
    // Node's HTTP server drops its own error listener from upgraded sockets.
    socket.on('error', noop);
    if (this.#closing !== undefined) {
      refuse(socket, 503, 'server shutting down');
      return;
    }
    this.#hub.join();
    void acceptUpgrade(request, socket, this.#hub.options).then((accepted) => {
      if (accepted === null) return;
      if (this.#closing !== undefined) {
        // Accepted while the app began to shut down: say so and hang up.
        socket.end(encodeFrame(Opcode.Close, encodeClosePayload(CloseCode.GoingAway, 'server shutting down'))[0]);
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      this.#hub.adopt(socket, head, accepted);
    });
  }

  /**
   * Take the upgrade requests of an existing server (Express's `app.listen()` result,
   * `fastify.server`, a plain `http.createServer()`...), optionally only those for `path`.
   * Normal HTTP requests are left to the server. Returns a function that detaches; `close()`
   * detaches too.
   */
  attach(server: HttpServer | HttpsServer, options: AttachOptions = {}): () => void {
    const { path } = options;
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (path !== undefined && !matchPath(path, request.url ?? '/')) {
        // Leave it to another listener; if there is none, answer rather than hang.
        if (server.listenerCount('upgrade') <= 1) refuse(socket, 404, 'no WebSocket endpoint here');
        return;
      }
      this.handleUpgrade(request, socket, head);
    };
    server.on('upgrade', listener);
    const detach = (): void => {
      server.off('upgrade', listener);
      this.#detachers.delete(detach);
    };
    this.#detachers.add(detach);
    return detach;
  }

  /**
   * A hook for `asyncWebsocketHandler`, the link to an HTTP app (e.g. one serving TLS):
   * `app.withWebsocketRoute('/ws', asyncWebsocketHandler(wsApp.connectHook()))`.
   */
  connectHook(): ConnectHook {
    const hook = ((request: UpgradeRequest, socket: Duplex, head: Buffer) => this.handleUpgrade(request, socket, head)) as ConnectHook;
    hook.shutdown = () => this.close();
    Object.defineProperty(hook, 'connectionCount', { get: () => this.#hub.peers.size });
    return hook;
  }

  // Running its own server ---------------------------------------------------------------------

  /**
   * Listen on `address` (default: `withAddress`, else `'127.0.0.1:0'`) with a server of its
   * own that upgrades every path and answers plain HTTP requests with 426. Resolves with the
   * bound address once listening. Not available on an unlinked app.
   */
  async run(address?: string | number | AsyncRunOptions, options: AsyncRunOptions = {}): Promise<AsyncAppAddress> {
    if (typeof address === 'object') {
      options = address;
      address = undefined;
    }
    if (this.#unlinked) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'an unlinked app has no server of its own: link it with connectHook(), attach() or handleUpgrade()');
    }
    if (this.#server !== undefined || this.#starting) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'the app is already running');
    }
    const { host, port } = parseAddress(address ?? this.#hub.options.address ?? DEFAULT_ADDRESS);
    const { signal } = options;
    if (signal?.aborted) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'the abort signal was already aborted');
    this.#starting = true;
    try {
      let tls = options.tls;
      if (tls === undefined && this.#certPaths !== undefined) {
        tls = await readCertificate(this.#certPaths);
      }
      // Its own server reads the request head itself (no node:http per connection) and
      // answers anything but an upgrade with 426.
      const server = createUpgradeListener((request, socket, head) => this.handleUpgrade(request, socket, head), tls === undefined ? {} : { tls });
      await listen(server, { host, port });
      server.on('error', (error: Error) => this.#hub.report(error, undefined));
      this.#server = server;
      this.#secure = tls !== undefined;
      this.#hub.join();
      if (signal !== undefined) this.#watch(signal);
      return this.address;
    } finally {
      this.#starting = false;
    }
  }

  /** Where the app's own server listens. Throws before `run` has resolved. */
  get address(): AsyncAppAddress {
    const info = this.#server?.address() as AddressInfo | string | null | undefined;
    if (info === undefined || info === null || typeof info === 'string') {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'app.address is only available while the app runs its own server');
    }
    return { host: info.address, port: info.port, family: info.family };
  }

  /** The app's URL, e.g. `ws://127.0.0.1:8080` (`wss://` with TLS). */
  get url(): string {
    const { host, port } = this.address;
    return `${this.#secure ? 'wss' : 'ws'}://${urlHost(host)}:${port}`;
  }

  /** Whether `run` has resolved and `close` has not started. */
  get running(): boolean {
    return this.#server !== undefined && this.#closing === undefined;
  }

  // Shutdown -----------------------------------------------------------------------------------

  /**
   * Shut down gracefully: stop accepting (stop listening, detach from attached servers, answer
   * new upgrades with 503), send close 1001 to every client (after what was already sent to
   * it), wait up to `shutdownTimeoutMs` for them to close, destroy the rest, wait (bounded
   * again) for every disconnect handler to finish, then resolve. Calling it again while it
   * runs returns the same promise. The app can be used again afterwards.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown().finally(() => {
      this.#closing = undefined;
    });
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const hub = this.#hub;
    hub.closing = true;
    try {
      this.#detachSignal?.();
      this.#detachSignal = undefined;
      for (const detach of [...this.#detachers]) detach();
      const server = this.#server;
      const serverClosed = server === undefined ? undefined : new Promise<void>((resolve) => server.close(() => resolve()));
      hub.heartbeat?.stop();
      const timeoutMs = hub.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;

      for (const peer of hub.peers.values()) {
        try {
          peer.binding.close(CloseCode.GoingAway, 'server shutting down', Math.max(timeoutMs, 1));
        } catch (error) {
          hub.report(error, peer.stream);
        }
      }
      if (!(await hub.waitFor(() => hub.peers.size === 0, timeoutMs))) {
        for (const peer of [...hub.peers.values()]) peer.binding.destroy();
      }
      if (!(await hub.waitFor(() => hub.liveCount === 0, timeoutMs))) {
        hub.report(new WebSocketError('WS_ERR_CLOSE_TIMEOUT', `disconnect handlers still running after ${timeoutMs} ms`), undefined);
      }
      if (server !== undefined) {
        server.destroyPendingHandshakes();
        await serverClosed;
        this.#server = undefined;
      }
      const membership = hub.membership;
      hub.membership = null;
      if (membership !== null) await membership.leave();
    } finally {
      hub.closing = false;
    }
  }

  #watch(signal: AbortSignal): void {
    this.#detachSignal?.();
    if (signal.aborted) {
      void this.close();
      return;
    }
    const onAbort = (): void => {
      void this.close();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.#detachSignal = () => signal.removeEventListener('abort', onAbort);
  }
}

/**
 * A WebSocket route for the HTTP `App` that hands its connections to an event app, the
 * original's linking: `new App().withWebsocketRoute('/ws', asyncWebsocketHandler(wsApp.connectHook()))`.
 * The HTTP app's state is not passed on (the event app has its own). When the HTTP app
 * closes, it calls the route's `shutdown()`, which closes the event app.
 */
export function asyncWebsocketHandler(hook: ConnectHook): AsyncWebSocketRoute {
  const route = ((request: UpgradeRequest, socket: Duplex, head: Buffer) => hook(request, socket, head)) as AsyncWebSocketRoute;
  route.shutdown = () => hook.shutdown();
  Object.defineProperty(route, 'connectionCount', { get: () => hook.connectionCount });
  return route;
}
