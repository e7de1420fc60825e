import type { Headers } from './handshake.js';

// A strict HTTP/1.1 request-head reader (RFC 9112 sections 2, 3 and 5; field values by
// RFC 9110 section 5.5). It exists so an upgrade listener needs no node:http per connection;
// it is strict because a lenient reader in front of, or behind, another HTTP parser is how
// request smuggling starts: anything two parsers could read differently is refused.

/** An HTTP/1.x request head read from raw bytes. */
export interface RequestHead {
  method: string;
  /** The request-target exactly as sent (visible ASCII). */
  url: string;
  /** e.g. `'1.1'`. */
  httpVersion: string;
  /**
   * Header names lower-case, in an object that inherits nothing (no `Object.prototype`; its
   * prototype is empty), so `__proto__` or `constructor` are ordinary headers. Repeated headers are joined with `, ` (`cookie` with
   * `; `), as node:http does; a repeated `Host` is refused instead.
   */
  headers: Headers;
}

/** The statuses a request head is refused with. */
export type RequestHeadRefusal = 400 | 414 | 431 | 501 | 505;

export type RequestHeadResult =
  | { ok: true; head: RequestHead; /** Bytes the head took, including the blank line. */ length: number }
  | { ok: false; status: RequestHeadRefusal; /** A short explanation, fit for a response body. */ reason: string };

export interface RequestHeadLimits {
  /** Largest request head (request line, header lines, blank line) in bytes: 431 beyond. Default 16 KiB. */
  maxHeadSize?: number;
  /** Longest request-target in bytes: 414 beyond. Default 8 KiB (RFC 9112 asks for at least 8000). */
  maxTargetLength?: number;
  /** Most header lines: 431 beyond. Default 100. */
  maxHeaderCount?: number;
}

/** Default `maxHeadSize`: 16 KiB. */
export const DEFAULT_MAX_HEAD_SIZE = 16 * 1024;
/** Default `maxTargetLength`: 8 KiB. */
export const DEFAULT_MAX_TARGET_LENGTH = 8 * 1024;
/** Default `maxHeaderCount`: 100. */
export const DEFAULT_MAX_HEADER_COUNT = 100;
/** Longer methods than this are answered 501 (RFC 9112 section 3: no such method is implemented). */
export const MAX_METHOD_LENGTH = 32;

// ---- byte classes -------------------------------------------------------------------------------

const TCHAR = 1; // RFC 9110 token characters
const FIELD_VCHAR = 2; // VCHAR or obs-text: what a field value may hold besides SP and HTAB
const TARGET_CHAR = 4; // visible ASCII: what a request-target may hold
const HOST_CHAR = 8; // unreserved, sub-delims and "%": reg-name characters (RFC 3986)
const HEX_DIGIT = 16;
const CLASS = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) CLASS[c] |= FIELD_VCHAR | TARGET_CHAR;
for (let c = 0x80; c <= 0xff; c++) CLASS[c] |= FIELD_VCHAR;
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") CLASS[c.charCodeAt(0)] |= TCHAR;
for (const c of "-._~!$&'()*+,;=%0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") CLASS[c.charCodeAt(0)] |= HOST_CHAR;
for (const c of '0123456789ABCDEFabcdef') CLASS[c.charCodeAt(0)] |= HEX_DIGIT;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
/** `HTTP/` then the version digits: the fixed bytes of the request line's end. */
const VERSION_PREFIX = [0x48, 0x54, 0x54, 0x50, 0x2f];

/**
 * Header objects: their prototype is an empty, frozen object without a prototype, so no name
 * (`__proto__`, `constructor`, `hasOwnProperty`) means anything but a header, and nothing can
 * be added to what every head shares. (V8 keeps objects made this way in its fast property
 * mode; `Object.create(null)` objects start as hash tables, which made parsing a third slower.)
 */
const HeaderFields = function HeaderFields() {} as unknown as new () => Headers;
HeaderFields.prototype = Object.freeze(Object.create(null));

/** An empty header object of the kind the parsers return (no inherited keys). */
export function createHeaderFields(): Headers {
  return new HeaderFields();
}

