import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { parseRequestHead, DEFAULT_MAX_HEAD_SIZE } from '../protocol/http1.js';
import { adoptSocket } from './adopt.js';
import { refuseUpgrade } from './refuse.js';
import type { Metrics } from './metrics.js';

/** The upgrade request as the WebSocket layer sees it; an `IncomingMessage` is one too. */
export interface UpgradeRequest {
  method?: string | undefined;
  url?: string | undefined;
  httpVersion: string;
  headers: IncomingHttpHeaders;
  socket: Socket;
}

export interface UpgradeListenerOptions {
  /** Serve TLS (wss://) with these options (cert, key, ...). */
  tls?: TlsOptions;
  /** Largest request head accepted (431 beyond). Default 16 KiB. */
  maxHeadSize?: number;
  /** Time allowed for the request head to arrive. Default 10000 ms. */
  headTimeoutMs?: number;
  /**
   * A connection whose first request is not a WebSocket upgrade: given the socket and the
   * bytes read so far (e.g. to hand it to an `http.Server`). Default: answer 426.
   */
  onHttpRequest?: (socket: Socket, bytes: Buffer) => void;
  /**
   * Count the requests this listener refuses itself (a bad or too large head, a plain HTTP
   * request answered 426) here, e.g. the `Metrics` its routes count in.
   */
  metrics?: Metrics;
}

/** A listener from `createUpgradeListener`. */
export type UpgradeListener = NetServer & {
  /** Destroy connections still sending their request head (for shutdown). */
  destroyPendingHandshakes(): void;
};

/**
 * A TCP (or TLS) server that reads just the HTTP request head of each connection itself and
 * hands upgrade requests to `onUpgrade(request, socket, head)`, without node:http: no HTTP
 * parser, `IncomingMessage` or `ServerResponse` per connection, which makes handshakes
 * cheaper and idle connections smaller. Plain HTTP requests get 426 (or `onHttpRequest`).
 */
export function createUpgradeListener(
  onUpgrade: (request: UpgradeRequest, socket: Socket, head: Buffer) => void,
  options: UpgradeListenerOptions = {},
): UpgradeListener {
  const pending = new Set<Socket>();
  const maxHeadSize = options.maxHeadSize ?? DEFAULT_MAX_HEAD_SIZE;
  const headTimeoutMs = options.headTimeoutMs ?? 10_000;

  const onConnection = (socket: Socket): void => {
    adoptSocket(socket);
    let received: Buffer | null = null;
    const timer = setTimeout(() => socket.destroy(), headTimeoutMs);
    timer.unref();
    pending.add(socket);
    const stop = (): void => {
      pending.delete(socket);
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('end', onEnd);
    };
    const onClose = (): void => stop();
    const onEnd = (): void => {
      stop();
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      received = received === null ? chunk : Buffer.concat([received, chunk]);
      const result = parseRequestHead(received, maxHeadSize);
      if (result === null) return;
      stop();
      socket.pause();
      if (!result.ok) {
        options.metrics?.refused(result.status);
        refuseUpgrade(socket, result.status, `${result.reason}\n`);
        return;
      }
      const { head } = result;
      const rest = received.subarray(result.length);
      if (!isUpgrade(head.headers)) {
        if (options.onHttpRequest) {
          options.onHttpRequest(socket, received);
        } else {
          options.metrics?.refused(426);
          refuseUpgrade(socket, 426, 'this is a WebSocket server\n', { Upgrade: 'websocket' });
        }
        return;
      }
      const request: UpgradeRequest = {
        method: head.method,
        url: head.url,
        httpVersion: head.httpVersion,
        headers: head.headers as IncomingHttpHeaders,
        socket,
      };
      onUpgrade(request, socket, rest);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('end', onEnd);
  };

  // Half-open: a client may send its close frame and then end its side; the close reply
  // must still be written, so our side ends only when the WebSocket layer says so.
  const server = (options.tls
    ? createTlsServer({ ...options.tls, allowHalfOpen: true }, onConnection)
    : createNetServer({ allowHalfOpen: true }, onConnection)) as UpgradeListener;
  server.destroyPendingHandshakes = () => {
    for (const socket of pending) socket.destroy();
    pending.clear();
  };
  return server;
}

/** Whether a request asks for an upgrade (validation of the details is the handshake's job). */
function isUpgrade(headers: Record<string, unknown>): boolean {
  return typeof headers['upgrade'] === 'string';
}
