import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { UpgradeRequest } from './listener.js';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  buildAcceptResponse,
  buildRejectResponse,
  isValidProtocolName,
  validateUpgradeRequest,
} from '../protocol/handshake.js';

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

export interface UpgradeOptions {
  /**
   * Subprotocols this server speaks, in order of preference: the first one the client also
   * offered is agreed. Default: none (no `Sec-WebSocket-Protocol` in the response).
   */
  protocols?: readonly string[];
  /** Choose the subprotocol from the client's offers (in its order); overrides `protocols`. */
  selectProtocol?: (offered: string[], request: UpgradeRequest) => string | undefined;
  /**
   * Origins allowed to connect (exact `Origin` header values, e.g. `https://example.com`), or
   * a predicate. Requests from other origins get 403. Default: any origin.
   */
  allowedOrigins?: readonly string[] | ((origin: string | undefined, request: UpgradeRequest) => boolean);
  /**
   * Decide on each upgrade after the handshake headers are valid: return
   * `{ reject: { status, body, headers } }` to refuse with that HTTP response, or accept with
   * `{ data, protocol, headers }` (or nothing). A throw refuses with 500.
   */
  onUpgrade?: (request: UpgradeRequest) => UpgradeDecision | Promise<UpgradeDecision>;
}

export interface AcceptedUpgrade {
  protocol: string | undefined;
  data: unknown;
}

/** Shorthand for `{ reject: { status, body, headers } }`. */
export function rejectUpgrade(status: number, body = '', headers: Record<string, string> = {}): UpgradeRejection {
  return { reject: { status, body, headers } };
}

/** Answer an upgrade request with an HTTP error and close the socket. Returns null. */
export function refuseUpgrade(socket: Duplex, status: number, body = '', headers: Record<string, string> = {}): null {
  if (!socket.destroyed) {
    socket.end(buildRejectResponse(status, body, headers));
    // Give the response a moment to leave, then make sure the socket is gone.
    setTimeout(() => socket.destroy(), 1000).unref();
  }
  return null;
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
  try {
    return await decideUpgrade(request, socket, options);
  } catch (error) {
    console.error('humphrey-ws: accepting a WebSocket upgrade failed', error);
    return refuseUpgrade(socket, 500, 'internal error while accepting the connection');
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
  if (!result.ok) return refuseUpgrade(socket, result.status, result.body, result.headers);

  const origin = request.headers.origin;
  const allowed = options.allowedOrigins;
  if (allowed !== undefined) {
    const ok = typeof allowed === 'function' ? allowed(origin, request) : origin !== undefined && allowed.includes(origin);
    if (!ok) return refuseUpgrade(socket, 403, `origin ${origin ?? '(none)'} is not allowed`);
  }

  let decision: UpgradeDecision;
  if (options.onUpgrade) {
    decision = await options.onUpgrade(request);
    if (decision && 'reject' in decision) {
      const { status, body = '', headers = {} } = decision.reject;
      if (!Number.isInteger(status) || status < 300 || status > 599) {
        throw new RangeError(`onUpgrade rejected with status ${status}; use 300-599`);
      }
      checkHeaders(headers);
      return refuseUpgrade(socket, status, body, headers);
    }
  }
  if (socket.destroyed) return null;

  const acceptance = (decision ?? {}) as UpgradeAcceptance;
  let protocol = acceptance.protocol;
  if (protocol === undefined) {
    if (options.selectProtocol) protocol = options.selectProtocol(result.protocols, request);
    else if (options.protocols) protocol = options.protocols.find((name) => result.protocols.includes(name));
  }
  if (protocol !== undefined && (!result.protocols.includes(protocol) || !isValidProtocolName(protocol))) {
    return refuseUpgrade(socket, 500, `server chose subprotocol ${JSON.stringify(protocol)} that the client did not offer`);
  }
  if (acceptance.headers) checkHeaders(acceptance.headers);
  socket.write(buildAcceptResponse(result.accept, protocol, acceptance.headers));
  return { protocol, data: acceptance.data };
}