/** The lower-case forms of header names as browsers and common clients write them. */
const KNOWN_NAMES = new Map<string, string>();
for (const name of [
  'Host', 'Connection', 'Upgrade', 'Origin', 'Pragma', 'Cache-Control', 'User-Agent', 'Accept', 'Accept-Encoding',
  'Accept-Language', 'Cookie', 'Authorization', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Extensions',
  'Sec-WebSocket-Protocol', 'Sec-WebSocket-Accept', 'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Real-IP', 'Referer',
  'Content-Length', 'Transfer-Encoding',
]) {
  const lower = name.toLowerCase();
  KNOWN_NAMES.set(name, lower);
  KNOWN_NAMES.set(lower, lower);
}

/** Whether `text` is a non-empty token (RFC 9110 section 5.6.2). */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff || (CLASS[c]! & TCHAR) === 0) return false;
  }
  return true;
}

/**
 * Whether `text` holds only SP, HTAB and visible ASCII: the bytes a field with an ASCII grammar
 * (every header of the WebSocket handshake) may contain. Control characters and obs-text fail.
 */
export function isAsciiFieldValue(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e || (c < 0x20 && c !== HTAB)) return false;
  }
  return true;
}

/** `text` without the optional whitespace (SP, HTAB only; unlike `trim()`) at its ends. */
export function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isOws(text.charCodeAt(start))) start++;
  while (end > start && isOws(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/**
 * Whether `value` is a valid `Host` field value: `uri-host [ ":" port ]` (RFC 9110 section 7.2,
 * RFC 3986 section 3.2.2), where uri-host is an IP literal in brackets or a reg-name (which
 * covers IPv4 addresses). The empty value the grammar allows passes.
 */
export function isValidHost(value: string): boolean {
  let i = 0;
  const n = value.length;
  if (n > 0 && value.charCodeAt(0) === 0x5b) {
    // "[" IPv6address / IPvFuture "]": hex digits, ":", ".", and IPvFuture's characters.
    const close = value.indexOf(']');
    if (close < 2) return false;
    for (i = 1; i < close; i++) {
      const c = value.charCodeAt(i);
      if (c > 0x7e || (c !== COLON && (CLASS[c]! & HOST_CHAR) === 0) || c === 0x25) return false;
    }
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === COLON) break;
      if (c > 0x7e || (CLASS[c]! & HOST_CHAR) === 0) return false;
      if (c === 0x25) {
        // pct-encoded: "%" HEXDIG HEXDIG
        if (i + 2 >= n || !isHex(value.charCodeAt(i + 1)) || !isHex(value.charCodeAt(i + 2))) return false;
        i += 2;
      }
    }
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== COLON) return false;
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function isHex(c: number): boolean {
  return c <= 0xff && (CLASS[c]! & HEX_DIGIT) !== 0;
}

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

// ---- the scanner --------------------------------------------------------------------------------

// Where the scanner is. It checks every byte once, as it arrives, and refuses at the first byte
// that cannot be part of a valid head, so garbage never waits for a timeout.
const LEADING_LINE = 0; // before the request line: empty lines (CRLF) are skipped (RFC 9112 2.2)
const LEADING_LF = 1;
const METHOD = 2;
const TARGET = 3;
const VERSION = 4; // "HTTP/" DIGIT "." DIGIT CR LF, byte by byte
const LINE_START = 5; // a header line, or the blank line
const NAME = 6;
const VALUE_OWS = 7; // whitespace after the colon
const VALUE = 8;
const VALUE_LF = 9;
const END_LF = 10;
const DONE = 11;

/** Everything the scanner needs to resume at the next byte (all positions are stream offsets). */
class HeadScan {
  phase = LEADING_LINE;
  /** Bytes scanned so far. */
  scanned = 0;
  methodStart = 0;
  methodEnd = 0;
  targetStart = 0;
  targetEnd = 0;
  versionIndex = 0;
  major = 0;
  minor = 0;
  nameStart = 0;
  nameEnd = 0;
  valueStart = 0;
  valueEnd = 0;
  /** Per header line: name start, name end, value start, value end (value without OWS). */
  readonly fields: number[] = [];
  /** The refusal, once there is one (0 while none). */
  status: RequestHeadRefusal | 0 = 0;
  reason = '';
  readonly maxHeadSize: number;
  readonly maxTargetLength: number;
  readonly maxHeaderCount: number;

  constructor(limits: RequestHeadLimits) {
    this.maxHeadSize = limits.maxHeadSize ?? DEFAULT_MAX_HEAD_SIZE;
    this.maxTargetLength = limits.maxTargetLength ?? DEFAULT_MAX_TARGET_LENGTH;
    this.maxHeaderCount = limits.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT;
  }

  private refuse(status: RequestHeadRefusal, reason: string): void {
    this.status = status;
    this.reason = reason;
    this.phase = DONE;
  }

  /**
   * Scan `buffer`, whose first byte is at stream offset `base` (= `scanned`), until the head
   * ends, a byte refuses it, or the buffer ends. Leaves `phase` DONE with `status` 0 when the
   * head is complete (`scanned` is then its length).
   */
  scan(buffer: Uint8Array, base: number): void {
    // Never look past the size limit: a byte there means the head is too large.
    const room = this.maxHeadSize - base;
    const end = Math.min(buffer.length, room);
    let i = this.scanned - base;
    let phase = this.phase;
    while (i < end && phase !== DONE) {
      const c = buffer[i]!;
      switch (phase) {
        case LEADING_LINE:
          if (c === CR) {
            phase = LEADING_LF;
            i++;
          } else if ((CLASS[c]! & TCHAR) !== 0) {
            this.methodStart = base + i;
            phase = METHOD;
          } else {
            this.refuse(400, c === LF ? 'bare LF in the request line' : 'malformed request line');
            phase = DONE;
          }
          break;
        case LEADING_LF:
          if (c === LF) {
            phase = LEADING_LINE;
            i++;
          } else {
            this.refuse(400, 'bare CR before the request line');
            phase = DONE;
          }
          break;
        case METHOD: {
          while (i < end && (CLASS[buffer[i]!]! & TCHAR) !== 0) i++;
          if (base + i - this.methodStart > MAX_METHOD_LENGTH) {
            this.refuse(501, 'method not implemented');
            phase = DONE;
          } else if (i < end) {
            if (buffer[i] === SP) {
              this.methodEnd = base + i;
              this.targetStart = base + i + 1;
              phase = TARGET;
              i++;
            } else {
              this.refuse(400, 'malformed request line (method)');
              phase = DONE;
            }
          }
          break;
        }
        case TARGET: {
          const targetStart = this.targetStart - base;
          const stop = Math.min(end, targetStart + this.maxTargetLength);
          while (i < stop && (CLASS[buffer[i]!]! & TARGET_CHAR) !== 0) i++;
          if (i < end) {
            const d = buffer[i]!;
            if (d === SP && i > targetStart) {
              this.targetEnd = base + i;
              this.versionIndex = 0;
              phase = VERSION;
              i++;
            } else {
              // A target character here means the loop stopped at the length limit.
              if ((CLASS[d]! & TARGET_CHAR) !== 0) this.refuse(414, 'request target too long');
              else this.refuse(400, d === LF ? 'bare LF in the request line' : 'malformed request line (request target)');
              phase = DONE;
            }
          }
          break;
        }
        case VERSION: {
          const at = this.versionIndex;
          let good: boolean;
          if (at < 5) good = c === VERSION_PREFIX[at];
          else if (at === 5 || at === 7) {
            good = c >= 0x30 && c <= 0x39;
            if (at === 5) this.major = c - 0x30;
            else this.minor = c - 0x30;
          } else if (at === 6) good = c === 0x2e;
          else if (at === 8) good = c === CR;
          else good = c === LF;
          if (!good) {
            this.refuse(400, c === LF ? 'bare LF in the request line' : 'malformed request line (HTTP version)');
            phase = DONE;
          } else if (at === 9) {
            if (this.major !== 1) {
              this.refuse(505, 'HTTP version not supported (this server speaks HTTP/1.1)');
              phase = DONE;
            } else phase = LINE_START;
          } else this.versionIndex = at + 1;
          i++;
          break;
        }
        case LINE_START:
          if ((CLASS[c]! & TCHAR) !== 0) {
            if (this.fields.length >= this.maxHeaderCount * 4) {
              this.refuse(431, 'too many headers');
              phase = DONE;
            } else {
              this.nameStart = base + i;
              phase = NAME;
            }
          } else if (c === CR) {
            phase = END_LF;
            i++;
          } else {
            this.refuse(400, c === SP || c === HTAB
              ? (this.fields.length === 0 ? 'whitespace before the first header' : 'obsolete line folding is not accepted')
              : c === LF ? 'bare LF in the request head' : c === COLON ? 'empty header name' : 'malformed header name');
            phase = DONE;
          }
          break;
        case NAME: {
          while (i < end && (CLASS[buffer[i]!]! & TCHAR) !== 0) i++;
          if (i < end) {
            const d = buffer[i]!;
            if (d === COLON) {
              this.nameEnd = base + i;
              phase = VALUE_OWS;
              i++;
            } else {
              this.refuse(400, d === SP || d === HTAB
                ? 'whitespace between header name and colon'
                : d === CR || d === LF ? 'header line without a colon' : 'malformed header name');
              phase = DONE;
            }
          }
          break;
        }
        case VALUE_OWS:
          if (c === SP || c === HTAB) i++;
          else if ((CLASS[c]! & FIELD_VCHAR) !== 0) {
            this.valueStart = base + i;
            phase = VALUE;
          } else if (c === CR) {
            this.valueStart = this.valueEnd = base + i;
            phase = VALUE_LF;
            i++;
          } else {
            this.refuse(400, c === LF ? 'bare LF in the request head' : 'control character in a header value');
            phase = DONE;
          }
          break;
        case VALUE: {
          // Visible characters move the value's end; SP and HTAB may be trailing whitespace.
          let last = -1;
          while (i < end) {
            const d = buffer[i]!;
            if ((CLASS[d]! & FIELD_VCHAR) !== 0) last = ++i;
            else if (d === SP || d === HTAB) i++;
            else break;
          }
          if (last >= 0) this.valueEnd = base + last;
          if (i < end) {
            if (buffer[i] === CR) {
              phase = VALUE_LF;
              i++;
            } else {
              this.refuse(400, buffer[i] === LF ? 'bare LF in the request head' : 'control character in a header value');
              phase = DONE;
            }
          }
          break;
        }
        case VALUE_LF:
          if (c === LF) {
            this.fields.push(this.nameStart, this.nameEnd, this.valueStart, this.valueEnd);
            phase = LINE_START;
            i++;
          } else {
            this.refuse(400, 'bare CR in the request head');
            phase = DONE;
          }
          break;
        case END_LF:
          if (c === LF) {
            phase = DONE;
            i++;
          } else {
            this.refuse(400, 'bare CR in the request head');
            phase = DONE;
          }
          break;
      }
    }
    this.scanned = base + i;
    if (phase !== DONE && end === room && buffer.length > room) {
      this.refuse(phase === TARGET ? 414 : 431, phase === TARGET ? 'request target too long' : 'request head too large');
      return;
    }
    this.phase = phase;
  }

  /** The head, from `bytes` (which start at stream offset 0), once the scan is DONE without refusal. */
  build(bytes: Buffer): RequestHeadResult {
    // One decode of the whole head, then substrings: far cheaper than a decode per field.
    const text = bytes.toString('latin1', 0, this.scanned);
    const headers = new HeaderFields();
    const fields = this.fields;
    let host = false;
    for (let f = 0; f < fields.length; f += 4) {
      const written = text.slice(fields[f], fields[f + 1]);
      const name = KNOWN_NAMES.get(written) ?? written.toLowerCase();
      const value = text.slice(fields[f + 2], fields[f + 3]);
      const previous = headers[name];
      if (previous === undefined) {
        headers[name] = value;
        if (name === 'host') host = true;
      } else if (name === 'host') {
        return refused(400, 'duplicate Host header');
      } else {
        headers[name] = `${previous as string}${name === 'cookie' ? '; ' : ', '}${value}`;
      }
    }
    const minor = this.minor;
    if (host) {
      if (!isValidHost(headers['host'] as string)) return refused(400, 'invalid Host header');
    } else if (minor >= 1) {
      return refused(400, 'missing Host header'); // RFC 9112 section 3.2: HTTP/1.1 needs one
    }
    const framing = checkFraming(headers, minor);
    if (framing !== null) return framing;
    return {
      ok: true,
      head: {
        method: text.slice(this.methodStart, this.methodEnd),
        url: text.slice(this.targetStart, this.targetEnd),
        httpVersion: minor === 1 ? '1.1' : `1.${minor}`,
        headers,
      },
      length: this.scanned,
    };
  }

  result(bytes: Buffer): RequestHeadResult | null {
    if (this.phase !== DONE) return null;
    return this.status === 0 ? this.build(bytes) : { ok: false, status: this.status, reason: this.reason };
  }
}

function refused(status: RequestHeadRefusal, reason: string): RequestHeadResult {
  return { ok: false, status, reason };
}

/**
 * RFC 9112 section 6: a body's framing must be unambiguous. An invalid or repeated
 * Content-Length, Transfer-Encoding together with Content-Length or in an HTTP/1.0 request,
 * and a Transfer-Encoding whose last coding is not chunked are refused (400).
 */
function checkFraming(headers: Headers, minor: number): RequestHeadResult | null {
  const length = headers['content-length'] as string | undefined;
  const coding = headers['transfer-encoding'] as string | undefined;
  if (length !== undefined && !isDigits(length)) return refused(400, 'invalid Content-Length');
  if (coding === undefined) return null;
  if (length !== undefined) return refused(400, 'both Transfer-Encoding and Content-Length');
  if (minor === 0) return refused(400, 'Transfer-Encoding in an HTTP/1.0 request');
  const last = trimOws(coding.slice(coding.lastIndexOf(',') + 1)).toLowerCase();
  if (last !== 'chunked') return refused(400, 'Transfer-Encoding must end with chunked');
  return null;
}

/**
 * Parse an HTTP/1.x request head from the start of `bytes`. Returns `null` while the head is
 * incomplete and nothing in it is wrong yet, the parsed head and its length, or the status to
 * refuse it with: 400 malformed (RFC 9112 and RFC 9110 field syntax, a missing or repeated
 * Host, ambiguous body framing), 414 request target over `maxTargetLength`, 431 head over
 * `maxHeadSize` or more than `maxHeaderCount` headers, 501 a method over 32 bytes, 505 an HTTP
 * major version other than 1. A refusal comes as soon as the first byte that causes it has
 * arrived. `limits` may be a number, the `maxHeadSize`. Never throws.
 *
 * Strictness, where RFC 9112 allows a choice: lines end with CRLF only (a bare LF or a bare CR
 * is refused), request-line parts are separated by exactly one SP, obsolete line folding is
 * refused, empty lines before the request line are skipped. Field values may hold obs-text
 * (bytes 0x80-0xff, kept as latin1 characters, never stripped as whitespace) but no control
 * character; only SP and HTAB around a value are removed.
 */
export function parseRequestHead(bytes: Buffer, limits: RequestHeadLimits | number = {}): RequestHeadResult | null {
  const scan = new HeadScan(typeof limits === 'number' ? { maxHeadSize: limits } : limits);
  scan.scan(bytes, 0);
  return scan.result(bytes);
}

/**
 * The same parser, fed chunk by chunk: each byte is looked at once however the head is split
 * (`parseRequestHead` on a growing buffer looks at the start again on every call). `push`
 * returns `null` until a result, then that result on every later call; `length` in it counts
 * from the first byte pushed. The parser holds the pushed chunks (at most `maxHeadSize` bytes
 * and the last chunk) until then.
 */
export class RequestHeadParser {
  private readonly state: HeadScan;
  private readonly chunks: Buffer[] = [];
  private received = 0;
  private outcome: RequestHeadResult | null = null;

  constructor(limits: RequestHeadLimits = {}) {
    this.state = new HeadScan(limits);
  }

  push(chunk: Buffer): RequestHeadResult | null {
    if (this.outcome !== null) return this.outcome;
    const base = this.received;
    this.chunks.push(chunk);
    this.received += chunk.length;
    this.state.scan(chunk, base);
    if (this.state.phase !== DONE) return null;
    const bytes = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.received);
    this.chunks.length = 0;
    this.outcome = this.state.result(bytes);
    return this.outcome;
  }
}
