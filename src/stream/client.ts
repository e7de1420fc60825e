import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContextOptions } from 'node:tls';
import { WebSocketError } from '../protocol/errors.js';
import { clientHandshakeHeaders, createClientKey, validateServerResponse } from '../protocol/handshake.js';
import { adoptSocket } from '../node/adopt.js';
import { isToken } from '../protocol/http1.js';
import { parseResponseHead, ResponseBodyReader, type ResponseHead } from '../protocol/http1-response.js';
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
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  let requestHead: string;
  try {
    requestHead = upgradeRequestHead(target, headers);
  } catch (error) {
    return Promise.reject(error);
  }
  if (options.signal?.aborted) {
    return Promise.reject(new WebSocketError('WS_ERR_HANDSHAKE', 'connection failed: the attempt was aborted'));
  }

  return new Promise<WebSocketStream>((resolve, reject) => {
    const port = Number(target.port) || (secure ? 443 : 80);
    const socket: Socket = secure
      ? tlsConnect({
          ...options.tls,
          host,
          port,
          // SNI takes host names only (RFC 6066); for an IP address the certificate is checked against its IP SAN.
          servername: options.tls?.servername ?? (isIP(host) ? undefined : host),
        })
      : netConnect({ host, port });
    adoptSocket(socket);
    let received: Buffer | null = null;
    let refusal: { head: ResponseHead; body: ResponseBodyReader } | null = null;
    let settled = false;
    const timeoutMs = options.handshakeTimeoutMs ?? 10_000;
    const timer = setTimeout(
      () => fail(new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onAbort = (): void => fail(new WebSocketError('WS_ERR_HANDSHAKE', 'connection failed: the attempt was aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    function fail(error: Error): void {
      if (settled) return;
      finish();
      socket.destroy();
      reject(error);
    }
    const refuse = (): void => {
      if (refusal === null) return;
      const { head, body } = refusal;
      const text = body.text;
      const said = text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`;
      fail(new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake failed: server answered with status ${head.status}${said}`, undefined, {
        status: head.status,
        headers: { ...head.headers },
        body: text,
      }));
    };
    function onError(error: Error): void {
      fail(new WebSocketError('WS_ERR_HANDSHAKE', `connection failed: ${error.message}`));
    }
    function onEnd(): void {
      if (refusal !== null) {
        refusal.body.end();
        refuse();
      } else {
        fail(new WebSocketError('WS_ERR_HANDSHAKE', 'connection failed: the server closed the connection before it answered the upgrade'));
      }
    }
    function onData(chunk: Buffer): void {
      if (refusal !== null) {
        if (refusal.body.push(chunk)) refuse();
        return;
      }
      received = received === null ? chunk : Buffer.concat([received, chunk]);
      const parsed = parseResponseHead(received);
      if (parsed === null) return;
      if (!parsed.ok) {
        fail(new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake failed: malformed response (${parsed.reason})`));
        return;
      }
      const rest = received.subarray(parsed.length);
      received = null;
      const { head } = parsed;
      if (head.status !== 101) {
        // Read (a bounded part of) the body before failing: it usually says why. The handshake
        // timer still runs, so a body that never ends does not hold the caller.
        refusal = { head, body: new ResponseBodyReader(head.status, head.headers, MAX_REFUSAL_BODY) };
        if (refusal.body.complete || refusal.body.push(rest)) refuse();
        return;
      }
      let protocol: string | undefined;
      let deflate: DeflateAgreement | null = null;
      try {
        protocol = validateServerResponse(head.status, head.headers, expectedAccept, protocols, true);
        deflate = acceptAsClient(head.headers['sec-websocket-extensions'], deflateConfig);
      } catch (error) {
        fail(error as Error);
        return;
      }
      finish();
      socket.setNoDelay(true);
      resolve(new WebSocketStream(socket, rest, 'client', options, { protocol, deflate }));
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.write(requestHead);
  });
}

/**
 * The upgrade request's head: request line, `Host` (unless the caller gave one), then the
 * headers. Names must be tokens and values free of control characters (a CR or LF in a value
 * would let a caller's input split the request), else WS_ERR_INVALID_ARGUMENT.
 */
function upgradeRequestHead(target: URL, headers: Record<string, string>): string {
  let head = `GET ${target.pathname}${target.search} HTTP/1.1\r\n`;
  let hasHost = false;
  let fields = '';
  for (const name of Object.keys(headers)) {
    const value = String(headers[name]);
    if (!isToken(name)) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `invalid header name ${JSON.stringify(name)}`);
    if (!isRequestFieldValue(value)) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `invalid value for header ${name}: control characters are not allowed`);
    if (name.toLowerCase() === 'host') hasHost = true;
    fields += `${name}: ${value}\r\n`;
  }
  // URL.host drops a default port and keeps an IPv6 address in brackets, as Host wants (RFC 9110 7.2).
  if (!hasHost) head += `Host: ${target.host}\r\n`;
  return `${head}${fields}\r\n`;
}

function isRequestFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}
