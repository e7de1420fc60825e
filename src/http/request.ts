import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { HttpAppError } from './errors.js';
import { requestPath } from '../util/path.js';

/** The default limit of `HttpRequest.body()`: 1 MiB. */
export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024;

/**
 * The request handed to a route handler: a thin, read-only view over Node's
 * `IncomingMessage` (available as `raw` for anything not covered here).
 */
export class HttpRequest {
  /** The request method, upper case (`GET`, `HEAD`, `POST`, ...). */
  readonly method: string;
  /** The request target exactly as sent, query string included (`/search?q=x`). */
  readonly url: string;
  /** The path of the target, query string removed, still percent-encoded (`/search`). */
  readonly path: string;
  /** The parsed query string (empty when there is none). */
  readonly query: URLSearchParams;
  /** The request headers, names lower-cased (Node's `IncomingHttpHeaders`). */
  readonly headers: IncomingHttpHeaders;
  /** The IP address of the peer, or `undefined` if the socket is already gone. */
  readonly remoteAddress: string | undefined;
  /** The port of the peer, or `undefined` if the socket is already gone. */
  readonly remotePort: number | undefined;
  /** The route pattern that matched this request (`/static/*`). */
  readonly route: string;
  /**
   * What each `*` of the route matched, in order and still percent-encoded: for the route
   * `/static/*` and the path `/static/css/a.css`, `['css/a.css']`.
   */
  readonly wildcards: readonly string[];
  /** The underlying Node request. Reading from it directly bypasses `body()`. */
  readonly raw: IncomingMessage;

  readonly #maxBodySize: number;
  #body: Promise<Buffer> | undefined;

  /** @internal Built by the `App` for each request; not meant to be constructed by users. */
  constructor(raw: IncomingMessage, route: string, wildcards: readonly string[], maxBodySize: number) {
    const url = raw.url ?? '/';
    const queryStart = url.indexOf('?');
    this.method = raw.method ?? 'GET';
    this.url = url;
    this.path = requestPath(url);
    this.query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1).split('#')[0]);
    this.headers = raw.headers;
    this.remoteAddress = raw.socket?.remoteAddress;
    this.remotePort = raw.socket?.remotePort;
    this.route = route;
    this.wildcards = wildcards;
    this.raw = raw;
    this.#maxBodySize = maxBodySize;
  }

  /**
   * Reads the whole request body (once; later calls return the same promise). Rejects with
   * an `HttpAppError` `HTTP_ERR_BODY_TOO_LARGE` (answered with 413 if not caught) when the
   * body exceeds the app's `maxBodySize` (default 1 MiB, see `App.withMaxBodySize`).
   */
  body(): Promise<Buffer> {
    this.#body ??= readBody(this.raw, this.#maxBodySize);
    return this.#body;
  }

  /** The body decoded as UTF-8. */
  async text(): Promise<string> {
    return (await this.body()).toString('utf8');
  }

  /**
   * The body parsed as JSON. Rejects with an `HttpAppError` `HTTP_ERR_BAD_JSON` (answered
   * with 400 if not caught) when it is not valid JSON.
   */
  async json(): Promise<unknown> {
    const text = await this.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpAppError('HTTP_ERR_BAD_JSON', 'The request body is not valid JSON', 400);
    }
  }
}

function tooLarge(limit: number): HttpAppError {
  return new HttpAppError('HTTP_ERR_BODY_TOO_LARGE', `The request body exceeds ${limit} bytes`, 413);
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      // Let the rest arrive and be thrown away so the 413 answer can still be written.
      request.resume();
      reject(tooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        request.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      if (!request.complete) onError(new Error('The request was aborted before its body was complete'));
    };
    const cleanup = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}
