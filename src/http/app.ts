import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { listen, readCertificate, urlHost } from '../node/address.js';
import { parseAddress } from './address.js';
import { adoptSocket } from '../node/adopt.js';
import { refuseUpgrade } from '../node/refuse.js';
import { statusText } from '../util/http-status.js';
import { HttpAppError } from './errors.js';
import { matchPathCaptures } from '../util/path.js';
import { DEFAULT_MAX_BODY_SIZE, HttpRequest } from './request.js';
import { HttpResponse, sendHttpResponse, toHttpResponse } from './response.js';
import type { HttpResponseLike } from './response.js';

export { HttpAppError } from './errors.js';
export type { HttpAppErrorCode } from './errors.js';
export { matchPath, matchPathCaptures, requestPath } from '../util/path.js';
export { HttpRequest } from './request.js';
export { HttpResponse } from './response.js';
export type { HttpBody, HttpResponseLike } from './response.js';
export { contentTypeFor, serveDir, serveFile } from './static.js';
export type { ServeDirOptions, StaticHandler } from './static.js';

/** A route handler: gets the request and the app's state, returns (or resolves to) a response. */
export type RouteHandler<State> = (request: HttpRequest, state: State) => HttpResponseLike | Promise<HttpResponseLike>;

/** A route handler that does not use the app's state. */
export type StatelessRouteHandler = (request: HttpRequest) => HttpResponseLike | Promise<HttpResponseLike>;

/**
 * A WebSocket route handler. It is called with the upgrade request, the raw socket, the bytes
 * already read past the request head, and the app's state; it performs the handshake (or
 * answers with an HTTP error) and owns the socket from then on.
 */
export type WebSocketRouteHandler<State> = (request: IncomingMessage, socket: Duplex, head: Buffer, state: State) => void;

/**
 * Called with errors the app catches instead of crashing: a route handler that throws or
 * rejects (the client gets 500), a WebSocket route handler that throws, a failed streamed
 * response, a failing close hook, a server error. `request` is given when there is one.
 */
export type ErrorHandler = (error: unknown, request: IncomingMessage | undefined) => void;

/** A function run when the app closes, before the server finishes closing. */
export type CloseHook = () => Promise<void> | void;

/** Certificate and key for HTTPS (PEM strings or buffers), plus any other `https.ServerOptions`. */
export interface TlsOptions extends HttpsServerOptions {
  cert: NonNullable<HttpsServerOptions['cert']>;
  key: NonNullable<HttpsServerOptions['key']>;
}

/** Options of `App.run`. */
export interface RunOptions {
  /** Serve HTTPS (and so `wss://`) with this certificate and key. Takes precedence over `withCert`. */
  tls?: TlsOptions;
  /** Aborting this signal closes the app (as `close()` does). */
  signal?: AbortSignal;
  /**
   * How long `close()` lets in-flight requests and upgraded sockets finish, after the close
   * hooks have run, before it destroys every remaining connection. Default: 1000 ms.
   */
  closeGraceMs?: number;
}

/** Options of `App.close`. */
export interface CloseOptions {
  /** Overrides the `closeGraceMs` given to `run`. */
  graceMs?: number;
}

/** The address the app listens on. */
export interface AppAddress {
  /** The bound address as the OS reports it (`127.0.0.1`, `::1`, `0.0.0.0`, `::`). */
  host: string;
  /** The bound port (the one the OS chose when 0 was asked for). */
  port: number;
  /** `'IPv4'` or `'IPv6'`. */
  family: string;
}

/** The address `run()` listens on when none is given: any free port on the IPv4 loopback. */
export const DEFAULT_ADDRESS = '127.0.0.1:0';

const DEFAULT_CLOSE_GRACE_MS = 1000;

interface Route<Handler> {
  path: string;
  handler: Handler;
}

const defaultErrorHandler: ErrorHandler = (error, request) => {
  const where = request === undefined ? '' : ` (${request.method ?? '?'} ${request.url ?? '?'})`;
  console.error(`[humphrey-ws] HTTP app error${where}:`, error);
};

