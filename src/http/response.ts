import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { HttpAppError } from './errors.js';
import { statusText } from '../util/http-status.js';

/** What an `HttpResponse` body may be. */
export type HttpBody = string | Uint8Array | Readable | undefined;

/**
 * What a route handler may return:
 *
 * - a `string`: answered `200` with `Content-Type: text/plain; charset=utf-8`;
 * - a `Buffer` / `Uint8Array`: answered `200` with `Content-Type: application/octet-stream`;
 * - a WHATWG `Response` (global in Node 20): its status, headers and body are sent as they are,
 *   the body streamed;
 * - an `HttpResponse`: status, headers and a string, bytes or `Readable` body.
 */
export type HttpResponseLike = HttpResponse | Response | string | Uint8Array;

/**
 * A small response value: a status, headers and a body. Build one with a static helper and
 * chain `withHeader` / `withStatus`:
 *
 * ```ts
 * HttpResponse.json({ ok: true }).withHeader('Cache-Control', 'no-store');
 * ```
 *
 * When no `Content-Type` is set, a string body is sent as `text/plain; charset=utf-8` and a
 * bytes body as `application/octet-stream`. `Content-Length` is computed for string and bytes
 * bodies; a `Readable` body is streamed (chunked unless a `Content-Length` header is given).
 */
export class HttpResponse {
  /** The status code. Default: 200. */
  status: number;
  /** The headers to send. Names are case-insensitive when sent; arrays give repeated headers. */
  headers: OutgoingHttpHeaders;
  /** The body, or `undefined` for none. */
  body: HttpBody;

  constructor(status = 200, body: HttpBody = undefined, headers: OutgoingHttpHeaders = {}) {
    this.status = status;
    this.body = body;
    this.headers = { ...headers };
  }

  /** Sets (replaces) one header and returns this response. */
  withHeader(name: string, value: string | number | readonly string[]): this {
    for (const existing of Object.keys(this.headers)) {
      if (existing.toLowerCase() === name.toLowerCase()) delete this.headers[existing];
    }
    this.headers[name] = typeof value === 'object' ? [...value] : value;
    return this;
  }

  /** Sets the status code and returns this response. */
  withStatus(status: number): this {
    this.status = status;
    return this;
  }

  /** A `text/plain; charset=utf-8` response. */
  static text(text: string, status = 200): HttpResponse {
    return new HttpResponse(status, text, { 'content-type': 'text/plain; charset=utf-8' });
  }

  /** A `text/html; charset=utf-8` response. */
  static html(html: string, status = 200): HttpResponse {
    return new HttpResponse(status, html, { 'content-type': 'text/html; charset=utf-8' });
  }

  /** An `application/json; charset=utf-8` response with `JSON.stringify(value)` as its body. */
  static json(value: unknown, status = 200): HttpResponse {
    return new HttpResponse(status, JSON.stringify(value), { 'content-type': 'application/json; charset=utf-8' });
  }

  /** A bytes response; `contentType` defaults to `application/octet-stream`. */
  static bytes(bytes: Uint8Array, contentType = 'application/octet-stream', status = 200): HttpResponse {
    return new HttpResponse(status, bytes, { 'content-type': contentType });
  }

  /** A streamed response from a Node `Readable`; `contentType` defaults to `application/octet-stream`. */
  static stream(stream: Readable, contentType = 'application/octet-stream', status = 200): HttpResponse {
    return new HttpResponse(status, stream, { 'content-type': contentType });
  }

  /** A redirect to `location` (default status 302). */
  static redirect(location: string, status = 302): HttpResponse {
    return new HttpResponse(status, undefined, { location });
  }

  /** A response with no body (e.g. `HttpResponse.empty(204)`). */
  static empty(status = 204): HttpResponse {
    return new HttpResponse(status);
  }

  /** A short `text/plain` response whose body is the standard reason phrase (`404 Not Found`). */
  static status(status: number, message?: string): HttpResponse {
    return HttpResponse.text(message ?? `${status} ${statusText(status)}`, status);
  }
}

function hasHeader(headers: OutgoingHttpHeaders, name: string): boolean {
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return true;
  return false;
}

function isReadable(value: unknown): value is Readable {
  return value instanceof Readable;
}

/**
 * Converts a handler's return value into an `HttpResponse`. Throws an `HttpAppError`
 * `HTTP_ERR_BAD_RESPONSE` for anything else.
 */
export function toHttpResponse(value: unknown): HttpResponse {
  if (value instanceof HttpResponse) return value;
  if (typeof value === 'string') return HttpResponse.text(value);
  if (value instanceof Uint8Array) return HttpResponse.bytes(value);
  if (value instanceof Response) {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, headerValue] of value.headers) {
      if (name === 'set-cookie') continue;
      headers[name] = headerValue;
    }
    const cookies = value.headers.getSetCookie();
    if (cookies.length > 0) headers['set-cookie'] = cookies;
    const body = value.body === null ? undefined : Readable.fromWeb(value.body as NodeWebReadableStream<Uint8Array>);
    return new HttpResponse(value.status, body, headers);
  }
  throw new HttpAppError(
    'HTTP_ERR_BAD_RESPONSE',
    `A route handler returned ${value === null ? 'null' : typeof value}; expected a string, bytes, a Response or an HttpResponse`,
    500,
  );
}

/**
 * Writes `response` to `res`. Resolves when the response has been handed to the socket (or
 * the connection went away); rejects if a streamed body fails, after destroying `res`.
 */
export function sendHttpResponse(req: IncomingMessage, res: ServerResponse, response: HttpResponse): Promise<void> {
  const headers: OutgoingHttpHeaders = { ...response.headers };
  const body = response.body;
  // 1xx, 204 and 304 never carry a body nor a length; HEAD carries the length GET would.
  const noBodyStatus = response.status === 204 || response.status === 304 || response.status < 200;
  const bodyless = noBodyStatus || req.method === 'HEAD';
  if (typeof body === 'string' || body instanceof Uint8Array) {
    if (!hasHeader(headers, 'content-type')) {
      headers['content-type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream';
    }
    if (!noBodyStatus && !hasHeader(headers, 'content-length')) {
      headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    }
  } else if (body === undefined && !noBodyStatus && !hasHeader(headers, 'content-length')) {
    headers['content-length'] = 0;
  }
  res.writeHead(response.status, headers);

  if (!isReadable(body)) {
    return new Promise<void>((resolve) => {
      if (bodyless || body === undefined) res.end(resolve);
      else res.end(body, resolve);
    });
  }
  if (bodyless) {
    body.destroy();
    return new Promise<void>((resolve) => res.end(resolve));
  }
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClose);
      if (error) {
        body.destroy();
        res.destroy();
        reject(error);
      } else {
        resolve();
      }
    };
    const onClose = (): void => {
      // The client went away: stop reading the source.
      if (!res.writableFinished) body.destroy();
      finish();
    };
    res.on('close', onClose);
    body.on('error', (error: Error) => finish(error));
    body.on('end', () => res.end(() => finish()));
    body.pipe(res, { end: false });
  });
}
