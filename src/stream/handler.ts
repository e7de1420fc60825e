import type { UpgradeRequest } from '../node/listener.js';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketError } from '../protocol/errors.js';
import { WebSocketStream, type StreamOptions } from './stream.js';
import { acceptUpgrade, type UpgradeOptions } from '../node/upgrade.js';
import { refuseUpgrade } from '../node/refuse.js';
import { deflateConfigFor } from '../protocol/deflate/negotiate.js';
import { Metrics, type MetricsSnapshot } from '../node/metrics.js';

/** A per-connection handler: owns one connection until it returns. */
export type WebSocketHandler<State = unknown> = (stream: WebSocketStream, state: State) => void | Promise<void>;

export interface WebSocketHandlerOptions extends UpgradeOptions, StreamOptions {
  /** Called with an error a handler threw (the client is then closed with 1011). Default: log. */
  onError?: (error: unknown, stream: WebSocketStream) => void;
}

/**
 * What a WebSocket route calls with an HTTP server's `upgrade` event (plus the app state).
 * `shutdown` closes every connection it accepted with 1001 and resolves once they are closed;
 * from then on the route refuses upgrades with 503.
 */
export interface WebSocketRoute<State = unknown> {
  (request: UpgradeRequest, socket: Duplex, head: Buffer, state: State): void;
  shutdown(code?: number, reason?: string): Promise<void>;
  /** The number of open connections this route accepted. */
  readonly connectionCount: number;
  /** The route's figures now (those of the `metrics` option given, if one was). */
  metrics(): MetricsSnapshot;
}

/** A handler error worth reporting: not just the peer going away under a pending `recv`. */
function isReportable(error: unknown): boolean {
  return !(error instanceof WebSocketError && (error.code === 'WS_ERR_CLOSED' || error.code === 'WS_ERR_CONNECTION_LOST'));
}

/**
 * Make a WebSocket route from a per-connection handler (the original's synchronous
 * architecture). The handler gets the stream and the app state; when it returns the client is
 * sent close 1000, when it throws close 1011.
 */
export function websocketHandler<State = unknown>(
  handler: WebSocketHandler<State>,
  options: WebSocketHandlerOptions = {},
): WebSocketRoute<State> {
  // Bad compression settings are reported now, not on the first upgrade.
  deflateConfigFor(options.perMessageDeflate, 'server', false);
  const metrics = options.metrics ?? new Metrics();
  if (options.metrics === undefined) options = { ...options, metrics };
  const streams = new Set<WebSocketStream>();
  /** Set by `shutdown`: later upgrades are refused, ones already past the handshake closed. */
  let shutdownClose: { code: number; reason: string } | null = null;
  const report = options.onError ?? ((error: unknown, stream: WebSocketStream) => {
    console.error(`humphrey-ws: handler for ${stream.peerAddr} threw`, error);
  });

  // Written as promise callbacks, not one async function, so that nothing keeps the
  // upgrade request and its head buffer alive for as long as the handler runs.
  function run(request: UpgradeRequest, socket: Duplex, head: Buffer, state: State): void {
    if (shutdownClose !== null) {
      metrics.refused(503);
      refuseUpgrade(socket, 503, 'the server is shutting down');
      return;
    }
    const info = { method: request.method ?? 'GET', url: request.url ?? '/', headers: request.headers };
    void acceptUpgrade(request, socket, options).then((accepted) => {
      if (accepted === null) return;
      start(new WebSocketStream(socket as Socket, head, 'server', options, { protocol: accepted.protocol, request: info, data: accepted.data, deflate: accepted.deflate, metrics }), state);
    });
  }

  function start(stream: WebSocketStream, state: State): void {
    // The route was shut down while this upgrade was being decided (e.g. an async onUpgrade).
    const closing = shutdownClose;
    if (closing !== null) {
      void stream.close(closing.code, closing.reason).catch(() => stream.terminate());
      return;
    }
    streams.add(stream);
    let result: void | Promise<void>;
    try {
      result = handler(stream, state);
    } catch (error) {
      finish(stream, error);
      return;
    }
    if (result instanceof Promise) result.then(() => finish(stream, undefined), (error: unknown) => finish(stream, error ?? new Error('handler rejected')));
    else finish(stream, undefined);
  }

  /** The handler is done: close with 1000, or 1011 (and report) when it failed. */
  function finish(stream: WebSocketStream, error: unknown): void {
    streams.delete(stream);
    if (error === undefined) {
      void stream.close(1000);
      return;
    }
    if (isReportable(error)) report(error, stream);
    void stream.close(1011);
  }

  const route = ((request: UpgradeRequest, socket: Duplex, head: Buffer, state: State) => {
    run(request, socket, head, state);
  }) as WebSocketRoute<State>;
  route.shutdown = async (code = 1001, reason = '') => {
    shutdownClose ??= { code, reason };
    await Promise.all([...streams].map((stream) => stream.close(code, reason).catch(() => undefined)));
  };
  Object.defineProperty(route, 'connectionCount', { get: () => streams.size });
  route.metrics = () => metrics.snapshot();
  return route;
}

/**
 * Hand an upgrade from any Node `http`/`https` server to a WebSocket route, e.g.
 * `server.on('upgrade', (req, socket, head) => handleUpgrade(req, socket, head, route))`.
 */
export function handleUpgrade<State>(
  request: UpgradeRequest,
  socket: Duplex,
  head: Buffer,
  route: (request: UpgradeRequest, socket: Duplex, head: Buffer, state: State) => void,
  state?: State,
): void {
  route(request, socket, head, state as State);
}
