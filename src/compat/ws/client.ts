import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { isIP, type Socket } from 'node:net';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { acceptKeyFor, createClientKey } from '../../protocol/handshake.js';
import { isToken } from '../../protocol/http1.js';
import { parseExtensions } from '../../protocol/deflate/extensions.js';
import { acceptAsClient, clientOffer, type DeflateAgreement } from '../../protocol/deflate/negotiate.js';
import { wsDeflateConfig } from './deflate.js';
import { abortHandshake, CONNECTING, kAborted, type WebSocket } from './websocket.js';

/** Options of `new WebSocket(address, protocols, options)`; the rest go to `http(s).request`. */
export interface ClientOptions extends Omit<RequestOptions, 'timeout'>, Pick<TlsConnectionOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername' | 'pfx' | 'passphrase'> {
  /** Emit one message event per turn of the event loop when false. Default true. */
  allowSynchronousEvents?: boolean;
  /** Answer pings with pongs automatically. Default true. */
  autoPong?: boolean;
  /** After `close()`, how long to wait for the server to close before destroying the socket, in ms. Default 30000. */
  closeTimeout?: number;
  /** Call this instead of `request.end()` to send the handshake request (e.g. to write to it first). */
  finishRequest?: (request: ClientRequest, websocket: WebSocket) => void;
  /** Follow 3xx redirects. Default false. */
  followRedirects?: boolean;
  /** Fill the 4-byte masking key of every frame (default: random bytes). */
  generateMask?: (mask: Buffer) => void;
  /** Give up on the opening handshake after this many ms. Default: no limit. */
  handshakeTimeout?: number;
  /** Largest message accepted, in bytes (0: no limit). Default 100 MiB. */
  maxPayload?: number;
  /** Most redirects followed. Default 10. */
  maxRedirects?: number;
  /** The `Origin` header (`Sec-WebSocket-Origin` for protocol version 8). */
  origin?: string;
  /** Offer permessage-deflate: true, false or ws's settings object. Default true. */
  perMessageDeflate?: boolean | Record<string, unknown>;
  /** `Sec-WebSocket-Version`: 13 or 8. Default 13. */
  protocolVersion?: number;
  /** Skip UTF-8 validation of text (not supported: text is always validated). Default false. */
  skipUTF8Validation?: boolean;
}

const PROTOCOL_VERSIONS = [8, 13];

/** Where the first request of a redirect chain went, to tell whether a redirect leaves it. */
interface RedirectOrigin {
  ipc: boolean;
  secure: boolean;
  hostOrSocketPath: string;
}
const redirectOrigins = new WeakMap<WebSocket, RedirectOrigin>();

// The modules' own objects, looked up at each call as ws does, so code that wraps
// `net.connect` or `tls.connect` (instrumentation, tests) sees our connections too.
const require = createRequire(import.meta.url);
const net = require('node:net') as typeof import('node:net');
const tls = require('node:tls') as typeof import('node:tls');

function connectPlain(options: RequestOptions & { socketPath?: string }): Socket {
  return net.connect({ ...(options as object), path: options.socketPath } as unknown as Parameters<typeof net.connect>[0]);
}

function connectTls(options: RequestOptions & TlsConnectionOptions): Socket {
  const servername = options.servername ?? (isIP(String(options.host)) ? '' : String(options.host));
  return tls.connect({ ...(options as object), path: undefined, servername } as TlsConnectionOptions);
}

/** Reject a URL: a throw from the constructor, an error event after a redirect. */
function refuseUrl(ws: WebSocket, error: Error): void {
  if (ws.redirects === 0) throw error;
  ws.failHandshake(error);
}

/**
 * Start (or, after a redirect, restart) the opening handshake of a client `ws` to `address`.
 * Throws for an invalid URL, subprotocol or protocol version, as `ws`'s constructor does.
 */
