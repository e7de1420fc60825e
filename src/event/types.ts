// The public types of the event app: handlers, options and the link to HTTP servers.
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Message } from '../message.js';
import type { UpgradeRequest } from '../node/listener.js';
import type { UpgradeOptions } from '../node/upgrade.js';
import type { Broker } from '../broker/types.js';
import type { WorkerExit } from '../broker/cluster.js';
import type { HeartbeatOptions } from './heartbeat.js';
import type { AsyncStream } from './facades.js';


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
  /**
   * Serve from this many worker processes (`node:cluster`) sharing the port, the same script
   * running in each: in the primary `run` forks them and resolves once all listen; the
   * handlers run only in the workers, and broadcasts, topics and `sender().send(id)` reach
   * every worker through the primary. A worker that dies is replaced; SIGTERM or SIGINT to
   * the primary (or `close()` there) stops them all, each client getting 1001. Default: none,
   * this process serves. See docs/scaling.md.
   */
  workers?: number;
  /** With `workers`, in the primary: called once for each worker that exits. Default: a line on stderr. */
  onWorkerExit?: (exit: WorkerExit) => void;
}

/** Options of `attach`. */
export interface AttachOptions {
  /**
   * Only upgrade requests whose path matches this pattern (`*` wildcards, query ignored; see
   * `matchPath`) are taken. Others go to another app attached to the same server whose path
   * matches, else to the server's other `upgrade` listeners, else are answered with 404 (never
   * left hanging). Default: every upgrade request.
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