import { EventEmitter } from 'node:events';
import { createServer, STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { acceptKeyFor, headerTokens } from '../../protocol/handshake.js';
import { isToken } from '../../protocol/http1.js';
import { parseExtensions } from '../../protocol/deflate/extensions.js';
import { negotiateAsServer, PERMESSAGE_DEFLATE, type ServerNegotiation } from '../../protocol/deflate/negotiate.js';
import { wsDeflateConfig } from './deflate.js';
import { refuseUpgrade } from '../../node/refuse.js';
import { WebSocket, DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_PAYLOAD } from './websocket.js';

/** What `verifyClient` is given. */
export interface VerifyClientInfo {
  /** The `Origin` header (`Sec-WebSocket-Origin` for protocol version 8). */
  origin: string | undefined;
  /** Whether the request came over TLS. */
  secure: boolean;
  req: IncomingMessage;
}

type VerifyCallback = (verified: boolean, code?: number, message?: string, headers?: Record<string, string | number>) => void;

/** Options of `new WebSocketServer(options, callback)`: exactly one of `port`, `server` and `noServer`. */
export interface ServerOptions {
  /** Emit one message event per turn of the event loop when false. Default true. */
  allowSynchronousEvents?: boolean;
  /** Answer pings with pongs automatically. Default true. */
  autoPong?: boolean;
  /** `listen` backlog (with `port`). */
  backlog?: number;
  /** Keep the connected clients in `wss.clients`. Default true. */
  clientTracking?: boolean;
  /** After `close()`, how long to wait for the client's close frame before destroying the socket, in ms. Default 30000. */
  closeTimeout?: number;
  /** Choose the subprotocol from the client's offers (a Set, in its order); false agrees none. Default: the first. */
  handleProtocols?: ((protocols: Set<string>, request: IncomingMessage) => string | false) | null;
  /** Host to listen on (with `port`). Default: any address. */
  host?: string;
  /** Largest message accepted, in bytes (0: no limit). Default 100 MiB. */
  maxPayload?: number;
  /** Do not listen: upgrades are given to `handleUpgrade` by the caller. */
  noServer?: boolean;
  /** Only upgrade requests for this path (the query is ignored). Default: any path. */
  path?: string;
  /**
   * permessage-deflate: offers are checked (a malformed one is refused with 400), but none is
   * accepted yet by this version, so connections run uncompressed. Default false.
   */
  perMessageDeflate?: boolean | Record<string, unknown>;
  /** Port to listen on (with an HTTP server made for it that answers other requests with 426). */
  port?: number;
  /** An `http`/`https` server to take upgrade requests from. */
  server?: HttpServer | HttpsServer;
  /** Skip UTF-8 validation of text (not supported: text is always validated). Default false. */
  skipUTF8Validation?: boolean;
  /** Decide whether to accept a client: return a boolean, or call the callback (two parameters). */
  verifyClient?: ((info: VerifyClientInfo) => boolean) | ((info: VerifyClientInfo, callback: VerifyCallback) => void) | null;
  /** The class made for each connection (a subclass of `WebSocket`). */
  WebSocket?: typeof WebSocket;
}

const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;
const KEY_PATTERN = /^[+/0-9A-Za-z]{22}==$/;
const kUpgraded = Symbol('humphrey-ws compat upgraded');

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** Refuse with `status` and a plain-text body (`ws` writes the status text when there is none). */
function refuse(socket: Duplex, status: number, message?: string, headers: Record<string, string | number> = {}): void {
  const text: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) text[name] = String(value);
  refuseUpgrade(socket, status, message || STATUS_CODES[status] || '', text);
}

/** The subprotocols of a `Sec-WebSocket-Protocol` header, or null when it is not a list of unique tokens. */
function parseProtocols(header: string): Set<string> | null {
  const names = headerTokens(header);
  const set = new Set(names);
  if (set.size !== names.length || !names.every(isToken) || header.split(',').some((part) => part.trim() === '')) return null;
  return set;
}

/**
 * `ws`'s `WebSocketServer`. Events: `connection (ws, request)`, `headers (lines, request)`,
 * `listening`, `error`, `wsClientError (error, socket, request)`, `close`.
 */
export class WebSocketServer extends EventEmitter {
  /** The options, with defaults filled in. */
  readonly options: Required<Pick<ServerOptions, 'maxPayload' | 'closeTimeout' | 'clientTracking'>> & ServerOptions & { WebSocket: typeof WebSocket };
  /** The connected clients (unless `clientTracking` is false). */
  readonly clients: Set<WebSocket> | undefined;
  private httpServer: HttpServer | HttpsServer | null = null;
  private removeServerListeners: (() => void) | null = null;
  private state = RUNNING;
  private closeWhenEmpty = false;