/**
 * A small HTTP application on `node:http` / `node:https`: routes with `*` wildcards, static
 * files, WebSocket routes and optional TLS. `State` is shared with every handler.
 *
 * ```ts
 * const app = new App({ visits: 0 })
 *   .withRoute('/', (request, state) => `visit ${++state.visits}`)
 *   .withRoute('/static/*', serveDir('./public'))
 *   .withWebsocketRoute('/ws', websocketHandler(async (stream) => { ... }));
 * await app.run('0.0.0.0:8080');
 * ```
 *
 * Routes are tried in registration order and the first match wins; the query string is not
 * part of the match. No matching route gives 404; a path that only a WebSocket route matches
 * gives 426 to a plain request. A handler that throws gives 500 and is reported to the error
 * handler; the server keeps running.
 */
export class App<State = undefined> {
  #state: State;
  readonly #routes: Route<RouteHandler<State>>[] = [];
  readonly #websocketRoutes: Route<WebSocketRouteHandler<State>>[] = [];
  readonly #closeHooks = new Set<CloseHook>();
  readonly #upgradeSockets = new Set<Duplex>();
  #errorHandler: ErrorHandler = defaultErrorHandler;
  #certPaths: { cert: string; key: string } | undefined;
  #maxBodySize = DEFAULT_MAX_BODY_SIZE;

  #server: HttpServer | HttpsServer | undefined;
  #secure = false;
  #starting = false;
  #closing: Promise<void> | undefined;
  #closeGraceMs = DEFAULT_CLOSE_GRACE_MS;
  #detachSignal: (() => void) | undefined;

  /** Creates an app whose handlers all receive `state` (default `undefined`). */
  constructor(state?: State) {
    this.#state = state as State;
  }

  /** The state handed to every handler. */
  get state(): State {
    return this.#state;
  }

  /** Replaces the state handed to every handler. */
  withState(state: State): this {
    this.#state = state;
    return this;
  }

  /**
   * Adds an HTTP route: `path` is exact text with `*` wildcards (see `matchPath`). Throws
   * `HTTP_ERR_BAD_ROUTE` if it starts with neither `/` nor `*`.
   */
  withRoute(path: string, handler: RouteHandler<State>): this {
    checkPattern(path);
    this.#routes.push({ path, handler });
    return this;
  }

  /** Adds an HTTP route whose handler does not take the state. */
  withStatelessRoute(path: string, handler: StatelessRouteHandler): this {
    checkPattern(path);
    this.#routes.push({ path, handler: (request) => handler(request) });
    return this;
  }

  /**
   * Adds a WebSocket route. An upgrade request whose path matches is handed to `handler`
   * (first matching route wins), which performs the handshake and owns the socket. Upgrade
   * requests that match no WebSocket route are answered with 404. A handler with a
   * `shutdown()` method (as `websocketHandler` and `asyncWebsocketHandler` return) is shut
   * down when the app closes, so its clients get a close frame (1001) before the server stops.
   */
  withWebsocketRoute(path: string, handler: WebSocketRouteHandler<State> & { shutdown?: () => Promise<void> | void }): this {
    checkPattern(path);
    this.#websocketRoutes.push({ path, handler });
    if (typeof handler.shutdown === 'function') this.onClose(() => handler.shutdown!());
    return this;
  }

  /** Sets the function errors are reported to. Default: `console.error`. */
  withErrorHandler(handler: ErrorHandler): this {
    this.#errorHandler = handler;
    return this;
  }

  /**
   * Serves HTTPS (and so `wss://` on the same WebSocket routes): the PEM files are read when
   * `run` is called. `run(address, { tls })` takes precedence.
   */
  withCert(certPath: string, keyPath: string): this {
    this.#certPaths = { cert: certPath, key: keyPath };
    return this;
  }

