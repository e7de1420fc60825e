import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { WebSocketError } from '../protocol/errors.js';
import { clientHandshakeHeaders, createClientKey, validateServerResponse } from '../protocol/handshake.js';
import { adoptSocket } from '../node/adopt.js';
import { acceptAsClient, clientOffer, deflateConfigFor, type DeflateAgreement, type PerMessageDeflateOptions } from '../protocol/deflate/negotiate.js';
import { WebSocketStream, type StreamOptions } from './stream.js';

export interface ConnectOptions extends StreamOptions {
  /** Subprotocols to offer, in order of preference (or one, as a string). Default: none. */
  protocols?: string | readonly string[];
  /** Extra request headers (e.g. `Authorization`, `Origin`). */
  headers?: Record<string, string>;
  /** Give up if the handshake has not completed in this time. Default 10000 ms. */
  handshakeTimeoutMs?: number;
  /** TLS options for `wss://` (e.g. `ca` for a private certificate, `rejectUnauthorized`). */
  tls?: SecureContextOptions & { rejectUnauthorized?: boolean; servername?: string };
  /** Abort the connection attempt. */
  signal?: AbortSignal;
  /**
   * Offer permessage-deflate (RFC 7692): `true` for the defaults, `false` to offer nothing, or
   * the settings (see `PerMessageDeflateOptions`). Default true, as browsers do: a server that
   * does not want it simply declines.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

/** The most of a refusal's body kept on the error. */
const MAX_REFUSAL_BODY = 64 * 1024;

/**
 * Open a WebSocket connection to a `ws://` or `wss://` URL (`http://` and `https://` are
 * taken as `ws://` and `wss://`). Resolves with the same `WebSocketStream` the server side
 * uses; rejects with `WS_ERR_HANDSHAKE` when the server answers wrongly or refuses, and then
 * the error's `status`, `headers` and `body` are what the server answered.
 */
export function connect(url: string | URL, options: ConnectOptions = {}): Promise<WebSocketStream> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.reject(new WebSocketError('WS_ERR_INVALID_ARGUMENT', `invalid URL ${JSON.stringify(String(url))}`));
  }
  if (target.protocol === 'http:' || target.protocol === 'https:') target = new URL(`ws${target.href.slice(4)}`);
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') {
    return Promise.reject(new WebSocketError('WS_ERR_INVALID_ARGUMENT', `unsupported URL scheme ${target.protocol} (expected ws:, wss:, http: or https:)`));
  }
  if (target.hash) {
    return Promise.reject(new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a WebSocket URL cannot have a fragment'));
  }
  const secure = target.protocol === 'wss:';
  const protocols = typeof options.protocols === 'string' ? [options.protocols] : (options.protocols ?? []);
  let headers: Record<string, string>;
  let deflateConfig: ReturnType<typeof deflateConfigFor> = null;
  const { key, expectedAccept } = createClientKey();
  try {
    headers = { ...options.headers, ...clientHandshakeHeaders(key, protocols) };
    deflateConfig = deflateConfigFor(options.perMessageDeflate, 'client', true);
    if (deflateConfig !== null) headers['Sec-WebSocket-Extensions'] = clientOffer(deflateConfig);
  } catch (error) {
    return Promise.reject(error);
  }
  const send = secure ? httpsRequest : httpRequest;
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;

  return new Promise<WebSocketStream>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      reject(error);
    };
    const request = send({
      host,
      port: target.port || (secure ? 443 : 80),
      path: target.pathname + target.search,
      headers,
      ...(secure ? options.tls : {}),
      // SNI takes host names only (RFC 6066); for an IP address the certificate is checked against its IP SAN.
      servername: secure ? (options.tls?.servername ?? (isIP(host) ? undefined : host)) : undefined,
      signal: options.signal,
      agent: false,
    } as RequestOptions);
    const timeoutMs = options.handshakeTimeoutMs ?? 10_000;
    const timer = setTimeout(
      () => fail(new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    request.on('error', (error) => fail(error instanceof WebSocketError ? error : new WebSocketError('WS_ERR_HANDSHAKE', `connection failed: ${error.message}`)));
    request.on('response', (response: IncomingMessage) => {
      // Read (a bounded part of) the body before failing: it usually says why. The handshake
      // timer still runs, so a body that never ends does not hold the caller.
      const chunks: Buffer[] = [];
      let length = 0;
      const refuse = (): void => {
        const status = response.statusCode ?? 0;
        const body = Buffer.concat(chunks).toString('utf8');
        const said = body.trim() === '' ? '' : `: ${body.trim().slice(0, 200)}`;
        fail(new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake failed: server answered with status ${status}${said}`, undefined, {
          status,
          headers: { ...response.headers },
          body,
        }));
      };
      response.on('data', (chunk: Buffer) => {
        if (length < MAX_REFUSAL_BODY) chunks.push(chunk.subarray(0, MAX_REFUSAL_BODY - length));
        length += chunk.length;
        if (length >= MAX_REFUSAL_BODY) refuse();
      });
      response.on('end', refuse);
      response.on('close', refuse);
    });
    request.on('upgrade', (response: IncomingMessage, socket: Socket, head: Buffer) => {
      adoptSocket(socket);
      if (settled) {
        socket.destroy();
        return;
      }
      let protocol: string | undefined;
      let deflate: DeflateAgreement | null = null;
      try {
        protocol = validateServerResponse(response.statusCode ?? 0, response.headers, expectedAccept, protocols, true);
        deflate = acceptAsClient(response.headers['sec-websocket-extensions'], deflateConfig);
      } catch (error) {
        socket.destroy();
        fail(error as Error);
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.setNoDelay(true);
      socket.setTimeout(0);
      resolve(new WebSocketStream(socket, head, 'client', options, { protocol, deflate }));
    });
    request.end();
  });
}
