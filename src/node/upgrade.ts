import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { UpgradeRequest } from './listener.js';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { buildAcceptResponse, isValidProtocolName, validateUpgradeRequest } from '../protocol/handshake.js';
import { adoptSocket } from './adopt.js';
import { deflateConfigFor, negotiateAsServer, type DeflateAgreement, type PerMessageDeflateOptions } from '../protocol/deflate/negotiate.js';
import { refuseUpgrade } from './refuse.js';
import type { Metrics } from './metrics.js';

/** Refuse an upgrade with a real HTTP response. */
export interface UpgradeRejection {
  reject: { status: number; body?: string; headers?: Record<string, string> };
}

/** Accept an upgrade, optionally with per-connection data, a subprotocol and extra headers. */
export interface UpgradeAcceptance {
  /** Per-connection data, available as `stream.data` (and the event app's stream state). */
  data?: unknown;
  /** The subprotocol to agree; must be one the client offered. Overrides `protocols`. */
  protocol?: string;
  /** Extra headers for the 101 response. */
  headers?: Record<string, string>;
}

export type UpgradeDecision = UpgradeRejection | UpgradeAcceptance | void | undefined;

/** The upgrade request as the hooks below see it: with its query string parsed. */
export type UpgradeHookRequest = UpgradeRequest & {
  /** The request URL's query (`/ws?room=a` gives `query.get('room') === 'a'`). */
  readonly query: URLSearchParams;
};

export interface UpgradeOptions {
  /**
   * Subprotocols this server speaks, in order of preference: the first one the client also
   * offered is agreed. Default: none (no `Sec-WebSocket-Protocol` in the response).
   */
  protocols?: readonly string[];
  /** Choose the subprotocol from the client's offers (in its order); overrides `protocols`. */
  selectProtocol?: (offered: string[], request: UpgradeHookRequest) => string | undefined;
  /**
   * Origins allowed to connect (exact `Origin` header values, e.g. `https://example.com`), or
   * a predicate. Requests from other origins get 403. Default: any origin.
   */
  allowedOrigins?: readonly string[] | ((origin: string | undefined, request: UpgradeHookRequest) => boolean);
  /**
   * Decide on each upgrade after the handshake headers are valid: return
   * `{ reject: { status, body, headers } }` to refuse with that HTTP response, or accept with
   * `{ data, protocol, headers }` (or nothing). A throw refuses with 500.
   */
  onUpgrade?: (request: UpgradeHookRequest) => UpgradeDecision | Promise<UpgradeDecision>;
  /**
   * How long an asynchronous `onUpgrade` may take to decide, in ms. When it has not settled by
   * then the client gets 503 and the socket is freed (what the hook answers later is ignored).
   * Default 10000.
   */
  upgradeTimeoutMs?: number;
  /**
   * permessage-deflate (RFC 7692): `true` for the defaults, or the settings (see
   * `PerMessageDeflateOptions`). Default false on a server: compression costs CPU on every
   * message and, with context takeover, about 300 KiB of zlib memory per active connection,
   * and mixing secrets with attacker-chosen text in one compressed message leaks them by
   * size (CRIME/BREACH); enable it where bandwidth matters more, e.g. large text messages.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * Where this server's figures are counted: connections, refused upgrades, messages, bytes,
   * close codes (see `Metrics`). Give one `Metrics` to several apps or routes to add their
   * figures up. Default: a `Metrics` of the app's or route's own (`app.metrics()`, `route.metrics()`).
   */
  metrics?: Metrics;
}

/** The default of `UpgradeOptions.upgradeTimeoutMs`. */
export const DEFAULT_UPGRADE_TIMEOUT_MS = 10_000;

/** What a hook that missed its deadline "answered". */
const TIMED_OUT = Symbol('timed out');

/** `pending`, or `TIMED_OUT` if it has not settled within `ms` (the timer is cleared either way). */
function withDeadline<T>(pending: PromiseLike<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMED_OUT);
  });
  return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Give the request a `query` (parsed when first read) for the hooks; the request object
 * itself is kept, so an `IncomingMessage` stays one.
 */
function withQuery(request: UpgradeRequest): UpgradeHookRequest {
  if (!((request as Partial<UpgradeHookRequest>).query instanceof URLSearchParams)) {
    let query: URLSearchParams | undefined;
    Object.defineProperty(request, 'query', {
      configurable: true,
      get: () => {
        const url = request.url ?? '';
        const mark = url.indexOf('?');
        return (query ??= new URLSearchParams(mark === -1 ? '' : url.slice(mark + 1)));
      },
    });
  }
  return request as UpgradeHookRequest;
}

export interface AcceptedUpgrade {
  protocol: string | undefined;
  data: unknown;
  /** What permessage-deflate negotiation agreed, or null. */
  deflate: DeflateAgreement | null;
}

