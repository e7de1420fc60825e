import type { Headers } from './handshake.js';

/** An HTTP/1.x request head read from raw bytes (header names lower-case). */
export interface RequestHead {
  method: string;
  url: string;
  /** e.g. `'1.1'`. */
  httpVersion: string;
  headers: Headers;
}

export type RequestHeadResult =
  | { ok: true; head: RequestHead; /** Bytes the head took, including the blank line. */ length: number }
  | { ok: false; status: 400 | 431; reason: string };

/** Largest request head accepted before the end of headers is found. Default 16 KiB. */
export const DEFAULT_MAX_HEAD_SIZE = 16 * 1024;
const MAX_HEADERS = 100;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d)\.(\d)$/;
// Field values: visible ASCII, obs-text, spaces and tabs; no control characters.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Parse an HTTP/1.x request head from the start of `bytes`. Returns `null` while the blank
 * line that ends the head has not arrived (and the head is within `maxSize`), the parsed head
 * and its length, or the status to refuse it with (400 malformed, 431 too large).
 * Duplicate headers are joined with `, ` as list headers are.
 */
export function parseRequestHead(bytes: Buffer, maxSize = DEFAULT_MAX_HEAD_SIZE): RequestHeadResult | null {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) {
    return bytes.length > maxSize ? { ok: false, status: 431, reason: 'request head too large' } : null;
  }
  if (end + 4 > maxSize) return { ok: false, status: 431, reason: 'request head too large' };
  const lines = bytes.toString('latin1', 0, end).split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0]!);
  if (requestLine === null) return { ok: false, status: 400, reason: 'malformed request line' };
  if (lines.length - 1 > MAX_HEADERS) return { ok: false, status: 431, reason: 'too many headers' };
  const headers: Headers = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return { ok: false, status: 400, reason: 'malformed header line' };
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return { ok: false, status: 400, reason: 'malformed header name' };
    const value = line.slice(colon + 1).trim();
    if (!FIELD_VALUE.test(value)) return { ok: false, status: 400, reason: 'malformed header value' };
    const key = name.toLowerCase();
    const previous = headers[key];
    headers[key] = previous === undefined ? value : `${previous as string}, ${value}`;
  }
  return {
    ok: true,
    head: { method: requestLine[1]!, url: requestLine[2]!, httpVersion: `${requestLine[3]}.${requestLine[4]}`, headers },
    length: end + 4,
  };
}
