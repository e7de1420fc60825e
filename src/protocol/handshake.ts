import { createHash, randomBytes } from 'node:crypto';
import { WebSocketError } from './errors.js';
import { isAsciiFieldValue, isToken, isValidHost, trimOws } from './http1.js';
import { statusText } from '../util/http-status.js';

/** RFC 6455 section 1.3: appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Base64 of exactly 16 bytes: 22 significant characters, then `==`. */
const KEY_PATTERN = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

export type HeaderValue = string | string[] | undefined;
export type Headers = Record<string, HeaderValue>;

/** The parts of an HTTP upgrade request the handshake needs (header names lower-case). */
export interface UpgradeRequestHead {
  method: string;
  /** e.g. `'1.1'`. */
  httpVersion: string;
  headers: Headers;
  /**
   * Optional: the header lines as received, names and values alternating (node:http's
   * `request.rawHeaders`). node:http keeps only the first of several `Host` lines in
   * `headers`; with these, a repeated `Host`, `Sec-WebSocket-Key` or `Sec-WebSocket-Version`
   * is refused however the headers object merged it.
   */
  rawHeaders?: readonly string[];
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

/** Split a comma-separated header into tokens without surrounding SP/HTAB, dropping empty ones. */
export function headerTokens(value: HeaderValue): string[] {
  return headerText(value)
    .split(',')
    .map((token) => trimOws(token))
    .filter((token) => token.length > 0);
}

function hasToken(value: HeaderValue, wanted: string): boolean {
  return headerTokens(value).some((token) => token.toLowerCase() === wanted);
}

function reject(status: number, body: string, headers: Record<string, string> = {}): HandshakeRejected {
  return { ok: false, status, headers, body };
}

/** The request headers the handshake reads (all with ASCII grammars), as messages write their names. */
const HANDSHAKE_HEADERS: Record<string, string> = {
  host: 'Host',
  upgrade: 'Upgrade',
  connection: 'Connection',
  'sec-websocket-key': 'Sec-WebSocket-Key',
  'sec-websocket-version': 'Sec-WebSocket-Version',
  'sec-websocket-protocol': 'Sec-WebSocket-Protocol',
  'sec-websocket-extensions': 'Sec-WebSocket-Extensions',
  'content-length': 'Content-Length',
  'transfer-encoding': 'Transfer-Encoding',
};
const HANDSHAKE_HEADER_NAMES = Object.keys(HANDSHAKE_HEADERS);
const KEY_REFUSAL = 'missing, repeated or invalid Sec-WebSocket-Key (expected one base64 value of 16 bytes)';

/** Whether every value of a header is a string of ASCII field characters (see `isAsciiFieldValue`). */
function isAsciiHeader(value: HeaderValue): boolean {
  if (typeof value === 'string') return isAsciiFieldValue(value);
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string' || !isAsciiFieldValue(item)) return false;
  return true;
}

/**
 * The name of a header that must appear once but appears more often in `rawHeaders`: `Host`
 * (RFC 9112 section 3.2), `Sec-WebSocket-Key` and `Sec-WebSocket-Version` (RFC 6455 sections
 * 11.3.1 and 11.3.5). Undefined when none is, or without raw headers.
 */
function repeatedSingleHeader(rawHeaders: readonly string[] | undefined): string | undefined {
  if (rawHeaders === undefined) return undefined;
  let host = 0;
  let key = 0;
  let version = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 4 && name.length !== 17 && name.length !== 21) continue;
    const lower = name.toLowerCase();
    if (lower === 'host') host++;
    else if (lower === 'sec-websocket-key') key++;
    else if (lower === 'sec-websocket-version') version++;
  }
  return host > 1 ? 'Host' : key > 1 ? 'Sec-WebSocket-Key' : version > 1 ? 'Sec-WebSocket-Version' : undefined;
}

/**
 * The HTTP version check of the handshake: HTTP/1.1 (or a later 1.x, read as 1.1 by RFC 9110
 * section 2.5). Older versions get 400, other major versions 505.
 */
function checkHttpVersion(version: string): HandshakeRejected | null {
  if (version === '1.1') return null;
  const major = version.charCodeAt(0) - 0x30;
  const minor = version.charCodeAt(2) - 0x30;
  if (version.length !== 3 || version[1] !== '.' || !(major >= 0 && major <= 9) || !(minor >= 0 && minor <= 9)) {
    return reject(400, `invalid HTTP version ${JSON.stringify(version)}; a WebSocket handshake needs HTTP/1.1`);
  }
  if (major === 1 && minor >= 1) return null;
  if (major <= 1) return reject(400, 'WebSocket handshake needs HTTP/1.1 or later');
  return reject(505, `HTTP/${version} is not supported; a WebSocket handshake needs HTTP/1.1`);
}