export function startClientHandshake(ws: WebSocket, address: string | URL, protocols: unknown[], options: ClientOptions): void {
  const version = options.protocolVersion ?? 13;
  if (!PROTOCOL_VERSIONS.includes(version)) {
    throw new RangeError(`Unsupported protocol version: ${version} (supported versions: ${PROTOCOL_VERSIONS.join(', ')})`);
  }
  let url: URL;
  try {
    url = new URL(address instanceof URL ? address.href : address);
  } catch {
    throw new SyntaxError(`Invalid URL: ${String(address)}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  ws.address = url.href;
  const secure = url.protocol === 'wss:';
  const ipc = url.protocol === 'ws+unix:';
  if (url.protocol !== 'ws:' && !secure && !ipc) {
    return refuseUrl(ws, new SyntaxError('The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"'));
  }
  if (ipc && !url.pathname) return refuseUrl(ws, new SyntaxError("The URL's pathname is empty"));
  if (url.hash) return refuseUrl(ws, new SyntaxError('The URL contains a fragment identifier'));

  const offered = new Set<string>();
  for (const protocol of protocols) {
    if (typeof protocol !== 'string' || !isToken(protocol) || offered.has(protocol)) {
      throw new SyntaxError('An invalid or duplicated subprotocol was specified');
    }
    offered.add(protocol);
  }

  const { key } = createClientKey();
  const requestOptions: RequestOptions & Record<string, unknown> = {
    ...(options as RequestOptions),
    createConnection: (options.createConnection ?? (secure ? connectTls : connectPlain)) as RequestOptions['createConnection'],
    defaultPort: options.defaultPort ?? (secure ? 443 : 80),
    port: url.port || (secure ? 443 : 80),
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    hostname: undefined,
    protocol: undefined,
    socketPath: undefined,
    method: 'GET',
    path: url.pathname + url.search,
    timeout: options.handshakeTimeout,
    headers: {
      ...options.headers,
      'Sec-WebSocket-Version': version,
      'Sec-WebSocket-Key': key,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
    },
  };
  const headers = requestOptions.headers as Record<string, unknown>;
  if (offered.size > 0) headers['Sec-WebSocket-Protocol'] = protocols.join(',');
  const deflateConfig = wsDeflateConfig(options.perMessageDeflate, 'client', true);
  if (deflateConfig !== null) headers['Sec-WebSocket-Extensions'] = clientOffer(deflateConfig);
  if (options.origin) headers[version < 13 ? 'Sec-WebSocket-Origin' : 'Origin'] = options.origin;
  if (url.username || url.password) requestOptions.auth = `${url.username}:${url.password}`;
  if (ipc) {
    const [socketPath, path] = String(requestOptions.path).split(':');
    requestOptions.socketPath = socketPath;
    requestOptions.path = path;
  }

  if (options.followRedirects) {
    if (ws.redirects === 0) {
      redirectOrigins.set(ws, { ipc, secure, hostOrSocketPath: ipc ? String(requestOptions.socketPath) : url.host });
      // Header names in lower case, so a redirect can drop credentials whatever their spelling.
      const lowered: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(options.headers ?? {})) lowered[name.toLowerCase()] = value;
      options = { ...options, headers: lowered as ClientOptions['headers'] };
    } else if (ws.listenerCount('redirect') === 0) {
      const origin = redirectOrigins.get(ws)!;
      const sameHost = ipc
        ? origin.ipc && requestOptions.socketPath === origin.hostOrSocketPath
        : !origin.ipc && url.host === origin.hostOrSocketPath;
      if (!sameHost || (origin.secure && !secure)) {
        // Credentials are not sent to another host, nor over plain text after TLS.
        delete headers.authorization;
        delete headers.cookie;
        if (!sameHost) delete headers.host;
        requestOptions.auth = undefined;
      }
    }
    const ownHeaders = options.headers as Record<string, unknown>;
    if (requestOptions.auth && !ownHeaders.authorization) {
      ownHeaders.authorization = `Basic ${Buffer.from(String(requestOptions.auth)).toString('base64')}`;
    }
  }

  const request = (secure ? httpsRequest : httpRequest)(requestOptions);
  ws.request = request;
  if (ws.redirects > 0) ws.emit('redirect', ws.url, request);

  if (options.handshakeTimeout) {
    request.on('timeout', () => abortHandshake(ws, 'Opening handshake has timed out'));
  }
  request.on('error', (error) => {
    if ((request as ClientRequest & { [kAborted]?: boolean })[kAborted] || ws.request !== request) return;
    ws.request = null;
    ws.failHandshake(error);
  });
  request.on('response', (response: IncomingMessage) => {
    const location = response.headers.location;
    const status = response.statusCode ?? 0;
    if (location && options.followRedirects && status >= 300 && status < 400) {
      if (++ws.redirects > (options.maxRedirects ?? 10)) {
        abortHandshake(ws, 'Maximum redirects exceeded');
        return;
      }
      (request as ClientRequest & { [kAborted]?: boolean })[kAborted] = true;
      request.destroy();
      let next: URL;
      try {
        next = new URL(location, address);
      } catch {
        ws.failHandshake(new SyntaxError(`Invalid URL: ${location}`));
        return;
      }
      startClientHandshake(ws, next, protocols, options);
    } else if (!ws.emit('unexpected-response', request, response)) {
      abortHandshake(ws, `Unexpected server response: ${status}`);
    }
  });
  request.on('upgrade', (response: IncomingMessage, socket: Socket, head: Buffer) => {
    ws.emit('upgrade', response);
    // A listener may have closed or terminated the WebSocket.
    if (ws.state !== CONNECTING || ws.request !== request) {
      socket.destroy();
      return;
    }
    ws.request = null;
    const upgrade = response.headers.upgrade;
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      return abortHandshake(ws, 'Invalid Upgrade header', socket);
    }
    if (response.headers['sec-websocket-accept'] !== acceptKeyFor(key)) {
      return abortHandshake(ws, 'Invalid Sec-WebSocket-Accept header', socket);
    }
    const chosen = response.headers['sec-websocket-protocol'];
    let problem: string | undefined;
    if (chosen !== undefined) {
      if (offered.size === 0) problem = 'Server sent a subprotocol but none was requested';
      else if (!offered.has(chosen)) problem = 'Server sent an invalid subprotocol';
    } else if (offered.size > 0) {
      problem = 'Server sent no subprotocol';
    }
    if (problem !== undefined) return abortHandshake(ws, problem, socket);
    const extensions = response.headers['sec-websocket-extensions'];
    let agreement: DeflateAgreement | null = null;
    if (extensions !== undefined) {
      try {
        agreement = acceptAsClient(extensions, deflateConfig);
      } catch {
        return abortHandshake(ws, extensionProblem(extensions, options), socket);
      }
    }
    ws.protocolName = chosen ?? '';
    ws.attachSocket(socket, head, agreement);
    ws.emit('open');
  });

  if (options.finishRequest) options.finishRequest(request, ws);
  else request.end();
}

/** Why a server's `Sec-WebSocket-Extensions` answer is refused, in `ws`'s words. */
function extensionProblem(header: string, options: ClientOptions): string {
  if (options.perMessageDeflate === false) return 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
  const elements = parseExtensions(header);
  if (elements.some((element) => element === null)) return 'Invalid Sec-WebSocket-Extensions header';
  for (const element of elements) {
    if (element!.name !== 'permessage-deflate') return 'Server indicated an extension that was not requested';
  }
  if (elements.length > 1) return 'Server indicated an extension that was not requested';
  const valid = elements.every((element) => element!.params.every((param) => param.name !== 'client_max_window_bits' || param.value === true || /^(8|9|1[0-5])$/.test(param.value)));
  return valid ? 'Server indicated an extension that was not requested' : 'Invalid Sec-WebSocket-Extensions header';
}