  /** The largest body `request.body()` accepts before answering 413. Default: 1 MiB. */
  withMaxBodySize(bytes: number): this {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`Invalid max body size: ${bytes}`);
    this.#maxBodySize = bytes;
    return this;
  }

  /**
   * Registers `hook` to run when the app closes: after it stops listening and before it
   * waits for the remaining connections (WebSocket adapters close their sockets here).
   * Hooks run concurrently; one that throws is reported and does not stop the others.
   * Returns a function that unregisters the hook.
   */
  onClose(hook: CloseHook): () => void {
    this.#closeHooks.add(hook);
    return () => {
      this.#closeHooks.delete(hook);
    };
  }

  /** Whether the app is listening (true from `run` resolving until `close` starts). */
  get running(): boolean {
    return this.#server !== undefined && this.#closing === undefined;
  }

  /** The underlying `http.Server` or `https.Server`. Throws `HTTP_ERR_NOT_RUNNING` before `run`. */
  get server(): HttpServer | HttpsServer {
    if (this.#server === undefined) throw notRunning('server');
    return this.#server;
  }

  /** Where the app listens. Throws `HTTP_ERR_NOT_RUNNING` before `run`. */
  get address(): AppAddress {
    const info = this.#server?.address();
    if (info === undefined || info === null || typeof info === 'string') throw notRunning('address');
    return { host: info.address, port: info.port, family: (info as AddressInfo).family };
  }

  /**
   * The base URL of the app, e.g. `http://127.0.0.1:8080` or `https://[::1]:8443`; an
   * unspecified bind address (`0.0.0.0`, `::`) is given as the loopback address. Throws
   * `HTTP_ERR_NOT_RUNNING` before `run`.
   */
  get url(): string {
    const { host, port } = this.address;
    return `${this.#secure ? 'https' : 'http'}://${urlHost(host)}:${port}`;
  }

  /**
   * Starts listening on `address` (default `'127.0.0.1:0'`): `'host:port'`, `'[ipv6]:port'`,
   * `':port'` or a port number (every interface). Port 0 picks a free port. Resolves with the
   * bound address once listening; rejects with the listen error (e.g. `EADDRINUSE`) or an
   * `HttpAppError` (`HTTP_ERR_BAD_ADDRESS`, `HTTP_ERR_ALREADY_RUNNING`, `HTTP_ERR_ABORTED`).
   * HTTPS is used when `options.tls` is given or `withCert` was called.
   */
  async run(address: string | number = DEFAULT_ADDRESS, options: RunOptions = {}): Promise<AppAddress> {
    if (this.#server !== undefined || this.#starting) {
      throw new HttpAppError('HTTP_ERR_ALREADY_RUNNING', 'The app is already running');
    }
    const { host, port } = parseAddress(address);
    const { signal } = options;
    if (signal?.aborted) throw new HttpAppError('HTTP_ERR_ABORTED', 'The abort signal was already aborted');

    this.#starting = true;
    try {
      let tls = options.tls;
      if (tls === undefined && this.#certPaths !== undefined) {
        tls = await readCertificate(this.#certPaths);
      }
      const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.#onRequest(req, res);
      const server = tls === undefined ? createHttpServer(onRequest) : createHttpsServer(tls, onRequest);
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));

      await listen(server, { host, port });
      server.on('error', (error: Error) => this.#report(error, undefined));

      this.#server = server;
      this.#secure = tls !== undefined;
      this.#closeGraceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
      if (signal !== undefined) {
        const onAbort = (): void => {
          void this.close();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.#detachSignal = () => signal.removeEventListener('abort', onAbort);
        if (signal.aborted) onAbort();
      }
      return this.address;
    } finally {
      this.#starting = false;
    }
  }

  /**
   * Stops the app: stops listening at once (new connections are refused), runs the close
   * hooks, closes idle keep-alive connections, gives in-flight requests and upgraded sockets
   * up to `closeGraceMs` to finish, then destroys whatever is left. Resolves when the server
   * is closed; calling it again returns the same promise; resolves at once if not running.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const server = this.#server;
    if (server === undefined) return Promise.resolve();
    this.#closing ??= this.#close(server, options.graceMs ?? this.#closeGraceMs);
    return this.#closing;
  }

  async #close(server: HttpServer | HttpsServer, graceMs: number): Promise<void> {
    this.#detachSignal?.();
    this.#detachSignal = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));

    const hooks = [...this.#closeHooks];
    const results = await Promise.allSettled(hooks.map(async (hook) => hook()));
    for (const result of results) if (result.status === 'rejected') this.#report(result.reason, undefined);

    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([closed, graceOver]);
    clearTimeout(timer);
    server.closeAllConnections();
    for (const socket of this.#upgradeSockets) socket.destroy();
    await closed;

    this.#server = undefined;
    this.#closing = undefined;
  }

  #report(error: unknown, request: IncomingMessage | undefined): void {
    try {
      this.#errorHandler(error, request);
    } catch (hookError) {
      defaultErrorHandler(hookError, request);
    }
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    for (const route of this.#routes) {
      const captures = matchPathCaptures(route.path, url);
      if (captures !== null) {
        void this.#serve(route, captures, req, res);
        return;
      }
    }
    const response = this.#websocketRoutes.some((route) => matchPathCaptures(route.path, url) !== null)
      ? HttpResponse.status(426).withHeader('Upgrade', 'websocket')
      : HttpResponse.status(404);
    void this.#send(req, res, response);
  }

  async #serve(route: Route<RouteHandler<State>>, captures: string[], req: IncomingMessage, res: ServerResponse): Promise<void> {
    let response: HttpResponse;
    try {
      const request = new HttpRequest(req, route.path, captures, this.#maxBodySize);
      response = toHttpResponse(await route.handler(request, this.#state));
    } catch (error) {
      const status = error instanceof HttpAppError && error.status !== undefined ? error.status : 500;
      if (status >= 500) this.#report(error, req);
      response = HttpResponse.status(status);
      // A body we refused may still be arriving: do not keep the connection.
      if (status === 413) response.withHeader('Connection', 'close');
    }
    await this.#send(req, res, response);
  }

  async #send(req: IncomingMessage, res: ServerResponse, response: HttpResponse): Promise<void> {
    if (res.destroyed) {
      if (response.body !== undefined && typeof response.body === 'object' && 'destroy' in response.body) {
        response.body.destroy();
      }
      return;
    }
    try {
      await sendHttpResponse(req, res, response);
    } catch (error) {
      this.#report(error, req);
      if (!res.headersSent && !res.destroyed) {
        try {
          await sendHttpResponse(req, res, HttpResponse.status(500));
          return;
        } catch {
          // Fall through to destroying the response.
        }
      }
      res.destroy();
    }
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node's HTTP server takes its own error listener off an upgraded socket.
    adoptSocket(socket);
    this.#upgradeSockets.add(socket);
    socket.once('close', () => this.#upgradeSockets.delete(socket));
    if (this.#closing !== undefined) {
      refuseWithStatus(socket, 503);
      return;
    }
    const url = req.url ?? '/';
    const route = this.#websocketRoutes.find((candidate) => matchPathCaptures(candidate.path, url) !== null);
    if (route === undefined) {
      refuseWithStatus(socket, 404);
      return;
    }
    try {
      route.handler(req, socket, head, this.#state);
    } catch (error) {
      this.#report(error, req);
      const written = (socket as Duplex & { bytesWritten?: number }).bytesWritten;
      if (socket.writable && written === 0) refuseWithStatus(socket, 500);
      else socket.destroy();
    }
  }
}

/** Rejects patterns that could never match: request paths always start with `/`. */
function checkPattern(path: string): void {
  if (typeof path !== 'string' || !(path.startsWith('/') || path.startsWith('*'))) {
    throw new HttpAppError('HTTP_ERR_BAD_ROUTE', `Route pattern ${JSON.stringify(path)} must start with '/' or '*'`);
  }
}

function notRunning(what: string): HttpAppError {
  return new HttpAppError('HTTP_ERR_NOT_RUNNING', `app.${what} is only available while the app is running`);
}

/** Refuse an upgrade with `status` and its reason phrase as the body (`404 Not Found`). */
function refuseWithStatus(socket: Duplex, status: number): void {
  refuseUpgrade(socket, status, `${status} ${statusText(status)}`);
}