/**
 * Check an opening handshake (RFC 6455 section 4.2.1). On success gives the accept value and
 * the offered subprotocols; otherwise the HTTP status, headers and a body that say what is
 * wrong: 405 a method other than GET; 505 an HTTP major version other than 1; 426 a
 * `Sec-WebSocket-Version` other than 13; 400 everything else: HTTP older than 1.1, a missing,
 * repeated or invalid `Host`, a body (`Transfer-Encoding`, or `Content-Length` other than 0,
 * which a proxy would read differently from the frames that follow), missing `Upgrade:
 * websocket` or `Connection: Upgrade`, a repeated `Sec-WebSocket-Version`, a missing,
 * repeated or malformed `Sec-WebSocket-Key`, a `Sec-WebSocket-Protocol` that is not a list of
 * tokens, or any of the handshake's headers holding a control character or a non-ASCII byte.
 */
export function validateUpgradeRequest(request: UpgradeRequestHead): HandshakeAccepted | HandshakeRejected {
  if (request.method !== 'GET') return reject(405, 'WebSocket handshake must use GET', { Allow: 'GET' });
  const versionRefusal = checkHttpVersion(request.httpVersion);
  if (versionRefusal !== null) return versionRefusal;
  const headers = request.headers;
  for (const name of HANDSHAKE_HEADER_NAMES) {
    const value = headers[name];
    if (value !== undefined && !isAsciiHeader(value)) return reject(400, `invalid characters in the ${HANDSHAKE_HEADERS[name]} header`);
  }
  const repeated = repeatedSingleHeader(request.rawHeaders);
  if (repeated === 'Sec-WebSocket-Key') return reject(400, KEY_REFUSAL);
  if (repeated !== undefined) return reject(400, `repeated ${repeated} header`);

  const host = headers['host'];
  if (Array.isArray(host)) return reject(400, 'repeated Host header');
  const hostValue = trimOws(host ?? '');
  if (hostValue === '') return reject(400, 'missing Host header');
  if (!isValidHost(hostValue)) return reject(400, 'invalid Host header');
  const contentLength = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined || (contentLength !== undefined && trimOws(headerText(contentLength)) !== '0')) {
    return reject(400, 'a WebSocket handshake request must not have a body (Transfer-Encoding or Content-Length)');
  }
  if (!hasToken(headers['upgrade'], 'websocket')) return reject(400, 'missing or invalid Upgrade header (expected "websocket")');
  if (!hasToken(headers['connection'], 'upgrade')) return reject(400, 'missing or invalid Connection header (expected "Upgrade")');

  const versionHeader = headers['sec-websocket-version'];
  const version = trimOws(headerText(versionHeader));
  if (Array.isArray(versionHeader) || version.includes(',')) return reject(400, 'repeated Sec-WebSocket-Version header (expected one value, 13)');
  if (version !== '13') {
    return reject(426, `unsupported Sec-WebSocket-Version ${JSON.stringify(version)} (supported: 13)`, { 'Sec-WebSocket-Version': '13' });
  }
  const keyHeader = headers['sec-websocket-key'];
  const key = trimOws(headerText(keyHeader));
  if (Array.isArray(keyHeader) || !KEY_PATTERN.test(key)) return reject(400, KEY_REFUSAL);
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

/** A complete HTTP response refusing the upgrade; the connection is closed after it. */
export function buildRejectResponse(status: number, body = '', headers: Record<string, string> = {}): string {
  const reason = statusText(status);
  const bodyBytes = Buffer.byteLength(body);
  let response = `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n`;
  const names = Object.keys(headers).map((name) => name.toLowerCase());
  if (!names.includes('content-type')) response += 'Content-Type: text/plain; charset=utf-8\r\n';
  for (const [name, value] of Object.entries(headers)) response += `${name}: ${value}\r\n`;
  return response + `Content-Length: ${bodyBytes}\r\n\r\n${body}`;
}

/** Whether `name` may be used as a subprotocol name (an HTTP token). */
export function isValidProtocolName(name: string): boolean {
  return isToken(name);
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
 * `extensionsChecked`: the caller validated `Sec-WebSocket-Extensions` against its offer (see
 * `acceptAsClient`); otherwise any extension in the answer fails, since none was offered.
 */
export function validateServerResponse(
  statusCode: number,
  headers: Headers,
  expectedAccept: string,
  offeredProtocols: readonly string[],
  extensionsChecked = false,
): string | undefined {
  const fail = (why: string): never => {
    throw new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake failed: ${why}`);
  };
  if (statusCode !== 101) fail(`server answered with status ${statusCode}`);
  if (!hasToken(headers['upgrade'], 'websocket')) fail('missing Upgrade: websocket');
  if (!hasToken(headers['connection'], 'upgrade')) fail('missing Connection: Upgrade');
  if (trimOws(headerText(headers['sec-websocket-accept'])) !== expectedAccept) fail('wrong Sec-WebSocket-Accept');
  if (!extensionsChecked && trimOws(headerText(headers['sec-websocket-extensions'])) !== '') fail('server chose an extension that was not offered');
  const chosen = trimOws(headerText(headers['sec-websocket-protocol']));
  if (chosen === '') return undefined;
  if (!offeredProtocols.includes(chosen)) fail(`server chose subprotocol ${JSON.stringify(chosen)} that was not offered`);
  return chosen;
}
