import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketError } from '../protocol/errors.js';
import { CloseCode } from '../protocol/frame.js';
import { createUpgradeListener, type UpgradeListener, type UpgradeRequest } from '../node/listener.js';
import { acceptUpgrade, type UpgradeDecision, type UpgradeHookRequest } from '../node/upgrade.js';
import { ADDRESS_FORMS, listen, parseListenAddress, readCertificate, urlHost } from '../node/address.js';
import { adoptSocket } from '../node/adopt.js';
import { refuseAccepted, refuseUpgrade } from '../node/refuse.js';
import { attachToServer } from './attach.js';
import type { MetricsSnapshot } from '../node/metrics.js';
import type { Broker } from '../broker/types.js';
import { ClusterPrimary, isClusterWorker, stopOnSignals, workerBroker } from '../broker/cluster.js';
import type { HeartbeatOptions } from './heartbeat.js';
import { Hub } from './hub.js';
import { AsyncSender } from './facades.js';
import type {
  AsyncAppAddress,
  AsyncAppOptions,
  AsyncErrorHandler,
  AsyncRunOptions,
  AsyncWebSocketRoute,
  AttachOptions,
  ConnectHandler,
  ConnectHook,
  DisconnectHandler,
  MessageHandler,
  StreamStateFactory,
} from './types.js';

export type {
  AsyncAppAddress,
  AsyncAppOptions,
  AsyncErrorHandler,
  AsyncRunOptions,
  AsyncWebSocketRoute,
  AttachOptions,
  BackpressurePolicy,
  ConnectHandler,
  ConnectHook,
  DeliveryReport,
  DisconnectHandler,
  MessageHandler,
  StreamStateFactory,
} from './types.js';
export { AsyncStream, AsyncSender } from './facades.js';

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5000;
const DEFAULT_ADDRESS = '127.0.0.1:0';

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
  /** In a cluster's primary (`run({ workers })`): the workers' supervisor. */
  #cluster: ClusterPrimary | undefined;
  #removeSignals: (() => void) | undefined;
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
  withUpgradeHook(hook: (request: UpgradeHookRequest) => UpgradeDecision | Promise<UpgradeDecision>): this {
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

  /**
   * The app's figures now: connections, refused upgrades, messages and bytes, broadcasts and
   * publishes, backpressure, close codes, heartbeat timeouts (those of the `metrics` option
   * given, if one was). Serve them with `metricsHandler(app)` or `metricsRoute(app)`. With
   * `run({ workers })` each worker counts its own connections; the primary's stay at zero.
   */
  metrics(): MetricsSnapshot {
    return this.#hub.metrics.snapshot();
  }

  // Linking ------------------------------------------------------------------------------------

  /**
   * Take one upgrade request from any Node `http`/`https` server's `upgrade` event: run the
   * handshake (origin checks, subprotocols, the `onUpgrade` hook; rejections get their HTTP
   * status) and add the connection to the app. While the app is closing the answer is 503.
   */
  handleUpgrade(request: UpgradeRequest, socket: Duplex, head: Buffer): void {
    // Node's HTTP server takes its own error listener off an upgraded socket.
    adoptSocket(socket);
    if (this.#closing !== undefined) {
      this.#hub.metrics.refused(503);
      refuseUpgrade(socket, 503, 'server shutting down');
      return;
    }
    this.#hub.join();
    void acceptUpgrade(request, socket, this.#hub.options).then((accepted) => {
      if (accepted === null) return;
      if (this.#closing !== undefined) {
        // Accepted while the app began to shut down: say so and hang up.
        refuseAccepted(socket, CloseCode.GoingAway, 'server shutting down');
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
    const remove = attachToServer(server, {
      path: options.path,
      take: (request, socket, head) => this.handleUpgrade(request, socket, head),
    });
    const detach = (): void => {
      remove();
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
    if (this.#server !== undefined || this.#cluster !== undefined || this.#starting) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'the app is already running');
    }
    const where = address ?? this.#hub.options.address ?? DEFAULT_ADDRESS;
    const parsed = parseListenAddress(where);
    if (parsed === undefined) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `cannot listen on ${JSON.stringify(where)}: expected ${ADDRESS_FORMS}`);
    }
    const { host, port } = parsed;
    const { signal } = options;
    if (signal?.aborted) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'the abort signal was already aborted');
    if (options.workers !== undefined && !isClusterWorker()) return this.#runPrimary(options);
    this.#starting = true;
    try {
      if (options.workers !== undefined) this.#hub.setBroker(workerBroker(this.#hub.broker, () => this.close()));
      let tls = options.tls;
      if (tls === undefined && this.#certPaths !== undefined) {
        tls = await readCertificate(this.#certPaths);
      }
      // Its own server reads the request head itself (no node:http per connection) and
      // answers anything but an upgrade with 426.
      const server = createUpgradeListener((request, socket, head) => this.handleUpgrade(request, socket, head), { metrics: this.#hub.metrics, ...(tls === undefined ? {} : { tls }) });
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

  /** `run({ workers })` in the primary: fork the workers, relay between them, serve nothing itself. */
  async #runPrimary(options: AsyncRunOptions): Promise<AsyncAppAddress> {
    this.#starting = true;
    try {
      const timeoutMs = this.#hub.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
      const primary = await ClusterPrimary.start({
        workers: options.workers!,
        // A worker's close takes at most two shutdown timeouts (clients, then handlers).
        stopTimeoutMs: 2 * timeoutMs + 2000,
        ...(options.onWorkerExit !== undefined ? { onWorkerExit: options.onWorkerExit } : {}),
      });
      this.#cluster = primary;
      this.#secure = options.tls !== undefined || this.#certPaths !== undefined;
      // The primary's sender reaches the workers through the relay (or through the app's own broker).
      if (this.#hub.broker === null) this.#hub.setBroker(primary);
      else this.#hub.join();
      this.#removeSignals = stopOnSignals(() => this.close());
      if (options.signal !== undefined) this.#watch(options.signal);
      return primary.address;
    } finally {
      this.#starting = false;
    }
  }

  /** Where the app's own server listens (in a cluster's primary: where its workers do). Throws before `run` has resolved. */
  get address(): AsyncAppAddress {
    if (this.#cluster !== undefined) return this.#cluster.address;
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
    return (this.#server !== undefined || this.#cluster !== undefined) && this.#closing === undefined;
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
      const primary = this.#cluster;
      if (primary !== undefined) {
        this.#removeSignals?.();
        this.#removeSignals = undefined;
        await primary.close();
        this.#cluster = undefined;
      }
      const membership = hub.membership;
      hub.membership = null;
      if (membership !== null) await membership.leave();
      if (primary !== undefined && hub.broker === primary) hub.broker = null;
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
