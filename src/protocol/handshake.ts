import { createHash, randomBytes } from 'node:crypto';
import { WebSocketError } from './errors.js';

/** RFC 6455 section 1.3: appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Base64 of exactly 16 bytes: 22 significant characters, then `==`. */
const KEY_PATTERN = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
/** RFC 7230 token characters, for subprotocol names. */
const TOKEN_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export type HeaderValue = string | string[] | undefined;
export type Headers = Record<string, HeaderValue>;

/** The parts of an HTTP upgrade request the handshake needs (header names lower-case). */
export interface UpgradeRequestHead {
  method: string;
  /** e.g. `'1.1'`. */
  httpVersion: string;
  headers: Headers;
}

export interface HandshakeAccepted {
  ok: true;
  /** The value of `Sec-WebSocket-Accept` to send. */
  accept: string;
  /** The subprotocols the client offered, in its order of preference. */
  protocols: string[];
}

export interface HandshakeRejected {
  ok: false;
  status: number;
  headers: Record<string, string>;
  /** A short plain-text explanation, sent as the body. */
  body: string;
}

/** The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`. */
export function acceptKeyFor(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

function headerText(value: HeaderValue): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** Split a comma-separated header into trimmed, non-empty tokens. */
export function headerTokens(value: HeaderValue): string[] {
  return headerText(value)
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token.length > 0);
}

function hasToken(value: HeaderValue, wanted: string): boolean {
  return headerTokens(value).some((token) => token.toLowerCase() === wanted);
}

function reject(status: number, body: string, headers: Record<string, string> = {}): HandshakeRejected {
  return { ok: false, status, headers, body };
}

/**
 * Check an opening handshake (RFC 6455 section 4.2.1). On success gives the accept value and
 * the offered subprotocols; otherwise the HTTP status (400, 405 or 426), headers and a body
 * that say what is wrong.
 */
export function validateUpgradeRequest(request: UpgradeRequestHead): HandshakeAccepted | HandshakeRejected {
  if (request.method !== 'GET') return reject(405, 'WebSocket handshake must use GET', { Allow: 'GET' });
  const [major = 0, minor = 0] = request.httpVersion.split('.').map(Number);
  if (major < 1 || (major === 1 && minor < 1)) return reject(400, 'WebSocket handshake needs HTTP/1.1 or later');
  const headers = request.headers;
  if (headerText(headers['host']).trim() === '') return reject(400, 'missing Host header');
  if (!hasToken(headers['upgrade'], 'websocket')) return reject(400, 'missing or invalid Upgrade header (expected "websocket")');
  if (!hasToken(headers['connection'], 'upgrade')) return reject(400, 'missing or invalid Connection header (expected "Upgrade")');
  const version = headerText(headers['sec-websocket-version']).trim();
  if (version !== '13') {
    return reject(426, `unsupported Sec-WebSocket-Version ${JSON.stringify(version)} (supported: 13)`, { 'Sec-WebSocket-Version': '13' });
  }
  const key = headerText(headers['sec-websocket-key']).trim();
  if (!KEY_PATTERN.test(key)) return reject(400, 'missing or invalid Sec-WebSocket-Key (expected base64 of 16 bytes)');
  const protocols = headerTokens(headers['sec-websocket-protocol']);
  if (!protocols.every(isValidProtocolName)) return reject(400, 'invalid Sec-WebSocket-Protocol (expected a comma-separated list of tokens)');
  return { ok: true, accept: acceptKeyFor(key), protocols };
}

/** The `101 Switching Protocols` response, ready to write to the socket. */
export function buildAcceptResponse(accept: string, protocol?: string, extraHeaders: Record<string, string> = {}): string {
  let response =
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\n`;
  if (protocol) response += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  for (const [name, value] of Object.entries(extraHeaders)) response += `${name}: ${value}\r\n`;
  return response + '\r\n';
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** A complete HTTP response refusing the upgrade; the connection is closed after it. */
export function buildRejectResponse(status: number, body = '', headers: Record<string, string> = {}): string {
  const reason = STATUS_TEXT[status] ?? 'Error';
  const bodyBytes = Buffer.byteLength(body);
  let response = `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n`;
  const names = Object.keys(headers).map((name) => name.toLowerCase());
  if (!names.includes('content-type')) response += 'Content-Type: text/plain; charset=utf-8\r\n';
  for (const [name, value] of Object.entries(headers)) response += `${name}: ${value}\r\n`;
  return response + `Content-Length: ${bodyBytes}\r\n\r\n${body}`;
}

/** Whether `name` may be used as a subprotocol name (an HTTP token). */
export function isValidProtocolName(name: string): boolean {
  return TOKEN_PATTERN.test(name);
}

/** A fresh client key and the accept value the server must answer with. */
export function createClientKey(): { key: string; expectedAccept: string } {
  const key = randomBytes(16).toString('base64');
  return { key, expectedAccept: acceptKeyFor(key) };
}

/** The request headers of a client's opening handshake. */
export function clientHandshakeHeaders(key: string, protocols: readonly string[]): Record<string, string> {
  for (const protocol of protocols) {
    if (!isValidProtocolName(protocol)) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `invalid subprotocol name ${JSON.stringify(protocol)}`);
  }
  if (new Set(protocols).size !== protocols.length) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'duplicate subprotocol names');
  const headers: Record<string, string> = {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  if (protocols.length > 0) headers['Sec-WebSocket-Protocol'] = protocols.join(', ');
  return headers;
}

/**
 * Check the server's answer to a client handshake (RFC 6455 section 4.1). Returns the chosen
 * subprotocol (or undefined); throws `WS_ERR_HANDSHAKE` when the response is not acceptable.
 */
export function validateServerResponse(
  statusCode: number,
  headers: Headers,
  expectedAccept: string,
  offeredProtocols: readonly string[],
): string | undefined {
  const fail = (why: string): never => {
    throw new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake failed: ${why}`);
  };
  if (statusCode !== 101) fail(`server answered with status ${statusCode}`);
  if (!hasToken(headers['upgrade'], 'websocket')) fail('missing Upgrade: websocket');
  if (!hasToken(headers['connection'], 'upgrade')) fail('missing Connection: Upgrade');
  if (headerText(headers['sec-websocket-accept']).trim() !== expectedAccept) fail('wrong Sec-WebSocket-Accept');
  if (headerText(headers['sec-websocket-extensions']).trim() !== '') fail('server chose an extension that was not offered');
  const chosen = headerText(headers['sec-websocket-protocol']).trim();
  if (chosen === '') return undefined;
  if (!offeredProtocols.includes(chosen)) fail(`server chose subprotocol ${JSON.stringify(chosen)} that was not offered`);
  return chosen;
}