/** Shorthand for `{ reject: { status, body, headers } }`. */
export function rejectUpgrade(status: number, body = '', headers: Record<string, string> = {}): UpgradeRejection {
  return { reject: { status, body, headers } };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

/** Refuse the upgrade (see `refuseUpgrade`), counted in `options.metrics`. */
function refuse(options: UpgradeOptions, socket: Duplex, status: number, body?: string, headers?: Record<string, string>): null {
  options.metrics?.refused(status);
  return refuseUpgrade(socket, status, body, headers);
}

/** Throws (Node's ERR_INVALID_HTTP_TOKEN / ERR_INVALID_CHAR) unless every header is safe to write. */
function checkHeaders(headers: Record<string, string>): void {
  for (const name of Object.keys(headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, headers[name]);
  }
}

/**
 * Run the server side of the opening handshake on a socket from an HTTP server's `upgrade`
 * event: validate the request, apply origin checks and the `onUpgrade` hook, then write the
 * `101` (resolving with the agreed subprotocol and data) or a rejection (resolving null; the
 * socket is then closed). Never throws: when a hook (`onUpgrade`, an `allowedOrigins`
 * predicate, `selectProtocol`) throws or returns an unusable answer (a header with CR/LF, a
 * rejection status outside 300-599), the error is logged and the client gets 500.
 */
export async function acceptUpgrade(
  request: UpgradeRequest,
  socket: Duplex,
  options: UpgradeOptions,
): Promise<AcceptedUpgrade | null> {
  adoptSocket(socket);
  try {
    return await decideUpgrade(request, socket, options);
  } catch (error) {
    console.error('humphrey-ws: accepting a WebSocket upgrade failed', error);
    return refuse(options, socket, 500, 'internal error while accepting the connection');
  }
}

async function decideUpgrade(
  request: UpgradeRequest,
  socket: Duplex,
  options: UpgradeOptions,
): Promise<AcceptedUpgrade | null> {
  const netSocket = socket as Socket;
  // Hold incoming frames in the socket until the connection is set up.
  socket.pause();
  netSocket.setTimeout?.(0);
  netSocket.setNoDelay?.(true);
  const result = validateUpgradeRequest({ method: request.method ?? '', httpVersion: request.httpVersion, headers: request.headers });
  if (!result.ok) return refuse(options, socket, result.status, result.body, result.headers);
  // Only requests that meet a hook pay for the query.
  const hooked = typeof options.allowedOrigins === 'function' || options.onUpgrade || options.selectProtocol ? withQuery(request) : (request as UpgradeHookRequest);

  const origin = request.headers.origin;
  const allowed = options.allowedOrigins;
  if (allowed !== undefined) {
    const ok = typeof allowed === 'function' ? allowed(origin, hooked) : origin !== undefined && allowed.includes(origin);
    if (!ok) return refuse(options, socket, 403, `origin ${origin ?? '(none)'} is not allowed`);
  }

  let decision: UpgradeDecision;
  if (options.onUpgrade) {
    const answer = options.onUpgrade(hooked);
    if (isPromiseLike(answer)) {
      const settled = await withDeadline(answer, options.upgradeTimeoutMs ?? DEFAULT_UPGRADE_TIMEOUT_MS);
      if (settled === TIMED_OUT) return refuse(options, socket, 503, 'the server did not decide on the upgrade in time');
      decision = settled;
    } else {
      decision = answer;
    }
    if (socket.destroyed) return null;
    if (decision && 'reject' in decision) {
      const { status, body = '', headers = {} } = decision.reject;
      if (!Number.isInteger(status) || status < 300 || status > 599) {
        throw new RangeError(`onUpgrade rejected with status ${status}; use 300-599`);
      }
      checkHeaders(headers);
      return refuse(options, socket, status, body, headers);
    }
  }
  const acceptance = (decision ?? {}) as UpgradeAcceptance;
  let protocol = acceptance.protocol;
  if (protocol === undefined) {
    if (options.selectProtocol) protocol = options.selectProtocol(result.protocols, hooked);
    else if (options.protocols) protocol = options.protocols.find((name) => result.protocols.includes(name));
  }
  if (protocol !== undefined && (!result.protocols.includes(protocol) || !isValidProtocolName(protocol))) {
    return refuse(options, socket, 500, `server chose subprotocol ${JSON.stringify(protocol)} that the client did not offer`);
  }
  if (acceptance.headers) checkHeaders(acceptance.headers);
  const deflateConfig = deflateConfigFor(options.perMessageDeflate, 'server', false);
  const negotiated = deflateConfig === null ? null : negotiateAsServer(request.headers['sec-websocket-extensions'], deflateConfig);
  const headers = negotiated === null ? acceptance.headers : { ...acceptance.headers, 'Sec-WebSocket-Extensions': negotiated.response };
  socket.write(buildAcceptResponse(result.accept, protocol, headers));
  return { protocol, data: acceptance.data, deflate: negotiated?.agreement ?? null };
}
