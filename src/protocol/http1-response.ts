import type { Headers } from './handshake.js';
import { createHeaderFields, isToken, trimOws } from './http1.js';

// The client's side of the handshake: an HTTP/1.1 response head (RFC 9112 sections 4 and 5)
// and, when the server refuses, its body (section 6), read from raw bytes. The client reads
// responses itself rather than through node:http because the whole exchange is one request and
// one response head; node:http's client costs more per connection than the rest of a
// WebSocket handshake.

/** An HTTP/1.x response head. */
export interface ResponseHead {
  status: number;
  statusText: string;
  /** e.g. `'1.1'`. */
  httpVersion: string;
  /**
   * Names lower-case, in an object that inherits nothing; repeated fields joined with `, `
   * except `set-cookie`, kept as an array, as node:http does.
   */
  headers: Headers;
}

export type ResponseHeadResult =
  | { ok: true; head: ResponseHead; /** Bytes the head took, including the blank line. */ length: number }
  | { ok: false; reason: string };

/** Default largest response head the client reads: 16 KiB. */
export const DEFAULT_MAX_RESPONSE_HEAD = 16 * 1024;

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Parse a response head from the start of `bytes`: `null` while it is incomplete (and under
 * `maxHeadSize`), else the head or why it is malformed. Lines end with CRLF; obsolete line
 * folding, control characters in values, a bad status line and a head over `maxHeadSize` are
 * refused. Never throws.
 */
export function parseResponseHead(bytes: Buffer, maxHeadSize = DEFAULT_MAX_RESPONSE_HEAD): ResponseHeadResult | null {
  const end = bytes.indexOf(CRLFCRLF);
  if (end < 0) return bytes.length >= maxHeadSize ? { ok: false, reason: `response head over ${maxHeadSize} bytes` } : null;
  if (end + 4 > maxHeadSize) return { ok: false, reason: `response head over ${maxHeadSize} bytes` };
  const text = bytes.toString('latin1', 0, end);
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(lines[0]!);
  if (status === null) return { ok: false, reason: 'malformed status line' };
  const headers = createHeaderFields();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!isToken(name)) return { ok: false, reason: `malformed header line ${JSON.stringify(line.slice(0, 40))}` };
    const value = trimOws(line.slice(colon + 1));
    if (!isFieldValue(value)) return { ok: false, reason: `control character in header ${name}` };
    const key = name.toLowerCase();
    const previous = headers[key];
    if (previous === undefined) headers[key] = key === 'set-cookie' ? [value] : value;
    else if (Array.isArray(previous)) previous.push(value);
    else headers[key] = `${previous}, ${value}`;
  }
  return {
    ok: true,
    head: { status: Number(status[2]), statusText: status[3] ?? '', httpVersion: `1.${status[1]}`, headers },
    length: end + 4,
  };
}

/** Field-value bytes (RFC 9110 section 5.5): visible ASCII, obs-text, SP and HTAB. */
function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/**
 * The body of a refusal, up to `limit` bytes, framed as RFC 9112 section 6.3 says: by
 * `Content-Length`, by chunked transfer coding, or by the end of the connection. `push` returns
 * true once the body is complete (or `limit` bytes were kept); `end()` is the connection's end.
 */
export class ResponseBodyReader {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private remaining: number;
  private readonly chunked: boolean;
  /** Chunked decoding: bytes of a chunk still to come, or -1 while reading a size line. */
  private chunkLeft = -1;
  private line = '';
  private trailer = false;
  private done = false;

  constructor(status: number, headers: Headers, private readonly limit: number) {
    const coding = typeof headers['transfer-encoding'] === 'string' ? headers['transfer-encoding'].toLowerCase() : '';
    const length = typeof headers['content-length'] === 'string' ? Number(headers['content-length']) : NaN;
    this.chunked = /(^|,)\s*chunked\s*$/.test(coding);
    // 1xx, 204 and 304 have no body (section 6.3 rule 1).
    if ((status >= 100 && status < 200) || status === 204 || status === 304) this.remaining = 0;
    else if (this.chunked) this.remaining = Infinity;
    else this.remaining = Number.isSafeInteger(length) && length >= 0 ? length : Infinity;
    if (this.remaining === 0) this.done = true;
  }

  get complete(): boolean {
    return this.done;
  }

  get text(): string {
    return Buffer.concat(this.chunks, this.kept).toString('utf8');
  }

  push(data: Buffer): boolean {
    if (this.done) return true;
    if (!this.chunked) {
      const take = data.subarray(0, Math.min(data.length, this.remaining));
      this.remaining -= take.length;
      this.keep(take);
      if (this.remaining === 0) this.done = true;
      return this.done;
    }
    let i = 0;
    while (i < data.length && !this.done) {
      if (this.chunkLeft > 0) {
        const take = data.subarray(i, i + Math.min(this.chunkLeft, data.length - i));
        this.keep(take);
        this.chunkLeft -= take.length;
        i += take.length;
        if (this.chunkLeft === 0) this.chunkLeft = -2; // the CRLF after the chunk's data
        continue;
      }
      const lf = data.indexOf(0x0a, i);
      const piece = data.toString('latin1', i, lf < 0 ? data.length : lf);
      i = lf < 0 ? data.length : lf + 1;
      this.line += piece;
      if (this.line.length > 4096) {
        this.done = true; // a size line that never ends: keep what came
        break;
      }
      if (lf < 0) break;
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.chunkLeft === -2) {
        this.chunkLeft = -1;
        continue;
      }
      if (this.trailer) {
        if (line === '') this.done = true;
        continue;
      }
      const size = parseInt(line.split(';', 1)[0]!.trim(), 16);
      if (!Number.isSafeInteger(size) || size < 0) this.done = true;
      else if (size === 0) this.trailer = true;
      else this.chunkLeft = size;
    }
    if (this.kept >= this.limit) this.done = true;
    return this.done;
  }

  end(): void {
    this.done = true;
  }

  private keep(bytes: Buffer): void {
    const room = this.limit - this.kept;
    if (room <= 0 || bytes.length === 0) return;
    const part = bytes.length > room ? bytes.subarray(0, room) : bytes;
    this.chunks.push(Buffer.from(part));
    this.kept += part.length;
    if (this.kept >= this.limit) this.done = true;
  }
}