  constructor(options: ServerOptions, callback?: () => void) {
    super();
    const merged = {
      allowSynchronousEvents: true,
      autoPong: true,
      maxPayload: DEFAULT_MAX_PAYLOAD,
      skipUTF8Validation: false,
      perMessageDeflate: false as ServerOptions['perMessageDeflate'],
      handleProtocols: null,
      clientTracking: true,
      closeTimeout: DEFAULT_CLOSE_TIMEOUT,
      verifyClient: null,
      noServer: false,
      backlog: undefined,
      server: undefined,
      host: undefined,
      path: undefined,
      port: undefined,
      WebSocket,
      ...options,
    };
    if (
      (merged.port == null && !merged.server && !merged.noServer) ||
      (merged.port != null && (merged.server || merged.noServer)) ||
      (merged.server && merged.noServer)
    ) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    if (merged.perMessageDeflate === true) merged.perMessageDeflate = {};
    this.options = merged;
    if (merged.port != null) {
      const server = createServer((request, response) => {
        const body = STATUS_CODES[426]!;
        response.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
        response.end(body);
      });
      server.listen(merged.port, merged.host, merged.backlog, callback);
      this.httpServer = server;
    } else if (merged.server) {
      this.httpServer = merged.server;
    }
    if (this.httpServer !== null) {
      const server = this.httpServer;
      const onListening = (): void => void this.emit('listening');
      const onError = (error: Error): void => void this.emit('error', error);
      const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
        this.handleUpgrade(request, socket, head, (ws) => this.emit('connection', ws, request));
      };
      server.on('listening', onListening);
      server.on('error', onError);
      server.on('upgrade', onUpgrade);
      this.removeServerListeners = () => {
        server.removeListener('listening', onListening);
        server.removeListener('error', onError);
        server.removeListener('upgrade', onUpgrade);
      };
    }
    if (merged.clientTracking) this.clients = new Set();
  }

  /** The listening address; throws in `noServer` mode, null once closed. */
  address(): ReturnType<HttpServer['address']> {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    return this.httpServer === null ? null : this.httpServer.address();
  }

  /**
   * Stop accepting connections; `close` is emitted (and `cb` called) once the server made for
   * `port` has closed, or, with `server`/`noServer`, once every tracked client has closed.
   * Open connections are not closed.
   */
  close(cb?: (error?: Error) => void): void {
    if (this.state === CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      process.nextTick(() => this.closed());
      return;
    }
    if (cb) this.once('close', cb);
    if (this.state === CLOSING) return;
    this.state = CLOSING;
    const server = this.httpServer;
    this.removeServerListeners?.();
    this.removeServerListeners = null;
    this.httpServer = null;
    if (this.options.noServer || this.options.server) {
      if (this.clients !== undefined && this.clients.size > 0) this.closeWhenEmpty = true;
      else process.nextTick(() => this.closed());
    } else {
      server!.close(() => this.closed());
    }
  }

  private closed(): void {
    this.state = CLOSED;
    this.emit('close');
  }

  /** Whether the request's path is this server's `path` (any path when none is set). */
  shouldHandle(request: { url?: string | undefined }): boolean {
    const path = this.options.path;
    if (!path) return true;
    const url = request.url ?? '';
    const query = url.indexOf('?');
    return (query === -1 ? url : url.slice(0, query)) === path;
  }

  /**
   * Complete (or refuse) the handshake of an upgrade request on `socket`, any duplex stream;
   * `cb(ws, request)` gets the connection.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, request: IncomingMessage) => void): void {
    socket.on('error', destroyOnError);
    const headers = request.headers;
    const key = headers['sec-websocket-key'];
    const upgrade = headers.upgrade;
    const version = Number(headers['sec-websocket-version']);
    if (request.method !== 'GET') return this.clientError(request, socket, 405, 'Invalid HTTP method');
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return this.clientError(request, socket, 400, 'Invalid Upgrade header');
    if (key === undefined || !KEY_PATTERN.test(key)) return this.clientError(request, socket, 400, 'Missing or invalid Sec-WebSocket-Key header');
    if (version !== 8 && version !== 13) return this.clientError(request, socket, 400, 'Missing or invalid Sec-WebSocket-Version header');
    if (!this.shouldHandle(request)) return refuse(socket, 400);
    let protocols = new Set<string>();
    const protocolHeader = headers['sec-websocket-protocol'];
    if (protocolHeader !== undefined) {
      const parsed = parseProtocols(protocolHeader);
      if (parsed === null) return this.clientError(request, socket, 400, 'Invalid Sec-WebSocket-Protocol header');
      protocols = parsed;
    }
    const extensionHeader = headers['sec-websocket-extensions'];
    let deflate: ServerNegotiation | null = null;
    if (this.options.perMessageDeflate && extensionHeader !== undefined) {
      const negotiated = negotiateDeflate(extensionHeader, this.options.perMessageDeflate);
      if (negotiated === undefined) return this.clientError(request, socket, 400, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
      deflate = negotiated;
    }
    const verifyClient = this.options.verifyClient;
    if (verifyClient) {
      const info: VerifyClientInfo = {
        origin: headers[version === 8 ? 'sec-websocket-origin' : 'origin'] as string | undefined,
        secure: Boolean((request.socket as { authorized?: boolean }).authorized || (request.socket as { encrypted?: boolean }).encrypted),
        req: request,
      };
      if (verifyClient.length === 2) {
        (verifyClient as (info: VerifyClientInfo, callback: VerifyCallback) => void)(info, (verified, code, message, extra) => {
          if (!verified) return refuse(socket, code || 401, message, extra);
          this.completeUpgrade(key, protocols, deflate, request, socket, head, cb);
        });
        return;
      }
      if (!(verifyClient as (info: VerifyClientInfo) => boolean)(info)) return refuse(socket, 401);
    }
    this.completeUpgrade(key, protocols, deflate, request, socket, head, cb);
  }

  private completeUpgrade(
    key: string,
    protocols: Set<string>,
    deflate: ServerNegotiation | null,
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    cb: (ws: WebSocket, request: IncomingMessage) => void,
  ): void {
    // The client went away while the upgrade was being decided.
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return;
    }
    const marked = socket as Duplex & { [kUpgraded]?: boolean };
    if (marked[kUpgraded]) {
      throw new Error('server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration');
    }
    if (this.state !== RUNNING) return refuse(socket, 503);
    marked[kUpgraded] = true;
    const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKeyFor(key)}`];
    const ws = new this.options.WebSocket(null, undefined, this.options as never);
    if (protocols.size > 0) {
      const handle = this.options.handleProtocols;
      const protocol = handle ? handle(protocols, request) : protocols.values().next().value;
      if (protocol) {
        lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
        ws.protocolName = protocol;
      }
    }
    if (deflate !== null) lines.push(`Sec-WebSocket-Extensions: ${deflate.response}`);
    this.emit('headers', lines, request);
    socket.write(lines.concat('\r\n').join('\r\n'));
    socket.removeListener('error', destroyOnError);
    ws.attachSocket(socket, head, deflate?.agreement ?? null);
    if (this.clients !== undefined) {
      this.clients.add(ws);
      ws.tracker = this;
    }
    cb(ws, request);
  }

  /** @internal A tracked client closed (before its `close` event). */
  clientGone(ws: WebSocket): void {
    const clients = this.clients!;
    clients.delete(ws);
    if (this.closeWhenEmpty && clients.size === 0) {
      this.closeWhenEmpty = false;
      process.nextTick(() => this.closed());
    }
  }

  /** A bad request: `wsClientError` when someone listens (they answer it), else an HTTP error. */
  private clientError(request: IncomingMessage, socket: Duplex, status: number, message: string): void {
    if (this.listenerCount('wsClientError') > 0) {
      const error = new Error(message);
      Error.captureStackTrace(error, this.clientError);
      this.emit('wsClientError', error, socket, request);
      return;
    }
    refuse(socket, status, message);
  }
}

/**
 * Negotiate permessage-deflate from a request's `Sec-WebSocket-Extensions`: the agreement and
 * the answer, null when nothing is agreed, or undefined when `ws` would refuse the request (a
 * malformed header, or permessage-deflate offered but no offer acceptable).
 */
function negotiateDeflate(header: string, option: unknown): ServerNegotiation | null | undefined {
  const elements = parseExtensions(header);
  if (elements.some((element) => element === null)) return undefined;
  if (!elements.some((element) => element!.name === PERMESSAGE_DEFLATE)) return null;
  let config;
  try {
    config = wsDeflateConfig(option, 'server', false);
  } catch {
    return undefined;
  }
  if (config === null) return null;
  return negotiateAsServer(header, config) ?? undefined;
}
